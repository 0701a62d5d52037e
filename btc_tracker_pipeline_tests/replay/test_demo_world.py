"""``ui --replay`` serves the demo's world: the world rebuilt from the record the demo
left beside the warehouse answers exactly as the demo's world did for every instant the
demo saw, and goes on following the wall clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from btc_tracker_pipeline import cli, environment
from btc_tracker_pipeline.replay.demo_world import load_world, save_world, world_file
from btc_tracker_pipeline.replay.shapes import epoch_s
from btc_tracker_pipeline.replay.simulated import NOISE_LOGIT, SimulatedWorld

pytestmark = pytest.mark.unit

DEMO_DAYS = 1


def demo_world() -> SimulatedWorld:
    """As `btc-tracker demo --days 1 --bias 0.1 --noise 0.12` builds it, a day and a half
    ago."""
    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0) - timedelta(hours=36)
    return SimulatedWorld(seed=7, days=DEMO_DAYS + 2, now=now, bias=0.1, noise=NOISE_LOGIT)


def klines(world: SimulatedWorld, first: datetime, last: datetime) -> list[list]:
    rows, at = [], int(epoch_s(first)) * 1000
    while at < epoch_s(last) * 1000:
        page = world.klines("1m", at, int(epoch_s(last)) * 1000 - 1, 1000)
        rows += page
        at = page[-1][0] + 60_000
    return rows


def test_the_recorded_world_answers_as_the_demos_for_what_it_saw(tmp_path):
    demo = demo_world()
    record = save_world(demo, tmp_path / "warehouse.duckdb")
    assert json.loads(record.read_text())["parameters"]["noise"] == NOISE_LOGIT
    served = load_world(tmp_path / "warehouse.duckdb")
    assert served is not None and served.identity() == demo.identity()
    assert (served.bias, served.noise) == (0.1, NOISE_LOGIT)
    assert served.now() > demo.now() + timedelta(hours=35)  # following the wall clock
    seen = demo.now()
    assert klines(served, demo.start, seen) == klines(demo, demo.start, seen)
    tokens = [t for m in demo.gamma_markets()[::7] for t in json.loads(m["clobTokenIds"])]
    assert len(tokens) > 20
    lo, hi = int(epoch_s(demo.start)), int(epoch_s(seen))
    for token in tokens:
        assert served.price_history(token, lo, hi, 1) == demo.price_history(token, lo, hi, 1)
    # Extended forward: klines and quotes after the demo's clock exist.
    assert klines(served, seen, seen + timedelta(hours=2))


def test_ui_replay_serves_the_demos_world_else_a_new_one(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv(environment.ENV_WAREHOUSE, str(warehouse))
    world, described = cli._ui_world(None)
    assert (world.seed, world.start.date()) == (7, (datetime.now(UTC) - timedelta(days=7)).date())
    assert "a new world" in described
    demo = demo_world()
    assert world_file(warehouse) == save_world(demo, warehouse)
    world, described = cli._ui_world(None)
    assert world.identity() == demo.identity() and "the demo's world" in described
    assert "bias 0.1, noise 0.12" in described
    world, _ = cli._ui_world(8)  # an explicit seed: a new world
    assert world.seed == 8 and world.identity() != demo.identity()
    world_file(warehouse).write_text("{}")
    with pytest.raises(cli.typer.Exit):
        cli._ui_world(None)
