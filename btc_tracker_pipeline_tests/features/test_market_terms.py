"""Market terms from real fixtures and from the title/rules wordings Polymarket uses."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest

from btc_tracker_pipeline.features.market_terms import parse_amount, parse_market_terms
from btc_tracker_pipeline.sources.gamma import parse_event, parse_market


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
