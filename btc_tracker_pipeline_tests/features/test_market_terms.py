"""Market terms from real fixtures and from the title/rules wordings Polymarket uses."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest

from btc_tracker_pipeline.features.market_terms import parse_amount, parse_market_terms
from btc_tracker_pipeline.sources.gamma import parse_event, parse_market

pytestmark = pytest.mark.unit


def load(fixtures_dir, name):
    return json.loads((fixtures_dir / name).read_text())


def test_15m_updown_from_slug(fixtures_dir):
    for raw in load(fixtures_dir, "gamma_markets_btc_15m_active_nested.json"):
        m = parse_market(raw)
        terms = parse_market_terms(m)
        assert terms.family == "updown_15m" and terms.direction == "up"
        assert terms.parse_source == "structured"
        assert terms.reference_start == m.event_start_time
        assert (terms.expiry - terms.reference_start).total_seconds() == 900


def test_5m_updown_by_slug(fixtures_dir):
    m = parse_market(load(fixtures_dir, "gamma_market_btc_5m_by_slug.json"))
    terms = parse_market_terms(m)
    assert terms.family == "updown_5m"
    assert terms.reference_start == datetime(2026, 3, 22, 7, 50)


def test_above_ladder_strike_from_group_item_title(fixtures_dir):
    search = load(fixtures_dir, "gamma_public_search_bitcoin_above.json")
    event = parse_event(search["events"][0])
    terms = parse_market_terms(event.markets[0])
    assert (terms.family, terms.direction, terms.strike) == ("above", "above", 64000.0)
    assert terms.parse_source == "structured"
    assert terms.expiry == datetime(2026, 3, 11, 16, 0)


def test_non_btc_market_is_flagged_not_guessed(fixtures_dir):
    m = parse_market(load(fixtures_dir, "gamma_market_resolved_katana_fdv.json"))
    terms = parse_market_terms(m)
    assert terms.family == "other" and terms.parse_source is None and terms.strike is None


@pytest.fixture
def template(fixtures_dir):
    raw = load(fixtures_dir, "gamma_market_resolved_katana_fdv.json")
    return replace(parse_market(raw), description="", group_item_title=None, slug="x")


@pytest.mark.parametrize(
    ("question", "family", "direction", "strike", "high"),
    [
        ("Will Bitcoin reach $150,000 by December 31?", "reach", "up", 150_000, None),
        ("Will Bitcoin hit $1.5m in 2027?", "reach", "up", 1_500_000, None),
        ("Will Bitcoin dip to $70,000 March 2-8?", "dip", "down", 70_000, None),
        ("Will the price of Bitcoin be above $64,000 on March 11?", "above", "above", 64_000, None),
        ("Will Bitcoin be below 80k on Friday?", "below", "below", 80_000, None),
        (
            "Will Bitcoin be between $60,000 and $62,000 on May 1?",
            "range",
            "between",
            60_000,
            62_000,
        ),
        ("Bitcoin above 52pt5k on June 3?", "above", "above", 52_500, None),
        ("Will MicroStrategy announce a Bitcoin purchase on March 3?", "other", None, None, None),
    ],
)
def test_title_wordings(template, question, family, direction, strike, high):
    terms = parse_market_terms(replace(template, question=question))
    assert (terms.family, terms.direction, terms.strike, terms.strike_high) == (
        family,
        direction,
        strike,
        high,
    )
    assert terms.parse_source == (None if family == "other" else "title")


def test_rules_text_wins_over_title(template):
    m = replace(
        template,
        question="Bitcoin big move?",
        description="Resolves Yes if any Binance BTC/USDT 1-minute high reaches $120,000.",
    )
    terms = parse_market_terms(m)
    assert (terms.family, terms.strike, terms.parse_source) == ("reach", 120_000, "rules")


@pytest.mark.parametrize(
    ("text", "suffix", "value"),
    [("150,000", None, 150_000), ("52pt5", "k", 52_500), ("1.5", "M", 1_500_000)],
)
def test_parse_amount(text, suffix, value):
    assert parse_amount(text, suffix) == value


def test_barrier_markets_count_touches_from_the_period_in_their_question(template):
    m = replace(
        template,
        question="Will Bitcoin reach $90,000 March 2-8?",
        end_date=datetime(2026, 3, 9, 4, 0),
    )
    terms = parse_market_terms(m)
    assert (terms.family, terms.strike) == ("reach", 90_000)
    # Monday March 2, 00:00 America/New_York (EST) = 05:00 UTC.
    assert terms.reference_start == datetime(2026, 3, 2, 5, 0)


# --- real shapes (docs/apis.md §1.8, §3.8): rules strikes, up/down titles, expiry ---

HIGH_RULES = (
    'This market will immediately resolve to "Yes" if any Binance 1 minute candle for '
    'BTC/USDT between December 1, 12:00 AM ET and December 31, 11:59 PM ET has a final "High" '
    'price of $100,000 or higher. Otherwise, this market will resolve to "No".'
)
LOW_RULES = HIGH_RULES.replace(
    '"High" price of $100,000 or higher', '"Low" price of $70,000 or lower'
)
CLOSE_RULES = (
    'This market will resolve to "Yes" if the Binance 1 minute candle for BTC/USDT 12:00 in '
    'the ET timezone (noon) on the date specified in the title has a final "Close" price of '
    '85,000.01 or higher. Otherwise, this market will resolve to "No".'
)
LESS_RULES = CLOSE_RULES.replace("price of 85,000.01 or higher", "price less than $80,000")


@pytest.mark.parametrize(
    ("rules", "family", "direction", "strike"),
    [
        (HIGH_RULES, "reach", "up", 100_000),
        (LOW_RULES, "dip", "down", 70_000),
        (CLOSE_RULES, "above", "above", 85_000.01),
        (LESS_RULES, "below", "below", 80_000),
    ],
)
def test_binance_rules_give_strike_and_direction(template, rules, family, direction, strike):
    m = replace(template, question="Bitcoin above ___ on March 11?", description=rules)
    terms = parse_market_terms(m)
    assert (terms.family, terms.direction, terms.strike, terms.parse_source) == (
        family,
        direction,
        strike,
        "rules",
    )


def test_fixture_above_rules_alone_name_no_strike(fixtures_dir):
    # The real "Close" rules point at the title for the price: no strike from them.
    raw = load(fixtures_dir, "gamma_public_search_bitcoin_above.json")["events"][0]["markets"][0]
    m = parse_market({**raw, "groupItemTitle": None, "question": "Bitcoin above ___ on March 11?"})
    assert parse_market_terms(m).family == "other"


@pytest.mark.parametrize(
    ("title", "end", "family", "start", "close"),
    [
        # February 7, 2026 is EST (UTC-5).
        (
            "Bitcoin Up or Down - February 7, 8:00PM-8:15PM ET",
            datetime(2026, 2, 8, 1, 15),
            "updown_15m",
            datetime(2026, 2, 8, 1, 0),
            datetime(2026, 2, 8, 1, 15),
        ),
        # March 22, 2026 is EDT (UTC-4).
        (
            "Bitcoin Up or Down - March 22, 3:50AM-3:55AM ET",
            datetime(2026, 3, 22, 7, 55),
            "updown_5m",
            datetime(2026, 3, 22, 7, 50),
            datetime(2026, 3, 22, 7, 55),
        ),
        (
            "Bitcoin Up or Down - March 22, 1PM ET",
            datetime(2026, 3, 22, 18, 0),
            "updown_1h",
            datetime(2026, 3, 22, 17, 0),
            datetime(2026, 3, 22, 18, 0),
        ),
        # Noon ET to noon ET; the title's day, the year from endDate.
        (
            "Bitcoin Up or Down on February 21?",
            datetime(2026, 2, 21, 17, 0),
            "updown_daily",
            datetime(2026, 2, 20, 17, 0),
            datetime(2026, 2, 21, 17, 0),
        ),
        # Across midnight and a year end.
        (
            "Bitcoin Up or Down - December 31, 11:45PM-12:00AM ET",
            datetime(2027, 1, 1, 5, 0),
            "updown_15m",
            datetime(2027, 1, 1, 4, 45),
            datetime(2027, 1, 1, 5, 0),
        ),
        # The second 1 AM when DST ends (November 1, 2026): endDate picks it.
        (
            "Bitcoin Up or Down - November 1, 1:15AM-1:30AM ET",
            datetime(2026, 11, 1, 6, 30),
            "updown_15m",
            datetime(2026, 11, 1, 6, 15),
            datetime(2026, 11, 1, 6, 30),
        ),
    ],
)
def test_updown_window_from_the_title_alone(fixtures_dir, title, end, family, start, close):
    raw = load(fixtures_dir, "gamma_market_btc_5m_by_slug.json")
    raw = {k: v for k, v in raw.items() if k not in ("slug", "eventStartTime", "events")}
    m = parse_market({**raw, "question": title, "endDate": end.isoformat() + "Z"})
    terms = parse_market_terms(m)
    assert (terms.family, terms.reference_start, terms.expiry) == (family, start, close)
    assert terms.parse_source == "title"


def test_daily_above_settles_at_noon_et_whatever_the_end_date(fixtures_dir):
    raw = load(fixtures_dir, "gamma_public_search_bitcoin_above.json")["events"][0]["markets"][0]
    # March 11, 2026 is EDT: noon = 16:00Z = the real endDate.
    assert parse_market_terms(parse_market(raw)).expiry == datetime(2026, 3, 11, 16, 0)
    # The CLOB's end_date_iso is midnight UTC of the day; the rules still say noon ET.
    m = parse_market({**raw, "endDate": "2026-03-11T00:00:00Z"})
    assert parse_market_terms(m).expiry == datetime(2026, 3, 11, 16, 0)
    # In winter Gamma's 16:00Z endDate is 11:00 EST; the noon candle is at 17:00Z.
    winter = {
        **raw,
        "question": "Will the price of Bitcoin be above $64,000 on February 11?",
        "endDate": "2026-02-11T16:00:00Z",
    }
    assert parse_market_terms(parse_market(winter)).expiry == datetime(2026, 2, 11, 17, 0)


@pytest.mark.parametrize(
    ("question", "rules", "end_date", "expiry"),
    [
        # Monday 00:00 EDT after the week.
        (
            "Will Bitcoin reach $90,000 March 9-15?",
            "",
            datetime(2026, 3, 16, 4),
            datetime(2026, 3, 16, 4),
        ),
        # Monthly: "by December 31, 11:59 PM ET" in the rules; Gamma's endDate is noon UTC.
        (
            "Will Bitcoin reach $100,000 in December?",
            HIGH_RULES,
            datetime(2025, 12, 31, 12),
            datetime(2026, 1, 1, 5),
        ),
        (
            "Will Bitcoin dip to $70,000 in May?",
            "",
            datetime(2026, 5, 31, 12),
            datetime(2026, 6, 1, 4),
        ),
        (
            "Will Bitcoin reach $150,000 by December 31?",
            "",
            datetime(2026, 12, 31, 12),
            datetime(2027, 1, 1, 5),
        ),
        (
            "Will Bitcoin hit $1.5m in 2027?",
            "",
            datetime(2027, 12, 31, 12),
            datetime(2028, 1, 1, 5),
        ),
        (
            "Will Bitcoin reach $250,000 before 2027?",
            "",
            datetime(2026, 12, 31, 12),
            datetime(2027, 1, 1, 5),
        ),
    ],
)
def test_barrier_expiry_is_the_end_of_its_period_in_et(template, question, rules, end_date, expiry):
    m = replace(template, question=question, description=rules, end_date=end_date)
    terms = parse_market_terms(m)
    assert terms.family in ("reach", "dip") and terms.expiry == expiry


@pytest.mark.parametrize(
    ("question", "end", "start"),
    [
        # monthly: the 1st at 00:00 ET (EST = UTC-5, EDT = UTC-4)
        ("Will Bitcoin reach $90,000 in March?", datetime(2026, 4, 1, 4), datetime(2026, 3, 1, 5)),
        ("Will Bitcoin dip to $60,000 in May?", datetime(2026, 6, 1, 4), datetime(2026, 5, 1, 4)),
        # December's market ends on January 1 of the next year
        ("Will Bitcoin reach $99k in December?", datetime(2026, 1, 1, 5), datetime(2025, 12, 1, 5)),
        ("Will Bitcoin reach $150,000 in 2025?", datetime(2026, 1, 1, 5), datetime(2025, 1, 1, 5)),
        (
            "Will Bitcoin reach $200k by December 31?",
            datetime(2026, 1, 1, 5),
            datetime(2025, 1, 1, 5),
        ),
        ("Will Bitcoin dip to $50k by December 31, 2026?", None, datetime(2026, 1, 1, 5)),
        ("Will Bitcoin reach $1m before 2027?", datetime(2027, 1, 1, 5), datetime(2026, 1, 1, 5)),
    ],
)
def test_monthly_and_yearly_barriers_count_touches_from_their_period(
    template, question, end, start
):
    m = replace(template, question=question, end_date=end, group_item_title=None)
    terms = parse_market_terms(m)
    assert terms.family in ("reach", "dip")
    assert terms.reference_start == start
