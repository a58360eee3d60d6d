"""Similar assets and diversifiers: daily returns, correlations, market-cap bands and the scores. No I/O."""

from __future__ import annotations

import math
import operator
import statistics
from datetime import date, timedelta
from decimal import Decimal

from .history import Profile, Similar, categories_of
from .models import Asset, AssetStatus

# Fewer common days than this and a correlation says nothing.
MIN_COMMON_RETURNS = 5
# Weights of the similarity score's parts (each part is 0..1, so the score is too).
SIMILAR_WEIGHTS = {"category": Decimal("0.4"), "band": Decimal("0.2"), "correlation": Decimal("0.4")}
# Weights of a diversifier's score: low correlation to the holdings, a category they lack.
DIVERSIFY_WEIGHTS = {"correlation": Decimal("0.6"), "category": Decimal("0.4")}
_PLACES = Decimal("0.0001")


def daily_returns(closes: dict[date, Decimal]) -> dict[str, Decimal]:
    """Close-to-close returns of consecutive days, by the later day (ISO)."""
    returns = {}
    for day, close in sorted(closes.items()):
        before = closes.get(day - timedelta(days=1))
        if before:
            returns[day.isoformat()] = close / before - 1
    return returns


def correlation(a: dict[str, Decimal], b: dict[str, Decimal]) -> float | None:
    """Pearson correlation of two return series over their common days; None with too few or flat ones."""
    days = sorted(a.keys() & b.keys())
    if len(days) < MIN_COMMON_RETURNS:
        return None
    try:
        return statistics.correlation([float(a[d]) for d in days], [float(b[d]) for d in days])
    except statistics.StatisticsError:  # a constant series has no correlation
        return None


# Below this a series is flat (a constant price): it has no correlation.
_FLAT = 1e-12


def profile_correlation(a: Profile, b: Profile) -> float | None:
    """`correlation` of two profiles' returns; a dot product when both cover the same days (the usual case)."""
    sa, sb = a.series, b.series
    if sa.days != sb.days:
        return correlation(a.returns, b.returns)
    if len(sa.days) < MIN_COMMON_RETURNS or sa.norm < _FLAT or sb.norm < _FLAT:
        return None
    return max(-1.0, min(1.0, math.fsum(map(operator.mul, sa.centred, sb.centred)) / (sa.norm * sb.norm)))


def cap_band(market_cap: Decimal | None) -> int | None:
    """The power of ten of a market cap (9: 1B-10B USD)."""
    return market_cap.adjusted() if market_cap else None


def band_label(band: int) -> str:
    names = {3: "K", 6: "M", 9: "B", 12: "T"}
    base = band - band % 3
    unit = names.get(base, f"e{base}")
    return f"{10 ** (band - base)}{unit}-{10 ** (band - base + 1)}{unit} USD"


def _score(parts: dict[str, Decimal], weights: dict[str, Decimal]) -> Decimal:
    return sum((weights[k] * v for k, v in parts.items()), Decimal(0)).quantize(_PLACES)


def _corr_text(value: float) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def similarity(a: Profile, b: Profile) -> Similar | None:
    """How much `b` is like `a`, with the reasons; None when nothing is alike."""
    parts, reasons = {}, []
    shared = sorted(set(a.categories) & set(b.categories))
    if shared:
        parts["category"] = Decimal(len(shared)) / len(set(a.categories) | set(b.categories))
        reasons.append("shares category " + ", ".join(shared))
    band_a, band_b = cap_band(a.market_cap), cap_band(b.market_cap)
    if band_a is not None and band_b is not None and abs(band_a - band_b) <= 1:
        parts["band"] = Decimal(1) if band_a == band_b else Decimal("0.5")
        reasons.append(
            f"same market-cap band ({band_label(band_a)})" if band_a == band_b
            else f"neighbouring market-cap band ({band_label(band_b)})"
        )
    corr = profile_correlation(a, b)
    if corr is not None and corr > 0:
        parts["correlation"] = Decimal(corr).quantize(_PLACES)
        reasons.append(f"daily returns correlate ({_corr_text(corr)})")
    score = _score(parts, SIMILAR_WEIGHTS)
    return Similar(b.asset_id, score, tuple(reasons)) if score > 0 else None


# The float pre-score may order near-ties differently from the exact one; these extra places absorb that.
_SHORTLIST_SLACK = 5


def _rough_scores(base: list[Profile], prepared: list[tuple], row: int) -> list[float]:
    """`similarity`'s score of `base[row]` with every profile in floats, without reasons (one row: memory O(n))."""
    cats_a, band_a, a = prepared[row]
    scores = []
    for j, (cats_b, band_b, b) in enumerate(prepared):
        score = 0.0
        shared = cats_a & cats_b
        if shared:
            score += 0.4 * len(shared) / len(cats_a | cats_b)
        if band_a is not None and band_b is not None and abs(band_a - band_b) <= 1:
            score += 0.2 if band_a == band_b else 0.1
        if a.days == b.days and len(a.days) >= MIN_COMMON_RETURNS and a.norm >= _FLAT and b.norm >= _FLAT:
            corr = sum(map(operator.mul, a.centred, b.centred)) / (a.norm * b.norm)
        else:
            corr = profile_correlation(base[row], base[j]) or 0.0
        if corr > 0:
            score += 0.4 * corr
        scores.append(score)
    return scores


def build_profiles(
    assets: list[Asset], closes: dict[str, dict[date, Decimal]], top_k: int, max_assets: int | None = None
) -> list[Profile]:
    """A profile for every ACTIVE priced asset (the `max_assets` best ranked), with its `top_k` most similar such peers.

    Peers come best first, ties by id. The run scores every pair, so its cost
    grows with the square of the assets: `max_assets` bounds it (1,000 assets
    take seconds, 10,000 would take minutes of the refresher's CPU).

    A price that is merely stale does not drop an asset here (a source outage
    during the run would otherwise empty every list); requests filter by
    tradable-now.
    """
    eligible = [a for a in assets if a.status is AssetStatus.ACTIVE and a.current_price is not None]
    if max_assets is not None and len(eligible) > max_assets:
        eligible = sorted(eligible, key=lambda a: (a.market_cap_rank is None, a.market_cap_rank or 0, a.asset_id))
        eligible = eligible[:max_assets]
    base = [
        Profile(a.asset_id, categories_of(a), a.market_cap, daily_returns(closes.get(a.asset_id, {})))
        for a in sorted(eligible, key=lambda a: a.asset_id)
    ]
    profiles = []
    # A float pre-score of every pair picks a few more than top_k; the exact
    # scores and reasons are built for those only (a run scores n^2/2 pairs).
    prepared = [(frozenset(p.categories), cap_band(p.market_cap), p.series) for p in base]
    for row, profile in enumerate(base):
        scores = _rough_scores(base, prepared, row)
        rough = sorted((-score, base[i].asset_id, i) for i, score in enumerate(scores) if i != row)
        shortlist = [base[i] for score, _, i in rough[:top_k + _SHORTLIST_SLACK] if score < 0]
        peers = [s for other in shortlist if (s := similarity(profile, other))]
        peers.sort(key=lambda s: (-s.score, s.asset_id))
        profiles.append(Profile(profile.asset_id, profile.categories, profile.market_cap, profile.returns,
                                tuple(peers[:top_k])))
    return profiles


def diversifiers(holdings: list[Profile], candidates: list[Profile]) -> list[Similar]:
    """Every candidate scored by how much it would diversify the holdings, best first (ties by id).

    Low correlation: 1 - the highest correlation to any holding, halved into 0..1
    (no common history: 0.5, unknown). A category: 1 when it brings one the holdings lack.
    """
    held_ids = {h.asset_id for h in holdings}
    held_categories = {c for h in holdings for c in h.categories}
    scored = []
    for candidate in candidates:
        if candidate.asset_id in held_ids:
            continue
        parts, reasons = {}, []
        correlations = [
            (corr, h.asset_id) for h in holdings if (corr := profile_correlation(candidate, h)) is not None
        ]
        if correlations:
            highest, with_id = max(correlations, key=lambda c: (c[0], c[1]))
            parts["correlation"] = (Decimal(1 - highest) / 2).quantize(_PLACES)
            reasons.append(f"low correlation to the holdings (highest {_corr_text(highest)}, with {with_id})"
                           if highest < 0.5 else f"correlates with {with_id} ({_corr_text(highest)})")
        else:
            parts["correlation"] = Decimal("0.5")
            reasons.append("no daily history in common with the holdings")
        new = sorted(set(candidate.categories) - held_categories)
        if new:
            parts["category"] = Decimal(1)
            reasons.append("adds category " + ", ".join(new) + ", which the holdings lack")
        scored.append(Similar(candidate.asset_id, _score(parts, DIVERSIFY_WEIGHTS), tuple(reasons)))
    scored.sort(key=lambda s: (-s.score, s.asset_id))
    return scored
