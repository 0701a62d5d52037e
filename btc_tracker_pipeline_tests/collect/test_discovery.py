"""Discovery through the replay server over a recorded world: tags, dates, bad objects."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from btc_tracker_pipeline.collect.discovery import discover, tracked_frame
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.recorded import RecordedWorld
from btc_tracker_pipeline.sources.gamma import GammaClient
from btc_tracker_pipeline.sources.http import HttpSettings, JsonHttp, make_client

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 11, 20, 0)


def market(mid: str, strike: int, *, end: str, closed: bool = False, **extra) -> dict:
    raw = {
        "id": mid,
        "question": f"Will the price of Bitcoin be above ${strike:,} on March 11?",
        "slug": f"bitcoin-above-{strike // 1000}k-on-march-11",
        "conditionId": "0x" + mid.rjust(64, "0"),
        "outcomes": '["Yes", "No"]',
        "outcomePrices": '["1", "0"]' if closed else '["0.6", "0.4"]',
        "clobTokenIds": json.dumps([mid + "1" * 70, mid + "2" * 70]),
        "startDate": "2026-03-09T16:00:00Z",
        "endDate": end,
        "active": True,
        "closed": closed,
        "groupItemTitle": f"{strike:,}",
        "events": [
            {
                "id": "9001",
                "slug": "bitcoin-above-on-march-11",
                "title": "Bitcoin above ___ on March 11?",
                "tags": [{"id": "235", "label": "Bitcoin", "slug": "bitcoin"}],
            }
        ],
    }
    if closed:
        raw["closedTime"] = "2026-03-11 17:00:00+00"
    return raw | extra


@pytest.fixture
def gamma(tmp_path):
    lines = [
        market("101", 64000, end="2026-03-11T16:00:00Z", closed=True),
        market("102", 66000, end="2026-03-12T16:00:00Z"),
        market("103", 68000, end="2026-03-12T16:00:00Z", volumeNum={"not": "a number"}),
        market("104", 70000, end="2026-03-10T16:00:00Z", closed=True),
    ]
    (tmp_path / "markets.jsonl").write_text("\n".join(json.dumps(m) for m in lines) + "\n")
    (tmp_path / "klines.csv").write_text(
        "open_time_ms,open,high,low,close,volume\n"
        "1773259200000,80000,80010,79990,80005,1.5\n"
        "1773259260000,80005,80020,80000,80010,2.0\n"
    )
    with ReplayServer(RecordedWorld(tmp_path, now=NOW)) as server:
        http = JsonHttp(make_client(HttpSettings()), HttpSettings())
        yield GammaClient(http, f"{server.url}/gamma")
        http.close()


def test_history_discovery_includes_closed_markets_and_skips_bad_objects(gamma):
    found = discover(
        gamma, datetime(2026, 3, 11, 15, 45), datetime(2026, 3, 11, 16, 0), include_closed=True
    )
    assert [m.id for m in found.markets] == ["101", "102"]
    assert len(found.malformed) == 1
    assert (
        found.malformed[0].startswith("market 103: skipped") and "volumeNum" in found.malformed[0]
    )


def test_live_discovery_sees_only_open_markets(gamma):
    found = discover(gamma, datetime(2026, 3, 11, 19, 45), NOW, include_closed=False)
    assert [m.id for m in found.markets] == ["102"]


def test_explicit_ids_report_unknown_ones(gamma):
    found = discover(
        gamma,
        datetime(2026, 3, 11, 15, 45),
        datetime(2026, 3, 11, 16, 0),
        include_closed=True,
        market_ids=["101", "999"],
    )
    assert [m.id for m in found.markets] == ["101"] and found.missing_ids == ["999"]


def test_tracked_rows_carry_parsed_terms(gamma):
    ws, we = datetime(2026, 3, 11, 15, 45), datetime(2026, 3, 11, 16, 0)
    found = discover(gamma, ws, we, include_closed=True)
    frame = tracked_frame(found.markets, ws, we, found.discovered_by)
    assert frame.select("market_id", "family", "strike", "discovered_by").rows() == [
        ("101", "above", 64000.0, "tag"),
        ("102", "above", 66000.0, "tag"),
    ]
