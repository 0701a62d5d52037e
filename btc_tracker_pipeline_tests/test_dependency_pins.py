"""The pins in pyproject.toml hold in the installed environment, and what they protect works.

duckdb 2 removes ``execute(...).pl()`` / ``.arrow()`` and breaks dagster-duckdb-polars
(docs/dagster.md §2-3); we pin duckdb below 2 and rely on polars <-> arrow exchange.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import requires, version
from pathlib import Path

import duckdb
import polars as pl
import pytest
from packaging.requirements import Requirement

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


def declared() -> dict[str, Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in data["project"]["dependencies"]]
    return {r.name: r for r in reqs}


def test_installed_versions_satisfy_the_pins():
    for name, req in declared().items():
        assert req.specifier.contains(version(name), prereleases=True), (
            f"{name} {version(name)} does not satisfy {req}"
        )


def test_duckdb_is_pinned_below_2():
    spec = declared()["duckdb"].specifier
    assert not spec.contains("2.0.0") and spec.contains(duckdb.__version__)


def test_polars_duckdb_exchange_needs_and_has_pyarrow():
    assert any(r.startswith("pyarrow") for r in declared())
    conn = duckdb.connect()
    frame = pl.DataFrame({"a": [1, 2, 3]})
    conn.register("frame", frame.to_arrow())
    out = conn.sql("SELECT sum(a) AS s FROM frame").pl()
    assert out["s"].to_list() == [6]
    # The call dagster-duckdb-polars makes; it exists on duckdb < 2 only.
    assert conn.execute("SELECT 1 AS x").pl()["x"].to_list() == [1]


def test_package_metadata_lists_dev_extra():
    extras = requires("btc-tracker-pipeline") or []
    assert any("pytest" in r and 'extra == "dev"' in r for r in extras)
