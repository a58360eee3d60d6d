"""Rebuild inventory/data/seed_catalog.json from a coin identity list (a maintainer tool).

    python -m inventory.devtools.build_seed_catalog ../shared/data/top-coins-2025.json

Rows take CoinGecko's /coins/markets shape with every market figure null: the
seed holds identities, never invented prices. `category` (the primary) and `categories` are
our own hand labels, in the taxonomy of inventory/categories.py.
"""

import json
import sys
from pathlib import Path

from ..domain.taxonomy import ordered

OUT = Path(__file__).resolve().parent.parent / "data" / "seed_catalog.json"

_MARKET_FIELDS = (
    "current_price market_cap fully_diluted_valuation total_volume high_24h low_24h "
    "price_change_24h price_change_percentage_24h market_cap_change_24h "
    "market_cap_change_percentage_24h circulating_supply total_supply max_supply ath "
    "ath_change_percentage ath_date atl atl_change_percentage atl_date roi last_updated"
).split()

# Hand labels by taxonomy slug (inventory/categories.py); a coin may carry
# several. A coin listed under none is `uncategorized`: never a guess. The
# membership job replaces these with CoinGecko's own within its first run.
_CATEGORIES = {
    "stablecoin": "tether usd-coin ethena-usde usds binance-bridged-usdt-bnb-smart-chain usdt0 dai "
    "ethena-staked-usde susds paypal-usd usd1-wlfi falcon-finance usdtb bfusd syrupusdc "
    "binance-bridged-usdc-bnb-smart-chain",
    "wrapped": "wrapped-bitcoin weth coinbase-wrapped-btc binance-peg-weth wbnb wrapped-steth "
    "wrapped-beacon-eth wrapped-eeth",
    "liquid-staking": "staked-ether wrapped-steth wrapped-beacon-eth wrapped-eeth jito-staked-sol "
    "rocket-pool-eth binance-staked-sol kelp-dao-restaked-eth stakewise-v3-oseth "
    "liquid-staked-ethereum kinetic-staked-hype lombard-staked-btc renzo-restaked-eth",
    "rwa": "figure-heloc blackrock-usd-institutional-digital-liquidity-fund "
    "tether-gold pax-gold hash-2 ondo-finance",
    "exchange-token": "binancecoin leo-token whitebit crypto-com-chain okb bitget-token "
    "htx-dao gatechain-token kucoin-shares",
    "meme": "dogecoin shiba-inu pepe memecore pudgy-penguins official-trump bonk",
    "privacy": "monero zcash",
    "oracle": "chainlink",
    "ai": "bittensor chainopera-ai render-token worldcoin-wld",
    "defi": "chainlink uniswap aave ethena hyperliquid jupiter-perpetuals-liquidity-provider-token "
    "aster-2 sky pump-fun world-liberty-financial quant-network ethena-usde ondo-finance",
    "layer-2": "mantle arbitrum polygon-ecosystem-token",
    "layer-1": "bitcoin ethereum binancecoin ripple solana tron cardano stellar hyperliquid "
    "bitcoin-cash sui avalanche-2 litecoin hedera-hashgraph monero the-open-network polkadot zcash "
    "near ethereum-classic aptos internet-computer algorand cosmos vechain kaspa flare-networks "
    "sei-network story-2 bittensor",
}


def labels(coin_id: str) -> tuple[str, ...]:
    """The coin's hand labels, primary first (`uncategorized` when it has none)."""
    return ordered(slug for slug, ids in _CATEGORIES.items() if coin_id in ids.split())


def build(coins: list[dict]) -> list[dict]:
    rows = []
    for coin in sorted(coins, key=lambda c: c["market_cap_rank"]):
        row = {k: coin[k] for k in ("id", "symbol", "name")}
        row["image"] = None
        row["market_cap_rank"] = coin["market_cap_rank"]
        row.update(dict.fromkeys(_MARKET_FIELDS))
        row["categories"] = list(labels(coin["id"]))
        row["category"] = row["categories"][0]
        rows.append(row)
    return rows


if __name__ == "__main__":
    source = json.loads(Path(sys.argv[1]).read_text())
    OUT.write_text(json.dumps(build(source), indent=1) + "\n")
    print(f"wrote {OUT}")
