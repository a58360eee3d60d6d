"""Backfill an asset's price history from CoinGecko's /coins/{id}/market_chart."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from ..domain import Asset, PricePoint
from ..source.client import CoinGeckoClient, MalformedResponse
from ..store.prices import PriceStore


def _series(body: dict, name: str) -> dict[int, Decimal]:
    values = {}
    for pair in body.get(name) or []:
        if (
            isinstance(pair, list)
            and len(pair) == 2
            and isinstance(pair[0], int)
            and isinstance(pair[1], (int, Decimal))
            and not isinstance(pair[1], bool)
        ):
            values[pair[0]] = Decimal(pair[1])
    return values


def backfill_history(client: CoinGeckoClient, prices: PriceStore, asset: Asset, days: int, now: datetime) -> int:
    """Write the chart's points as history (kept PRICE_HISTORY_DAYS from now); return how many.

    :raises PriceSourceError: the source failed or the asset has no CoinGecko id.
    """
    if not asset.coingecko_id:
        raise MalformedResponse(f"{asset.asset_id} is not linked to a CoinGecko coin")
    body = client.market_chart(asset.coingecko_id, days)
    caps, volumes = _series(body, "market_caps"), _series(body, "total_volumes")
    points = [
        PricePoint(
            at=datetime.fromtimestamp(ms / 1000, tz=timezone.utc),
            price=price,
            market_cap=caps.get(ms),
            volume_24h=volumes.get(ms),
        )
        for ms, price in sorted(_series(body, "prices").items())
        if price >= 0
    ]
    return prices.record_points(asset.asset_id, points, now)
