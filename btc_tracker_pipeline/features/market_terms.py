"""What a BTC market pays on: family, strike(s), direction, reference start and expiry.

Parsed from the structured Gamma fields first (slug pattern, ``eventStartTime``,
``groupItemTitle``), then the rules text (``description``), then the title
(``question``). A market none of them explains is family ``other`` with
``parse_source`` None: flagged, never guessed.

``expiry`` is the settlement instant the terms give (``settlement_expiry``), not
blindly ``endDate``: an up/down window's close, 12:00 ET for daily strike markets
whose rules name the noon candle, the end of the named period (in ET) for barriers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
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
_MONTH_NAMES = "|".join(m.capitalize() for m in _MONTHS)
# Rules of Binance-settled strike markets: `final "High" price of $100,000 or higher`,
# `"Low" price of $70,000 or lower`, `"Close" price of 85,000.01 or higher`,
# `"Close" price less than $80,000`.
_RULES_STRIKE_RE = re.compile(
    r'"(High|Low|Close)"\s+prices?\s+(?:of\s+)?'
    r"(?:(higher|greater|less|lower)\s+than\s+(?:or\s+equal\s+to\s+)?)?"
    + _AMOUNT
    + r"(?:\s*or\s+(higher|greater|more|above|lower|less|below))?",
    re.IGNORECASE,
)
_THAN_RE = re.compile(r"\b(less|lower|greater|higher|more)\s+than\s+" + _AMOUNT, re.IGNORECASE)
_UPWARD = ("higher", "greater", "more", "above")
# Up/down titles: "Bitcoin Up or Down - February 7, 8:00PM-8:15PM ET" (5m/15m/4h),
# "Bitcoin Up or Down - March 22, 1PM ET" (hourly), "Bitcoin Up or Down on February 21?"
# (daily). Times are wall-clock America/New_York.
_CLOCK = r"(\d{1,2})(?::(\d{2}))?\s*([AP]M)"
_UD_RANGE_RE = re.compile(
    r"up or down\s*-\s*(" + _MONTH_NAMES + r")\s+(\d{1,2}),\s*"
    r"(\d{1,2})(?::(\d{2}))?\s*([AP]M)?\s*-\s*" + _CLOCK + r"\s*ET\b",
    re.IGNORECASE,
)
_UD_HOUR_RE = re.compile(
    r"up or down\s*-\s*(" + _MONTH_NAMES + r")\s+(\d{1,2}),\s*" + _CLOCK + r"\s*ET\b",
    re.IGNORECASE,
)
_UD_DAY_RE = re.compile(r"up or down on\s+(" + _MONTH_NAMES + r")\s+(\d{1,2})\b", re.IGNORECASE)
# Daily strike rules: "Binance 1 minute candle for BTC/USDT 12:00 in the ET timezone (noon)".
_NOON_RE = re.compile(r"\b12:00\s*(?:PM\s+ET\b|in the ET timezone)", re.IGNORECASE)
_ON_DAY_RE = re.compile(r"\bon\s+(" + _MONTH_NAMES + r")\s+(\d{1,2})\b")
# Barrier periods (month names capitalised: "in may" is not a month).
_BY_DAY_RE = re.compile(r"\b[Bb]y\s+(" + _MONTH_NAMES + r")\s+(\d{1,2})(?:,?\s+(\d{4}))?")
_BEFORE_DAY_RE = re.compile(r"\b[Bb]efore\s+(" + _MONTH_NAMES + r")\s+(\d{1,2})(?:,?\s+(\d{4}))?")
_IN_MONTH_RE = re.compile(r"\b[Ii]n\s+(" + _MONTH_NAMES + r")(?:\s+(\d{4}))?\b")
_IN_YEAR_RE = re.compile(r"\b[Ii]n\s+(\d{4})\b")
_BEFORE_YEAR_RE = re.compile(r"\b[Bb]efore\s+(\d{4})\b")
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


def _et_to_utc(day: date, hour: int, minute: int, fold: int = 0) -> datetime:
    """Naive UTC of a wall-clock time in America/New_York; ``fold`` picks the second of
    the two 1 AM hours when DST ends."""
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=ET, fold=fold)
    return local.astimezone(UTC).replace(tzinfo=None)


def _hour24(hour: str, meridiem: str) -> int:
    return int(hour) % 12 + (12 if meridiem.upper() == "PM" else 0)


def _dates_near(month: str, day: int, anchor: datetime) -> list[date]:
    """The dates "<month> <day>" in the anchor's year and the years either side (titles
    name no year), nearest the anchor first."""
    number = _MONTHS.index(month.lower()) + 1
    found = []
    for year in (anchor.year - 1, anchor.year, anchor.year + 1):
        try:
            found.append(date(year, number, day))
        except ValueError:
            continue
    return sorted(found, key=lambda d: abs(datetime(d.year, d.month, d.day) - anchor))


def updown_window_from_title(title: str, anchor: datetime) -> tuple[datetime, datetime] | None:
    """(window open, window close) as naive UTC from an up/down title, or None.

    "… - February 7, 8:00PM-8:15PM ET" is that range, "… - March 22, 1PM ET" the hour
    from 1 PM, "… on February 21?" noon ET of the day before to noon ET of that day (the
    daily market compares 12:00 ET closes). The year, and which of two identical wall
    clocks when DST ends, are the ones that put the close nearest ``anchor`` (``endDate``).
    """
    candidates: list[tuple[datetime, datetime]] = []
    if match := _UD_RANGE_RE.search(title):
        month, day = match.group(1), int(match.group(2))
        end_h, end_m = _hour24(match.group(6), match.group(8)), int(match.group(7) or 0)
        start_h = _hour24(match.group(3), match.group(5) or match.group(8))
        start_m = int(match.group(4) or 0)
        for d in _dates_near(month, day, anchor):
            end_day = d + timedelta(days=1) if (end_h, end_m) <= (start_h, start_m) else d
            for fold in (0, 1):
                start = _et_to_utc(d, start_h, start_m, fold)
                candidates.append((start, _et_to_utc(end_day, end_h, end_m, fold)))
    elif match := _UD_HOUR_RE.search(title):
        hour, minute = _hour24(match.group(3), match.group(5)), int(match.group(4) or 0)
        for d in _dates_near(match.group(1), int(match.group(2)), anchor):
            for fold in (0, 1):
                start = _et_to_utc(d, hour, minute, fold)
                candidates.append((start, start + timedelta(hours=1)))
    elif match := _UD_DAY_RE.search(title):
        for d in _dates_near(match.group(1), int(match.group(2)), anchor):
            candidates.append((_et_to_utc(d - timedelta(days=1), 12, 0), _et_to_utc(d, 12, 0)))
    if not candidates:
        return None
    return min(candidates, key=lambda window: abs(window[1] - anchor))


def _updown(m: GammaMarket) -> MarketTerms | None:
    slug_match = UPDOWN_SLUG.match(m.slug or "")
    if slug_match:
        start = datetime.utcfromtimestamp(int(slug_match.group(2)))
        duration = SLUG_DURATION[slug_match.group(1)]
        family = UPDOWN_BY_DURATION[duration]
        return MarketTerms(family, "up", None, None, start, start + duration, "structured")
    title = m.question if "up or down" in (m.question or "").lower() else m.event_title or ""
    if "up or down" not in title.lower():
        return None
    if m.event_start_time is not None and m.end_date is not None:
        family = UPDOWN_BY_DURATION.get(m.end_date - m.event_start_time)
        if family is not None:
            return MarketTerms(
                family, "up", None, None, m.event_start_time, m.end_date, "structured"
            )
    anchor = m.end_date or m.start_date
    window = updown_window_from_title(title, anchor) if anchor is not None else None
    if window is not None:
        start, end = window
        family = "updown_daily" if _UD_DAY_RE.search(title) else UPDOWN_BY_DURATION.get(end - start)
        if family is not None:
            return MarketTerms(family, "up", None, None, start, end, "title")
    if m.end_date is None:
        return None
    # A title of no known wording: guess the kind from the slug.
    duration = timedelta(days=1) if "-on-" in (m.slug or "") else timedelta(hours=1)
    start = m.end_date - duration
    return MarketTerms(UPDOWN_BY_DURATION[duration], "up", None, None, start, m.end_date, "title")


def _from_rules_field(text: str) -> tuple[str, str, float, float | None] | None:
    """Terms from a rules sentence on a Binance candle field, e.g. ``"High" price of
    $100,000 or higher`` (reach), ``"Low" … or lower`` (dip), ``"Close" … or higher``
    (above) / ``less than $X`` (below)."""
    match = _RULES_STRIKE_RE.search(text)
    if match is None:
        return None
    strike = parse_amount(match.group(3), match.group(4))
    words = (match.group(2) or match.group(5) or "").lower()
    if not words or not _plausible_btc(strike):
        return None
    up = words in _UPWARD
    field = match.group(1).lower()
    if field == "high":
        return ("reach", "up", strike, None) if up else None
    if field == "low":
        return None if up else ("dip", "down", strike, None)
    return ("above", "above", strike, None) if up else ("below", "below", strike, None)


def _from_than(text: str) -> tuple[str, str, float, float | None] | None:
    """``less than $80,000`` (below) / ``greater than $90,000`` (above)."""
    match = _THAN_RE.search(text)
    if match is None:
        return None
    strike = parse_amount(match.group(2), match.group(3))
    if not _plausible_btc(strike):
        return None
    if match.group(1).lower() in _UPWARD:
        return "above", "above", strike, None
    return "below", "below", strike, None


def _from_text(text: str, group_title: str | None) -> tuple[str, str, float, float | None] | None:
    rules = _from_rules_field(text)
    if rules is not None:
        return rules
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
    return _from_than(text)


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


def settles_on_twap(m: GammaMarket) -> bool:
    """True when the market settles on a time-weighted average of its feed, not on one
    price: ``cryptoMarketConfig.twapEnabled`` (newer crypto markets) or a resolution
    source naming a TWAP stream (``…/streams/btc-usd-twap-60s-streams``)."""
    return bool(m.twap_enabled) or "twap" in (m.resolution_source or "").lower()


def _midnight_after(day: date) -> datetime:
    """00:00 ET of the day after ``day`` (= the end of its 11:59 PM ET minute), naive UTC."""
    return _et_to_utc(day + timedelta(days=1), 0, 0)


def _nearest(ends: list[datetime], anchor: datetime | None) -> datetime | None:
    if not ends:
        return None
    if anchor is None:
        return ends[0] if len(ends) == 1 else None
    return min(ends, key=lambda end: abs(end - anchor))


def _period_end_in(text: str, anchor: datetime | None) -> datetime | None:
    """End (ET) of the period one text names; see ``barrier_period_end``."""
    years = [anchor.year - 1, anchor.year, anchor.year + 1] if anchor else []

    def month_number(name: str) -> int:
        return _MONTHS.index(name.lower()) + 1

    def day_ends(month: str, day: int, year: str | None, shift: int) -> list[datetime]:
        ends = []
        for y in [int(year)] if year else years:
            try:
                d = date(y, month_number(month), day)
            except ValueError:
                continue
            ends.append(_et_to_utc(d + timedelta(days=shift), 0, 0))
        return ends

    if match := _PERIOD_RE.search(text):
        month = match.group(3) or match.group(1)
        return _nearest(day_ends(month, int(match.group(4)), None, 1), anchor)
    if match := _BY_DAY_RE.search(text):
        return _nearest(day_ends(match.group(1), int(match.group(2)), match.group(3), 1), anchor)
    if match := _BEFORE_DAY_RE.search(text):
        return _nearest(day_ends(match.group(1), int(match.group(2)), match.group(3), 0), anchor)
    if match := _IN_MONTH_RE.search(text):
        number = month_number(match.group(1))
        ends = [
            _et_to_utc(date(y + number // 12, number % 12 + 1, 1), 0, 0)
            for y in ([int(match.group(2))] if match.group(2) else years)
        ]
        return _nearest(ends, anchor)
    if match := _IN_YEAR_RE.search(text):
        return _et_to_utc(date(int(match.group(1)) + 1, 1, 1), 0, 0)
    if match := _BEFORE_YEAR_RE.search(text):
        return _et_to_utc(date(int(match.group(1)), 1, 1), 0, 0)
    return None


def barrier_period_end(question: str, rules: str, end_date: datetime | None) -> datetime | None:
    """When a reach/dip market's touch window closes, naive UTC: the end, in ET, of the
    period its question (else its rules) names: "March 2-8" → March 9 00:00 ET, "by
    December 31[, 11:59 PM ET]" → January 1 00:00 ET, "in May" → June 1, "in 2025" →
    2026-01-01, "before 2027" → 2027-01-01 (all 00:00 ET). A period without a year takes
    the one nearest ``end_date``. None when neither names a period."""
    for text in (question or "", rules or ""):
        end = _period_end_in(text, end_date)
        if end is not None:
            return end
    return None


def daily_noon_expiry(m: GammaMarket) -> datetime | None:
    """12:00 ET on the market's day when its rules settle on the noon candle ("Binance 1
    minute candle for BTC/USDT 12:00 in the ET timezone (noon) on the date specified in
    the title"), else None. The day is the title's "on March 11" (year nearest
    ``endDate``), else ``endDate``'s UTC date (Gamma's 16:00Z and the CLOB's midnight UTC
    both fall on it). Gamma's ``endDate`` is 16:00Z all year: noon EDT but 11:00 EST."""
    if not _NOON_RE.search(m.description or ""):
        return None
    anchor = m.end_date
    match = _ON_DAY_RE.search(m.question or "")
    if match and anchor is not None:
        days = _dates_near(match.group(1), int(match.group(2)), anchor)
        return _et_to_utc(days[0], 12, 0) if days else None
    return None if anchor is None else _et_to_utc(anchor.date(), 12, 0)


def settlement_expiry(m: GammaMarket, terms: MarketTerms) -> datetime | None:
    """The instant the outcome is fixed, as the terms give it (naive UTC): an up/down
    window's close (already in ``terms``), 12:00 ET for daily above/below/range markets
    on the noon candle, the period end for barriers; ``endDate`` otherwise."""
    if terms.family.startswith("updown"):
        return terms.expiry
    if terms.family in ("above", "below", "range"):
        return daily_noon_expiry(m) or m.end_date
    if terms.family in ("reach", "dip"):
        return barrier_period_end(m.question, m.description, m.end_date) or m.end_date
    return m.end_date


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
    question names, from which touches count; others keep None. ``expiry`` is
    ``settlement_expiry``.
    """
    terms = _parse_terms(m)
    if terms.family in ("reach", "dip"):
        terms = replace(terms, reference_start=hit_period_start(m.question, m.end_date))
    return replace(terms, expiry=settlement_expiry(m, terms))


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
