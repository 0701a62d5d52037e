"""tracked_markets parses the real shapes the simulated world writes on some markets:
up/down windows named only by their title, strikes only in the "Close" rules, neg-risk
ladders and TWAP-settled 15-minute windows (docs/apis.md §1.6, §1.8, §3.8)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from btc_tracker_pipeline.defs.markets.assets import tracked_markets
from btc_tracker_pipeline.defs.resources import (
    BinanceResource,
    ClockResource,
    PolymarketResource,
    WarehouseResource,
)
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld

pytestmark = pytest.mark.integration

# Seed 14 at this clock has a rules-only ladder (March 2) and a neg-risk one (March 1)
# open during the window, beside plain ones; title-only and TWAP 15m windows come with
# any seed.
NOW = datetime(2026, 3, 1, 0, 0)
KEY = "2026-02-28-23:30"
ET = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def world() -> SimulatedWorld:
    return SimulatedWorld(seed=14, days=2, now=NOW)


@pytest.fixture(scope="module")
def rows(world: SimulatedWorld, tmp_path_factory) -> Iterator[list[dict]]:
    path = str(tmp_path_factory.mktemp("shapes") / "warehouse.duckdb")
    with ReplayServer(world) as server:
        resources = {
            "polymarket": PolymarketResource(
                gamma_url=f"{server.url}/gamma", clob_url=f"{server.url}/clob"
            ),
            "binance": BinanceResource(base_url=f"{server.url}/binance"),
            "warehouse": WarehouseResource(path=path),
            "clock": ClockResource(),
        }
        assert dg.materialize([tracked_markets], partition_key=KEY, resources=resources).success
    with duckdb.connect(path, read_only=True) as conn:
        cursor = conn.execute("SELECT * FROM tracked_markets ORDER BY market_id")
        names = [d[0] for d in cursor.description]
        yield [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _raw(world: SimulatedWorld) -> dict[str, dict]:
    return {m["id"]: m for m in world.gamma_markets()}


def test_updown_windows_from_slug_or_title_alone(world, rows):
    raw = _raw(world)
    fifteen = [r for r in rows if int(r["market_id"]) // 10**9 == 1]
    by_title = [r for r in fifteen if "eventStartTime" not in raw[r["market_id"]]]
    assert by_title and len(by_title) < len(fifteen)
    for r in fifteen:
        start = datetime(1970, 1, 1) + timedelta(seconds=int(r["market_id"]) % 10**9 * 900)
        assert (r["family"], r["reference_start"], r["expiry"]) == (
            "updown_15m",
            start,
            start + timedelta(minutes=15),
        )
        assert r["parse_source"] == ("title" if r in by_title else "structured")


def test_ladder_strikes_from_title_or_rules_and_noon_et_expiry(world, rows):
    raw = _raw(world)
    above = [r for r in rows if int(r["market_id"]) // 10**9 == 3]
    rules_only = [r for r in above if "groupItemTitle" not in raw[r["market_id"]]]
    assert rules_only and len(rules_only) < len(above)
    for r in above:
        strike = int(r["market_id"]) % 10**5 * 10
        # "Close" price of 85,000.01 or higher: above 85,000 on a cent grid.
        expected = strike + 0.01 if r in rules_only else strike
        assert (r["family"], r["direction"], r["strike"]) == ("above", "above", expected)
        assert r["parse_source"] == ("rules" if r in rules_only else "structured")
        day = raw[r["market_id"]]["endDate"][:10]
        noon = datetime.fromisoformat(day).replace(hour=12, tzinfo=ET)
        assert r["expiry"] == noon.astimezone(UTC).replace(tzinfo=None)


def test_neg_risk_and_twap_are_flagged(world, rows):
    raw = _raw(world)
    flagged = {"neg_risk": 0, "twap_settled": 0}
    for r in rows:
        m = raw[r["market_id"]]
        assert r["neg_risk"] is m["negRisk"]
        assert r["neg_risk_market_id"] == m.get("negRiskMarketID")
        assert r["twap_settled"] is ("cryptoMarketConfig" in m)
        flagged["neg_risk"] += r["neg_risk"]
        flagged["twap_settled"] += r["twap_settled"]
    assert 0 < flagged["neg_risk"] < len(rows) and 0 < flagged["twap_settled"] < len(rows)
