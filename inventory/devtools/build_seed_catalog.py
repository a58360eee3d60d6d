"""Rebuild inventory/data/seed_catalog.json from a coin identity list (a maintainer tool).

    python -m inventory.devtools.build_seed_catalog ../shared/data/top-coins-2025.json

Rows take CoinGecko's /coins/markets shape with every market figure null: the
seed holds identities, never invented prices. `category` is our own label.
"""

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "seed_catalog.json"

_MARKET_FIELDS = (
    "current_price market_cap fully_diluted_valuation total_volume high_24h low_24h "
    "price_change_24h price_change_percentage_24h market_cap_change_24h "
    "market_cap_change_percentage_24h circulating_supply total_supply max_supply ath "
    "ath_change_percentage ath_date atl atl_change_percentage atl_date roi last_updated"
).split()

_CATEGORIES = {
    "stablecoin": "tether usd-coin ethena-usde usds binance-bridged-usdt-bnb-smart-chain usdt0 dai "
    "ethena-staked-usde susds paypal-usd usd1-wlfi falcon-finance usdtb bfusd syrupusdc "
    "binance-bridged-usdc-bnb-smart-chain",
    "wrapped": "wrapped-bitcoin weth coinbase-wrapped-btc binance-peg-weth wbnb",
    "liquid-staking": "staked-ether wrapped-steth wrapped-beacon-eth wrapped-eeth jito-staked-sol "
    "rocket-pool-eth binance-staked-sol kelp-dao-restaked-eth stakewise-v3-oseth "
    "liquid-staked-ethereum kinetic-staked-hype lombard-staked-btc renzo-restaked-eth",
    "exchange-token": "binancecoin leo-token whitebit crypto-com-chain okb bitget-token "
    "htx-dao gatechain-token kucoin-shares",
    "meme": "dogecoin shiba-inu pepe memecore pudgy-penguins official-trump bonk",
    "real-world-asset": "figure-heloc blackrock-usd-institutional-digital-liquidity-fund "
    "tether-gold pax-gold hash-2 ondo-finance",
    "defi": "chainlink uniswap aave ethena hyperliquid jupiter-perpetuals-liquidity-provider-token "
    "aster-2 sky pump-fun world-liberty-financial quant-network",
}
_CATEGORY_OF = {cid: cat for cat, ids in _CATEGORIES.items() for cid in ids.split()}


def build(coins: list[dict]) -> list[dict]:
    rows = []
    for coin in sorted(coins, key=lambda c: c["market_cap_rank"]):
        row = {k: coin[k] for k in ("id", "symbol", "name")}
        row["image"] = None
        row["market_cap_rank"] = coin["market_cap_rank"]
        row.update(dict.fromkeys(_MARKET_FIELDS))
        row["category"] = _CATEGORY_OF.get(coin["id"], "layer-1")
        rows.append(row)
    return rows


if __name__ == "__main__":
    source = json.loads(Path(sys.argv[1]).read_text())
    OUT.write_text(json.dumps(build(source), indent=1) + "\n")
    print(f"wrote {OUT}")
