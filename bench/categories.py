"""Benchmark: the category board over a 10,000-asset catalog snapshot (built once per snapshot; read per response fill).

    .venv/bin/python -m bench.categories --assets 10000
"""

from __future__ import annotations

import argparse
import statistics
import time

from inventory.devtools.coingecko import (
    _seeded_memberships,
    default_categories,
    generate_catalog,
)
from inventory.domain import Asset, utcnow
from inventory.domain.taxonomy import SOURCE_CATEGORIES, CategoryBoard, ordered
from inventory.source.rows import parse_row


def catalog(n: int) -> list[Asset]:
    """The emulator's coins as assets, with the categories the membership job would give them."""
    now, seeded = utcnow(), _seeded_memberships()
    slug_of = {source_id: slug for slug, ids in SOURCE_CATEGORIES.items() for source_id in ids}
    assets = []
    for i, row in enumerate(generate_catalog(n)):
        coin = parse_row(row, now, require_price=False)
        slugs = ordered(slug_of[c] for c in default_categories(coin.coingecko_id, seeded) if c in slug_of)
        assets.append(Asset(asset_id=f"A{i}", symbol=coin.symbol, name=coin.name, coingecko_id=coin.coingecko_id,
                            category=slugs[0], categories=slugs, **coin.market))
    return assets


def median_ms(run, times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    args = parser.parse_args()
    assets, now = catalog(args.assets), utcnow()
    board = CategoryBoard(assets, 300)
    print(f"assets: {len(assets)}")
    print(f"board build (once per snapshot), median of 5: {median_ms(lambda: CategoryBoard(assets, 300), 5):.1f} ms")
    print(f"every category's summary (GET /inventory/categories fill), median of 20: "
          f"{median_ms(lambda: board.summaries(now), 20):.2f} ms")
    print(f"one category with its top 10, median of 20: {median_ms(lambda: board.summary('meme', now, 10), 20):.3f} ms")


if __name__ == "__main__":
    main()
