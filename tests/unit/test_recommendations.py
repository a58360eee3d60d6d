"""Recommendations from a small synthetic history whose right answers are known."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import simplejson

from inventory.domain import AssetStatus
from inventory.domain.history import Candle, DayTotals, Profile, day_start
from inventory.domain.similarity import (
    build_profiles,
    correlation,
    daily_returns,
    diversifiers,
)
from inventory.jobs.recommend import recommend
from inventory.store import CandleStore, ProfileStore
from tests.conftest import build_asset

NOW = datetime.now(timezone.utc)
DAYS = [NOW.date() - timedelta(days=n) for n in range(9, 0, -1)]
RETURNS = [Decimal(r) for r in ("0.02", "-0.01", "0.03", "-0.02", "0.01", "0.04", "-0.03", "0.02")]


def closes(start: str, sign: int = 1, scale: str = "1") -> dict:
    """Closes over DAYS whose daily returns are RETURNS (sign -1: their opposite), times `scale`."""
    price, series = Decimal(start), {}
    for day, r in zip(DAYS, [Decimal(0)] + RETURNS):
        price = price * (1 + sign * r)
        series[day] = price * Decimal(scale)
    return series


# A and B move together (B is A doubled), C moves opposite, D never moves.
CLOSES = {"AAA": closes("100"), "BBB": closes("100", scale="2"), "CCC": closes("50", sign=-1),
          "DDD": {day: Decimal(1) for day in DAYS}, "SUS": closes("100")}
CATEGORIES = {"AAA": "layer-1", "BBB": "layer-1", "CCC": "defi", "DDD": "meme", "SUS": "layer-1"}
CAPS = {"AAA": "1000000000", "BBB": "2000000000", "CCC": "5000000000", "DDD": "1000000", "SUS": "1000000000"}


def assets():
    return [
        build_asset(a, i + 1, price="1", category=CATEGORIES[a], market_cap=Decimal(CAPS[a]),
                    status=AssetStatus.SUSPENDED if a == "SUS" else AssetStatus.ACTIVE)
        for i, a in enumerate(CLOSES)
    ]


def body(response):
    return simplejson.loads(response.get_data(), use_decimal=True)


def test_returns_and_correlation_of_known_series():
    a, b, c = (daily_returns(CLOSES[k]) for k in ("AAA", "BBB", "CCC"))
    assert len(a) == 8 and a[DAYS[1].isoformat()] == Decimal("0.02")
    assert correlation(a, b) == pytest.approx(1.0)
    assert correlation(a, c) == pytest.approx(-1.0)
    assert correlation(a, daily_returns(CLOSES["DDD"])) is None  # a flat series has no correlation
    assert correlation(a, dict(list(b.items())[:3])) is None  # too few common days


def test_similar_ranks_the_twin_first_and_leaves_out_the_unalike_and_the_untradable():
    profiles = {p.asset_id: p for p in build_profiles(assets(), CLOSES, top_k=10)}
    assert "SUS" not in profiles
    similar = profiles["AAA"].similar
    assert [s.asset_id for s in similar] == ["BBB", "CCC"]
    assert similar[0].score == Decimal("1.0000")
    assert similar[0].reasons == ("shares category layer-1", "same market-cap band (1B-10B USD)",
                                  "daily returns correlate (1.00)")
    # CCC shares only the band: anti-correlation adds nothing.
    assert (similar[1].score, similar[1].reasons) == (Decimal("0.2000"), ("same market-cap band (1B-10B USD)",))


def test_max_assets_keeps_the_best_ranked_and_bounds_the_pairs():
    # Ranks follow CLOSES' order: AAA 1, BBB 2, CCC 3, DDD 4 (SUS is not active).
    profiles = {p.asset_id: p for p in build_profiles(assets(), CLOSES, top_k=10, max_assets=2)}
    assert set(profiles) == {"AAA", "BBB"}
    assert [s.asset_id for s in profiles["AAA"].similar] == ["BBB"]


def test_uncategorized_assets_share_no_category():
    both = [build_asset(a, i + 1, price="1", category="uncategorized", market_cap=Decimal("1000000"))
            for i, a in enumerate(("AAA", "DDD"))]
    profiles = {p.asset_id: p for p in build_profiles(both, {}, top_k=10)}
    assert profiles["AAA"].categories == ()
    assert all("shares category" not in r for s in profiles["AAA"].similar for r in s.reasons)


def test_diversifiers_prefer_anti_correlated_and_new_categories():
    profiles = {p.asset_id: p for p in build_profiles(assets(), CLOSES, top_k=10)}
    ranked = diversifiers([profiles["AAA"]], [profiles[k] for k in sorted(profiles)])
    assert [(s.asset_id, s.score) for s in ranked] == [
        ("CCC", Decimal("1.0000")), ("DDD", Decimal("0.7000")), ("BBB", Decimal("0.0000"))]
    assert ranked[0].reasons == ("low correlation to the holdings (highest -1.00, with AAA)",
                                 "adds category defi, which the holdings lack")
    holding_both = diversifiers([profiles["AAA"], profiles["CCC"]], list(profiles.values()))
    assert holding_both[0].asset_id == "DDD"
    # Deterministic: the same data in another order gives the same answer.
    assert diversifiers([profiles["AAA"]], list(reversed(profiles.values()))) == ranked


def test_profiles_without_shared_history_still_count_categories():
    lone = Profile("NEW", ("ai",), None, {})
    ranked = diversifiers([Profile("AAA", ("layer-1",), None, {})], [lone])
    assert ranked[0].reasons == ("no daily history in common with the holdings", "adds category ai, which the holdings lack")


@pytest.fixture
def computed(add_assets, moto_client, config, store):
    """The catalog and its daily candles stored as the roll-up would; recommendations computed."""
    add_assets(*assets())
    table = config.DYNAMODB_TABLE_NAME
    candles, profiles = CandleStore(moto_client, table, 1), ProfileStore(moto_client, table, 1)
    for day in DAYS:
        day_candles = {a: Candle(day_start(day), c[day], c[day], c[day], c[day], 1) for a, c in CLOSES.items()}
        candles.put_day(day_candles, DayTotals(day, len(day_candles), Decimal(0), Decimal(0), NOW))
    # A stale profile of an asset no longer tradable is removed by the next run.
    profiles.put_all([Profile("SUS", ("layer-1",), None, {})], [], NOW)
    assert recommend(store, candles, profiles, NOW, window_days=10, top_k=10) == 4
    assert profiles.get("SUS") is None
    assert sorted(p.asset_id for p in profiles.all()) == ["AAA", "BBB", "CCC", "DDD"]
    return profiles


def test_get_similar_serves_the_stored_top_k(client, computed):
    response = client.get("/inventory/assets/aaa/similar?limit=1")
    assert response.status_code == 200 and response.headers["ETag"]
    payload = body(response)
    assert payload["asset_id"] == "AAA"
    assert [(d["asset_id"], d["score"], d["category"]) for d in payload["data"]] == [("BBB", Decimal(1), "layer-1")]
    assert "daily returns correlate (1.00)" in payload["data"][0]["reasons"]


def test_get_similar_leaves_out_assets_no_longer_tradable(client, computed, store):
    store.update_fields("BBB", {"status": AssetStatus.SUSPENDED}, NOW)
    payload = body(client.get("/inventory/assets/AAA/similar?limit=5"))
    assert [d["asset_id"] for d in payload["data"]] == ["CCC"]


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/inventory/assets/ZZZ/similar", 404, "asset_not_found"),
    ("/inventory/assets/SUS/similar", 404, "recommendations_not_ready"),
    ("/inventory/assets/AAA/similar?limit=0", 422, "validation_failed"),
    ("/inventory/assets/AAA/similar?top=3", 422, "validation_failed"),
])
def test_get_similar_errors(client, computed, path, status, code):
    response = client.get(path)
    assert (response.status_code, body(response)["error"]) == (status, code)


def test_post_recommendations_diversify_the_holdings(client, computed):
    response = client.post("/inventory/recommendations",
                           json={"holdings": [{"asset_id": "aaa", "quantity": "1.5"}, {"asset_id": "NOPE"},
                                              {"asset_id": "SUS"}], "limit": 2})
    assert response.status_code == 200
    payload = body(response)
    assert [d["asset_id"] for d in payload["data"]] == ["CCC", "DDD"]
    assert payload["unknown"] == ["NOPE"]
    assert payload["without_history"] == ["SUS"]
    again = body(client.post("/inventory/recommendations",
                             json={"holdings": [{"asset_id": "SUS"}, {"asset_id": "AAA"}], "limit": 2}))
    assert again["data"] == payload["data"]


@pytest.mark.parametrize("payload", [
    {"holdings": []}, {"holdings": [{"asset_id": "not an id!"}]}, {"holdings": [{"asset_id": "BTC", "quantity": "-1"}]},
    {"holdings": [{"asset_id": "BTC"}], "limit": 50}, {"holdings": [{"asset_id": "BTC", "weight": 1}]}, {},
])
def test_post_recommendations_bad_bodies_are_422(client, payload):
    response = client.post("/inventory/recommendations", json=payload)
    assert response.status_code == 422 and body(response)["error"] == "validation_failed"


def test_reads_need_a_token_when_required(config, moto_client):
    from inventory import create_app
    from tests.conftest import ADMIN

    client = create_app(config.replace(REQUIRE_AUTH_FOR_READS=True), dynamodb_client=moto_client).test_client()
    for call in (lambda h: client.get("/inventory/assets/BTC/similar", headers=h),
                 lambda h: client.get("/inventory/reports/daily?date=2026-01-01", headers=h),
                 lambda h: client.post("/inventory/recommendations", json={"holdings": [{"asset_id": "BTC"}]}, headers=h)):
        assert call({}).status_code == 401
        assert call(ADMIN).status_code != 401


def test_a_stale_price_keeps_the_profile_but_not_the_place_in_answers(client, computed, store):
    store.update_fields("CCC", {"last_price_update": NOW - timedelta(hours=1)}, NOW)
    payload = body(client.get("/inventory/assets/AAA/similar?limit=3"))
    assert [d["asset_id"] for d in payload["data"]] == ["BBB"]
    assert computed.get("CCC") is not None  # back in answers as soon as its price is fresh again


def test_the_shortlist_gives_the_same_top_k_as_scoring_every_pair_exactly():
    import random

    from inventory.domain.similarity import similarity

    rng = random.Random(7)
    cats = ["layer-1", "defi", "meme"]
    many = [build_asset(f"R{i}", i + 1, price="1", category=cats[i % 3],
                        market_cap=Decimal(rng.choice([10 ** 8, 3 * 10 ** 8, 10 ** 9, 5 * 10 ** 9])))
            for i in range(40)]
    series = {a.asset_id: {day: Decimal(rng.randint(90, 110)) for day in DAYS} for a in many}
    # Some assets miss a day, so the slow path (different days) runs too.
    for a in many[::7]:
        del series[a.asset_id][DAYS[3]]
    profiles = build_profiles(many, series, top_k=5)
    bare = [Profile(p.asset_id, p.categories, p.market_cap, p.returns) for p in profiles]
    for profile, plain in zip(profiles, bare):
        exact = sorted((s for other in bare if other.asset_id != plain.asset_id if (s := similarity(plain, other))),
                       key=lambda s: (-s.score, s.asset_id))[:5]
        assert list(profile.similar) == exact
