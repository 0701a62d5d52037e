"""Gamma parsers on the real recorded responses the tests read (``$BTC_TRACKER_FIXTURES``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from btc_tracker_pipeline.sources.errors import MalformedResponseError
from btc_tracker_pipeline.sources.gamma import (
    parse_event,
    parse_json_list,
    parse_market,
    parse_number,
    parse_tag_ids,
    parse_timestamp,
)

pytestmark = pytest.mark.unit


def load(fixtures_dir: Path, name: str) -> Any:
    return json.loads((fixtures_dir / name).read_text())


# ---------------------------------------------------------------- 15-minute markets


def test_btc_15m_nested_markets(fixtures_dir: Path) -> None:
    markets = [
        parse_market(m) for m in load(fixtures_dir, "gamma_markets_btc_15m_active_nested.json")
    ]

    assert [m.id for m in markets] == [
        "1344329",
        "1344337",
        "1344722",
        "1344756",
        "1344776",
        "1344784",
        "1345422",
    ]
    first = markets[0]
    assert first.slug == "btc-updown-15m-1770441300"
    assert first.outcomes == ("Up", "Down")
    assert first.outcome_prices == (0.485, 0.515)
    assert first.token_ids == (
        "103797869501185622675686286143116365456172486413262882949733746985132039456118",
        "87230720226039228491160679707262861221783185632438600159308477855910358240036",
    )
    assert (first.best_bid, first.best_ask, first.spread) == (0.48, 0.49, 0.01)
    assert first.volume == pytest.approx(255.172933)
    assert first.liquidity == pytest.approx(13350.3218)
    assert first.volume_24h is None  # absent on this version of the object
    assert markets[3].volume_24h == 25.0  # sent as the JSON int 25
    assert markets[6].volume_24h == pytest.approx(285.581567)
    assert first.event_start_time == datetime(2026, 2, 7, 5, 15)
    assert first.end_date == datetime(2026, 2, 7, 5, 30)
    assert first.start_date == datetime(2026, 2, 6, 5, 22, 52, 920711)
    assert first.fees_enabled is True and first.fee_rate is None  # no feeSchedule key
    assert first.tick_size == 0.01
    assert first.active and not first.closed and first.accepting_orders
    # Nested in an event without the event given: no event fields.
    assert first.event_id is None and first.series_slug is None and first.tag_ids == ()
    for m in markets:
        assert m.end_date is not None and m.event_start_time is not None
        assert m.end_date - m.event_start_time == timedelta(minutes=15)
        window_start = int(m.slug.rsplit("-", 1)[1])
        assert m.event_start_time == datetime(1970, 1, 1) + timedelta(seconds=window_start)
        assert len(m.token_ids) == 2 and all(len(t) >= 76 for t in m.token_ids)
        assert m.outcome_prices is not None and sum(m.outcome_prices) == pytest.approx(1.0)


def test_nested_market_takes_event_argument(fixtures_dir: Path) -> None:
    raw = load(fixtures_dir, "gamma_markets_btc_15m_active_nested.json")[0]
    event = {
        "id": 999,
        "slug": "btc-updown-15m-1770441300",
        "title": "Bitcoin Up or Down",
        "series": [{"slug": "btc-up-or-down-15m"}],
        "tags": [{"id": "235"}],
        "eventMetadata": {"priceToBeat": "70000.5"},
    }

    market = parse_market(raw, event=event)

    assert market.event_id == "999"
    assert market.event_slug == "btc-updown-15m-1770441300"
    assert market.series_slug == "btc-up-or-down-15m"
    assert market.price_to_beat == 70000.5
    assert market.tag_ids == ("235",)


# ---------------------------------------------------------------- 5-minute by slug


def test_btc_5m_market_by_slug(fixtures_dir: Path) -> None:
    market = parse_market(load(fixtures_dir, "gamma_market_btc_5m_by_slug.json"))

    assert market.id == "1669969"
    assert market.slug == "btc-updown-5m-1774165800"
    assert market.condition_id == (
        "0xba3509c3c29a52bb2f8cf8204755314a38461825e61e77e6350f5abd4b848e05"
    )
    assert market.best_bid is None  # absent: empty bid side
    assert market.best_ask == 0.01
    assert market.last_trade_price == 0.01
    assert market.outcome_prices == (0.005, 0.995)
    assert market.token_ids[0] == (
        "94242206871221370391055736153305071391564432448684801902267396130896523340261"
    )
    assert market.series_slug == "btc-up-or-down-5m"
    assert market.event_id == "292275"
    assert market.event_slug == "btc-updown-5m-1774165800"
    assert market.event_title == "Bitcoin Up or Down - March 22, 3:50AM-3:55AM ET"
    assert market.price_to_beat == 69047.89810564333
    assert market.event_start_time == datetime(2026, 3, 22, 7, 50)
    assert market.end_date == datetime(2026, 3, 22, 7, 55)
    assert market.end_date - market.event_start_time == timedelta(minutes=5)
    assert market.volume == 61531.93476599994
    assert market.liquidity == 19748.9135
    assert market.volume_24h == 70934.07902500001
    assert (market.fees_enabled, market.fee_rate, market.fee_exponent) == (True, 0.25, 2.0)
    assert market.tick_size == 0.001
    assert market.active is True and market.closed is False
    assert market.uma_resolution_status is None
    assert market.group_item_threshold == "0"
    assert market.resolution_source == "https://data.chain.link/streams/btc-usd"


# ---------------------------------------------------------------- resolved markets


def test_resolved_katana_market(fixtures_dir: Path) -> None:
    market = parse_market(load(fixtures_dir, "gamma_market_resolved_katana_fdv.json"))

    assert market.id == "1460332"
    assert market.closed is True and market.active is True
    assert market.accepting_orders is False
    assert market.outcomes == ("Yes", "No")
    assert market.outcome_prices == (0.0, 1.0)
    assert market.closed_time == datetime(2026, 3, 19, 23, 20, 15)
    assert market.uma_resolution_status == "resolved"
    assert market.volume is None and market.liquidity is None  # keys absent
    assert market.best_bid is None and market.best_ask == 0.001
    assert market.group_item_title == "$1B"
    assert market.fees_enabled is False and market.fee_rate is None
    assert market.start_date == datetime(2026, 2, 27, 23, 34, 28, 752000)
    assert market.token_ids[1] == (
        "89711174926330519158043401581181146613785179104141808554061413232025882707365"
    )
    assert market.event_id is None


def test_closed_market_without_uma_status(fixtures_dir: Path) -> None:
    market = parse_market(load(fixtures_dir, "gamma_market_closed_no_uma_status.json"))

    assert market.id == "1812085"
    assert market.closed is True and market.accepting_orders is True
    assert market.uma_resolution_status is None
    assert market.outcome_prices == (1.0, 0.0)
    assert market.closed_time == datetime(2026, 5, 9, 2, 7, 1)
    assert (market.best_bid, market.best_ask, market.last_trade_price) == (0.69, 0.71, 0.7)
    assert market.volume == 192817.4904490008  # volumeNum
    assert market.liquidity is None
    assert market.tick_size == 0.01
    assert market.group_item_title == ""


# ---------------------------------------------------------------- events, search, tags


def test_public_search_nested_markets(fixtures_dir: Path) -> None:
    body = load(fixtures_dir, "gamma_public_search_bitcoin_above.json")

    events = [parse_event(e) for e in body["events"]]

    assert [e.id for e in events] == ["246060"]
    event = events[0]
    assert event.slug == "bitcoin-above-on-march-11"
    assert event.title == "Bitcoin above ___ on March 11?"
    assert event.series_slug == "btc-multi-strikes-weekly"
    assert event.tag_ids == ("235", "102264", "102516", "21", "1312", "101757", "102169")
    assert event.end_date == datetime(2026, 3, 11, 16, 0)
    assert event.closed is False
    [market] = event.markets
    assert market.id == "1500056"
    assert market.question == "Will the price of Bitcoin be above $64,000 on March 11?"
    assert market.group_item_title == "64,000"
    assert market.outcome_prices == (0.9995, 0.0005)
    assert (market.best_bid, market.best_ask) == (0.999, 1.0)
    assert market.event_id == "246060"
    assert market.event_slug == "bitcoin-above-on-march-11"
    assert market.series_slug == "btc-multi-strikes-weekly"
    assert "235" in market.tag_ids and "1312" in market.tag_ids
    assert market.price_to_beat is None


def test_events_list(fixtures_dir: Path) -> None:
    events = [parse_event(e) for e in load(fixtures_dir, "gamma_events_list_sample.json")]

    assert len(events) == 1
    event = events[0]
    assert event.id == "30829"
    assert event.slug == "democratic-presidential-nominee-2028"
    assert event.series_slug is None
    assert event.tag_ids[:2] == ("101206", "1597")
    assert event.start_date == datetime(2025, 7, 11, 18, 41, 17, 827458)
    assert [m.id for m in event.markets] == ["559657", "559659"]
    assert [m.outcome_prices for m in event.markets] == [(0.0105, 0.9895), (0.0145, 0.9855)]
    assert all(m.event_id == "30829" for m in event.markets)
    assert event.markets[1].token_ids[0] == (
        "57761428076807364758801249497410455358987881775226117256631754592198558850468"
    )


def test_tags(fixtures_dir: Path) -> None:
    tags = load(fixtures_dir, "gamma_tags_sample.json")

    assert parse_tag_ids(tags) == ("101259", "101842", "101302", "102067", "101944")


# ---------------------------------------------------------------- field helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-22T07:55:00Z", datetime(2026, 3, 22, 7, 55)),
        ("2026-03-21T07:58:17.582157Z", datetime(2026, 3, 21, 7, 58, 17, 582157)),
        ("2026-02-27T23:34:28.752Z", datetime(2026, 2, 27, 23, 34, 28, 752000)),
        ("2026-04-01T18:24:05.41Z", datetime(2026, 4, 1, 18, 24, 5, 410000)),
        ("2026-03-19 23:20:15+00", datetime(2026, 3, 19, 23, 20, 15)),
        ("2023-11-02 21:40:32.968+00", datetime(2023, 11, 2, 21, 40, 32, 968000)),
        ("2026-03-22T03:55:00-04:00", datetime(2026, 3, 22, 7, 55)),
        ("2026-03-22", datetime(2026, 3, 22)),
        (None, None),
        ("", None),
    ],
)
def test_parse_timestamp(value: str | None, expected: datetime | None) -> None:
    parsed = parse_timestamp(value)

    assert parsed == expected
    assert parsed is None or parsed.tzinfo is None


def test_parse_timestamp_rejects_garbage() -> None:
    with pytest.raises(MalformedResponseError, match=r"closedTime: .*'yesterday'"):
        parse_timestamp("yesterday", "closedTime")


def test_parse_json_list_accepts_string_and_list() -> None:
    assert parse_json_list('["0.52", "0.48"]', "outcomePrices") == ["0.52", "0.48"]
    assert parse_json_list(["Up", "Down"], "outcomes") == ["Up", "Down"]
    assert parse_json_list(None, "outcomes") is None


@pytest.mark.parametrize(
    ("value", "expected"), [("0.52", 0.52), (1, 1.0), (0.25, 0.25), (None, None), ("", None)]
)
def test_parse_number_accepts_strings_ints_floats(value: object, expected: float | None) -> None:
    assert parse_number(value, "bestAsk") == expected


def test_real_lists_and_numbers_are_accepted(fixtures_dir: Path) -> None:
    raw = load(fixtures_dir, "gamma_market_btc_5m_by_slug.json")
    raw |= {
        "outcomes": ["Up", "Down"],
        "outcomePrices": [0.25, "0.75"],
        "clobTokenIds": [123, "456"],
        "id": 1669969,
        "bestBid": "0.004",
    }

    market = parse_market(raw)

    assert market.id == "1669969"
    assert market.outcome_prices == (0.25, 0.75)
    assert market.token_ids == ("123", "456")
    assert market.best_bid == 0.004


def test_neg_risk_and_twap_fields(fixtures_dir):
    events = json.loads((fixtures_dir / "gamma_events_list_sample.json").read_text())
    neg = parse_market(events[0]["markets"][0], events[0])
    assert neg.neg_risk is True
    assert neg.neg_risk_market_id == (
        "0x2c3d7e0eee6f058be3006baabf0d54a07da254ba47fe6e3e095e7990c7814700"
    )
    raw = json.loads((fixtures_dir / "gamma_market_btc_5m_by_slug.json").read_text())
    plain = parse_market(raw)
    assert (plain.neg_risk, plain.neg_risk_market_id, plain.twap_enabled) == (False, None, None)
    # cryptoMarketConfig as docs/apis.md §1.6 quotes it (newer crypto markets).
    config = {
        "id": "btc-5m-twap-60",
        "asset": "btc",
        "duration": "5m",
        "twapEnabled": True,
        "twapLookbackSeconds": 60,
    }
    twap = parse_market({**raw, "cryptoMarketConfig": config})
    assert (twap.twap_enabled, twap.twap_lookback_seconds) == (True, 60)
    absent = parse_market({k: v for k, v in raw.items() if not k.startswith("negRisk")})
    assert absent.neg_risk is None
