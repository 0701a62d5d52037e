"""What a BTC market pays on: family, strike(s), direction, reference start and expiry.

Parsed from the structured Gamma fields first (slug pattern, ``eventStartTime``,
``groupItemTitle``), then the rules text (``description``), then the title
(``question``). A market none of them explains is family ``other`` with
``parse_source`` None: flagged, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from btc_tracker_pipeline.sources.models import GammaMarket

UPDOWN_BY_DURATION = {
    timedelta(minutes=5): "updown_5m",
    timedelta(minutes=15): "updown_15m",
    timedelta(hours=1): "updown_1h",
    timedelta(hours=4): "updown_4h",
    timedelta(days=1): "updown_daily",
}
UPDOWN_SLUG = re.compile(r"^btc-updown-(5m|15m|1h|4h)-(\d{9,11})$")
SLUG_DURATION = {
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
}
FAMILIES = (
    "updown_5m",
    "updown_15m",
    "updown_1h",
    "updown_4h",
    "updown_daily",
    "above",
    "below",
    "range",
    "reach",
    "dip",
    "other",
)

# "$150,000", "$150k", "150K", "$1.5m", "64,000", "52pt5k" (slug form of 52.5k).
_AMOUNT = r"\$?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:(?:\.|pt)\d+)?)\s*([kKmM](?![a-zA-Z]))?"
_AMOUNT_RE = re.compile(_AMOUNT)
_RANGE_RE = re.compile(r"between\s+" + _AMOUNT + r"\s+and\s+" + _AMOUNT, re.IGNORECASE)
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
# "March 2-8" / "March 30-April 5" in weekly "What price will Bitcoin hit …" questions.
_PERIOD_RE = re.compile(
    r"\b("
    + "|".join(_MONTHS)
    + r")\s+(\d{1,2})\s*-\s*(?:("
    + "|".join(_MONTHS)
    + r")\s+)?(\d{1,2})\b",
    re.IGNORECASE,
)
ET = ZoneInfo("America/New_York")
_REACH_RE = re.compile(r"\b(?:reach|hit|above|over|exceed)\w*\s+(?:of\s+)?" + _AMOUNT, re.I)
_DIP_RE = re.compile(r"\b(?:dip|drop|fall|below|under)\w*\s+(?:to\s+|below\s+)?" + _AMOUNT, re.I)


@dataclass(frozen=True)
class MarketTerms:
    """Contract terms of one market; ``parse_source`` says which field explained it."""

    family: str
    direction: str | None
    strike: float | None
    strike_high: float | None
    reference_start: datetime | None
    expiry: datetime | None
    parse_source: str | None


def parse_amount(number: str, suffix: str | None) -> float:
    """``("150,000", None)`` → 150000.0, ``("52pt5", "k")`` → 52500.0, ``("1.5", "m")`` → 1.5e6."""
    value = float(number.replace(",", "").replace("pt", "."))
    if suffix:
        value *= 1_000 if suffix.lower() == "k" else 1_000_000
    return value


def _plausible_btc(value: float) -> bool:
    # Strikes are dollar prices of BTC; rejects dates ("March 11") and years.
    return 1_000 <= value <= 10_000_000


def _first_amount(text: str) -> float | None:
    for m in _AMOUNT_RE.finditer(text):
        value = parse_amount(m.group(1), m.group(2))
        if _plausible_btc(value) and ("$" in m.group(0) or m.group(2) or "," in m.group(1)):
            return value
    return None


def _updown(m: GammaMarket) -> MarketTerms | None:
    slug_match = UPDOWN_SLUG.match(m.slug or "")
    if slug_match:
        start = datetime.utcfromtimestamp(int(slug_match.group(2)))
        duration = SLUG_DURATION[slug_match.group(1)]
        family = UPDOWN_BY_DURATION[duration]
        return MarketTerms(
            family, "up", None, None, start, m.end_date or start + duration, "structured"
        )
    text = f"{m.question} {m.event_title or ''}".lower()
    if "up or down" not in text or m.end_date is None:
        return None
    start = m.event_start_time
    source = "structured"
    if start is None:
        # Hourly/daily titles have no start field on older payloads: infer from the slug kind.
        if "-on-" in (m.slug or ""):
            start = m.end_date - timedelta(days=1)
        else:
            start = m.end_date - timedelta(hours=1)
        source = "title"
    family = UPDOWN_BY_DURATION.get(m.end_date - start)
    if family is None:
        return None
    return MarketTerms(family, "up", None, None, start, m.end_date, source)


def _from_text(text: str, group_title: str | None) -> tuple[str, str, float, float | None] | None:
    rng = _RANGE_RE.search(text)
    if rng:
        low = parse_amount(rng.group(1), rng.group(2))
        high = parse_amount(rng.group(3), rng.group(4))
        if _plausible_btc(low) and _plausible_btc(high):
            return "range", "between", min(low, high), max(low, high)
    lowered = text.lower()
    dip = _DIP_RE.search(text)
    reach = _REACH_RE.search(text)
    is_barrier = any(w in lowered for w in ("reach", "hit", "dip"))
    if group_title and group_title.strip()[:1] in "↑↓":
        strike = _first_amount("$" + group_title.strip()[1:].strip())
        if strike is not None:
            return (
                ("reach", "up", strike, None)
                if group_title.strip()[0] == "↑"
                else ("dip", "down", strike, None)
            )
    if dip and (is_barrier or "below" in lowered or "under" in lowered):
        strike = parse_amount(dip.group(1), dip.group(2))
        if _plausible_btc(strike):
            if "dip" in dip.group(0).lower() or "drop" in dip.group(0).lower():
                return "dip", "down", strike, None
            return "below", "below", strike, None
    if reach:
        strike = parse_amount(reach.group(1), reach.group(2))
        if _plausible_btc(strike):
            word = reach.group(0).lower()
            if word.startswith(("reach", "hit")):
                return "reach", "up", strike, None
            return "above", "above", strike, None
    return None


_MONTH_RE = re.compile(r"\bin\s+(" + "|".join(_MONTHS) + r")(?:\s+(\d{4}))?\b", re.I)
_IN_YEAR_RE = re.compile(r"\bin\s+(\d{4})\b", re.I)
_BY_DATE_RE = re.compile(
    r"\bby\s+(?:(" + "|".join(_MONTHS) + r")\s+\d{1,2}(?:,?\s+(\d{4}))?|end\s+of\s+(\d{4}))",
    re.I,
)
_BEFORE_YEAR_RE = re.compile(r"\bbefore\s+(\d{4})\b", re.I)


def _et_midnight(year: int, month: int, day: int = 1) -> datetime | None:
    try:
        return datetime(year, month, day, tzinfo=ET).astimezone(UTC).replace(tzinfo=None)
    except ValueError:
        return None


def _latest_before(month: int, day: int, expiry: datetime) -> datetime | None:
    # The year is the expiry's, or the previous one when that start is not before expiry.
    for year in (expiry.year, expiry.year - 1):
        start = _et_midnight(year, month, day)
        if start is None or start < expiry:
            return start
    return None


def hit_period_start(question: str, expiry: datetime | None) -> datetime | None:
    """Start (00:00 ET, as naive UTC) of the period a barrier question names, from which
    touches count: "March 2-8" (that Monday), "in May" / "in May 2026" (the 1st of the
    month), "in 2025" (January 1), "by December 31[, 2025]" / "by end of 2025" (January 1
    of that year) and "before 2027" (January 1 of the year before). Years left out are
    the latest that starts before ``expiry``; None when nothing matches."""
    text = question or ""
    week = _PERIOD_RE.search(text)
    if week is not None:
        if expiry is None:
            return None
        return _latest_before(_MONTHS.index(week.group(1).lower()) + 1, int(week.group(2)), expiry)
    month = _MONTH_RE.search(text)
    if month is not None:
        number = _MONTHS.index(month.group(1).lower()) + 1
        if month.group(2):
            return _et_midnight(int(month.group(2)), number)
        return None if expiry is None else _latest_before(number, 1, expiry)
    year = _IN_YEAR_RE.search(text)
    if year is not None:
        return _et_midnight(int(year.group(1)), 1)
    by = _BY_DATE_RE.search(text)
    if by is not None:
        named = by.group(2) or by.group(3)
        if named:
            return _et_midnight(int(named), 1)
        if expiry is None:
            return None
        # "by December 31": the year that ends at the expiry (in ET, a minute before it).
        last = (expiry - timedelta(minutes=1)).replace(tzinfo=UTC).astimezone(ET)
        return _et_midnight(last.year, 1)
    before = _BEFORE_YEAR_RE.search(text)
    if before is not None:
        return _et_midnight(int(before.group(1)) - 1, 1)
    return None


def parse_market_terms(m: GammaMarket) -> MarketTerms:
    """Parse a market's contract terms (see module docstring for the order of sources).

    Barrier markets (reach/dip) get ``reference_start`` = the start of the period their
    question names, from which touches count; others keep None.
    """
    terms = _parse_terms(m)
    if terms.family in ("reach", "dip"):
        terms = replace(terms, reference_start=hit_period_start(m.question, m.end_date))
    return terms


def _parse_terms(m: GammaMarket) -> MarketTerms:
    updown = _updown(m)
    if updown is not None:
        return updown
    # Structured: a ladder market's groupItemTitle holds its strike ("64,000", "↑ 90,000").
    if m.group_item_title:
        title_text = f"{m.question} {m.event_title or ''}"
        parsed = _from_text(title_text, m.group_item_title)
        strike = _first_amount("$" + m.group_item_title.lstrip("↑↓ ").strip())
        if parsed and strike is not None and parsed[0] != "range":
            family, direction, _, _ = parsed
            return MarketTerms(family, direction, strike, None, None, m.end_date, "structured")
    for source, text in (("rules", m.description or ""), ("title", m.question or "")):
        # Rules texts repeat the question first; their own wording is searched as a whole.
        parsed = _from_text(text, None)
        if parsed:
            family, direction, strike, high = parsed
            return MarketTerms(family, direction, strike, high, None, m.end_date, source)
    return MarketTerms("other", None, None, None, None, m.end_date, None)
