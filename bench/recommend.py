"""Recommendation cost in CPU: the refresher's similar-asset run and one POST /recommendations, over synthetic profiles."""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from decimal import Decimal

from inventory.domain import Asset
from inventory.domain.similarity import build_profiles, diversifiers

CATEGORIES = ("layer-1", "defi", "meme", "ai", "gaming", "oracle")
DAYS = [date(2026, 10, 1) + timedelta(days=i) for i in range(31)]  # 30 returns: RECOMMEND_WINDOW_DAYS


def catalog(n: int, rng: random.Random):
    assets = [
        Asset(asset_id=f"A{i}", symbol=f"a{i}", name=f"A{i}", category=CATEGORIES[i % len(CATEGORIES)],
              current_price=Decimal(1), market_cap=Decimal(rng.randint(10 ** 6, 10 ** 12)))
        for i in range(n)
    ]
    closes = {a.asset_id: {d: Decimal(str(round(rng.uniform(1, 2), 6))) for d in DAYS} for a in assets}
    return assets, closes


def main(argv: list[str]) -> None:
    rng = random.Random(1)
    print("| assets | similar run (build_profiles, top 10) | POST /recommendations compute (5 holdings) |")
    print("|---|---|---|")
    for n in (250, 1000):
        assets, closes = catalog(n, rng)
        started = time.perf_counter()
        profiles = build_profiles(assets, closes, 10)
        run = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(20):
            diversifiers(profiles[:5], profiles)
        request = (time.perf_counter() - started) / 20
        print(f"| {n} | {run:.2f} s | {request * 1000:.1f} ms |")


if __name__ == "__main__":
    main([])
