"""Malformed payloads raise MalformedResponseError naming the field and the value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from btc_tracker_pipeline.sources.binance import parse_raw_klines, parse_ticker
from btc_tracker_pipeline.sources.clob import (
    parse_book,
    parse_clob_winner,
    parse_midpoint,
    parse_prices_history,
)
from btc_tracker_pipeline.sources.errors import MalformedResponseError
from btc_tracker_pipeline.sources.gamma import parse_event, parse_json_list, parse_market

pytestmark = pytest.mark.unit


@pytest.fixture
def market_5m(fixtures_dir: Path) -> dict[str, Any]:
    return json.loads((fixtures_dir / "gamma_market_btc_5m_by_slug.json").read_text())


def test_truncated_json_string_field(market_5m: dict[str, Any]) -> None:
    market_5m["outcomePrices"] = '["0.5"'

    with pytest.raises(MalformedResponseError) as caught:
        parse_market(market_5m)

    assert str(caught.value) == """outcomePrices: expected a JSON list, got '["0.5"'"""


def test_json_string_that_is_not_a_list() -> None:
    with pytest.raises(MalformedResponseError, match=r"^clobTokenIds: expected a JSON list"):
        parse_json_list('{"a": 1}', "clobTokenIds")


@pytest.mark.parametrize("field", ["bestBid", "bestAsk", "spread", "volumeNum", "volume24hr"])
def test_dict_where_number_belongs(market_5m: dict[str, Any], field: str) -> None:
    market_5m[field] = {"value": 0.5}

    with pytest.raises(MalformedResponseError) as caught:
        parse_market(market_5m)

    assert str(caught.value).startswith(f"{field}: expected a number, got {{'value': 0.5}}")


def test_non_numeric_string_in_outcome_prices(market_5m: dict[str, Any]) -> None:
    market_5m["outcomePrices"] = '["0.5", "n/a"]'

    with pytest.raises(MalformedResponseError, match=r"^outcomePrices\[1\]: .*'n/a'"):
        parse_market(market_5m)


def test_bool_is_not_a_number(market_5m: dict[str, Any]) -> None:
    market_5m["lastTradePrice"] = True

    with pytest.raises(MalformedResponseError, match=r"^lastTradePrice: expected a number"):
        parse_market(market_5m)


def test_prices_and_outcomes_must_line_up(market_5m: dict[str, Any]) -> None:
    market_5m["outcomePrices"] = '["1"]'

    with pytest.raises(MalformedResponseError, match=r"^outcomePrices: expected 2 prices"):
        parse_market(market_5m)


@pytest.mark.parametrize("bad_id", [None, "", {"id": 1}, 1.5, True])
def test_market_id_required_string_or_int(market_5m: dict[str, Any], bad_id: object) -> None:
    market_5m["id"] = bad_id

    with pytest.raises(MalformedResponseError, match=r"^id: "):
        parse_market(market_5m)


def test_fee_schedule_of_wrong_shape(market_5m: dict[str, Any]) -> None:
    market_5m["feeSchedule"] = "0.25"

    with pytest.raises(MalformedResponseError, match=r"^feeSchedule: expected an object"):
        parse_market(market_5m)


def test_price_to_beat_of_wrong_shape(market_5m: dict[str, Any]) -> None:
    market_5m["events"][0]["eventMetadata"] = {"priceToBeat": "about 69k"}

    with pytest.raises(MalformedResponseError, match=r"eventMetadata.priceToBeat: .*about 69k"):
        parse_market(market_5m)


def test_event_markets_not_a_list() -> None:
    with pytest.raises(MalformedResponseError, match=r"^markets: expected a list"):
        parse_event({"id": "1", "markets": {"0": {}}})


def test_prices_history_point_of_wrong_shape() -> None:
    with pytest.raises(MalformedResponseError, match=r"^history\[1\]\.p: .*\[0\.5\]"):
        parse_prices_history({"history": [{"t": 1, "p": 0.5}, {"t": 2, "p": [0.5]}]})
    with pytest.raises(MalformedResponseError, match=r"^history: expected a list"):
        parse_prices_history({"error": "interval is too long"})


def test_book_level_of_wrong_shape() -> None:
    with pytest.raises(MalformedResponseError, match=r"^asks\[0\]\.size: .*'lots'"):
        parse_book({"bids": [], "asks": [{"price": "0.5", "size": "lots"}]})


def test_midpoint_of_wrong_shape() -> None:
    with pytest.raises(MalformedResponseError, match=r"^mid: expected a number"):
        parse_midpoint({"mid": {"value": "0.5"}})


def test_two_clob_winners_is_malformed() -> None:
    tokens = [{"token_id": "1", "winner": True}, {"token_id": "2", "winner": True}]

    with pytest.raises(MalformedResponseError, match=r"at most one winner"):
        parse_clob_winner({"tokens": tokens})


def test_kline_row_too_short() -> None:
    with pytest.raises(
        MalformedResponseError, match=r"^klines\[0\]: expected a list of at least 12"
    ):
        parse_raw_klines([[1634943780000, "60685.22"]])


def test_ticker_without_last() -> None:
    with pytest.raises(MalformedResponseError, match=r"^ticker.last: expected a number"):
        parse_ticker({"timestamp": 1789957329005, "last": None})
