"""Process environment for the ``btc-tracker`` command: where Dagster and DuckDB live.

Only the CLI (and tests) call this; assets get their configuration from resources.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

ENV_GAMMA = "BTC_TRACKER_GAMMA_URL"
ENV_CLOB = "BTC_TRACKER_CLOB_URL"
ENV_BINANCE = "BTC_TRACKER_BINANCE_URL"
ENV_WAREHOUSE = "BTC_TRACKER_WAREHOUSE"
ENV_STORAGE = "BTC_TRACKER_DAGSTER_STORAGE"
ENV_MODELS = "BTC_TRACKER_MODELS"
ENV_HTTP_TIMEOUT = "BTC_TRACKER_HTTP_TIMEOUT_S"
DEFAULT_HTTP_TIMEOUT_S = 10.0
ENV_MAX_QUOTE_AGE = "BTC_TRACKER_MAX_QUOTE_AGE_MIN"
# collect.snapshots.MAX_QUOTE_AGE, in minutes; a day is the most a history quote may lag.
DEFAULT_MAX_QUOTE_AGE_MIN = 30.0
MAX_QUOTE_AGE_LIMIT_MIN = 1440.0
# Read by the collect schedule at each tick, not by the btc-tracker commands.
ENV_MARKET_IDS = "BTC_TRACKER_MARKET_IDS"
ENV_FAMILIES = "BTC_TRACKER_FAMILIES"
# Read by the alert sensors (defs/maintenance/alerts.py) at each evaluation.
ENV_ALERT_WEBHOOK = "BTC_TRACKER_ALERT_WEBHOOK"
ENV_ALERT_STALE_WINDOWS = "BTC_TRACKER_ALERT_STALE_WINDOWS"
ENV_UI_URL = "BTC_TRACKER_UI_URL"
DEFAULT_ALERT_STALE_WINDOWS = 2

URL_VARIABLES = (ENV_GAMMA, ENV_CLOB, ENV_BINANCE)
PATH_VARIABLES = (ENV_WAREHOUSE, ENV_MODELS, ENV_STORAGE)


class ConfigurationError(ValueError):
    """A ``BTC_TRACKER_*`` variable with a value btc-tracker cannot use (one-line message
    naming the variable, its value and what is expected)."""


def check_url(name: str, value: str) -> str:
    """``value`` if it is an http(s) URL with a host, else ConfigurationError naming ``name``."""
    try:
        parts = urlsplit(value)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        usable = False
    if not usable:
        raise ConfigurationError(
            f"{name}={value!r}: expected an http:// or https:// URL with a host, "
            "e.g. http://127.0.0.1:8765/path"
        )
    return value


def _number(name: str, value: str | float, most: float, expected: str) -> float:
    """``value`` as a finite number in (0, most], else ConfigurationError saying ``expected``."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and 0 < number <= most):
        raise ConfigurationError(f"{name}={value!r}: expected {expected}")
    return number


def _from_environment(name: str, default: float, check: Callable[[str, str], float]) -> float:
    """The variable ``name`` through ``check``, or ``default`` when it is not set."""
    value = os.environ.get(name)
    return default if value is None else check(name, value)


def check_timeout(name: str, value: str | float) -> float:
    """``value`` as seconds if it is a finite number > 0, else ConfigurationError."""
    return _number(name, value, math.inf, "a finite number of seconds > 0, e.g. 10")


def http_timeout_s() -> float:
    """``BTC_TRACKER_HTTP_TIMEOUT_S`` (default 10 s), checked."""
    return _from_environment(ENV_HTTP_TIMEOUT, DEFAULT_HTTP_TIMEOUT_S, check_timeout)


def check_quote_age(name: str, value: str | float) -> float:
    """``value`` as minutes if it is a number in (0, 1440], else ConfigurationError."""
    return _number(
        name,
        value,
        MAX_QUOTE_AGE_LIMIT_MIN,
        f"minutes > 0 and at most {MAX_QUOTE_AGE_LIMIT_MIN:.0f}, e.g. 90 for hourly price "
        "histories",
    )


def max_quote_age_min() -> float:
    """``BTC_TRACKER_MAX_QUOTE_AGE_MIN`` (default 30): how old a prices-history point may
    be at a window end and still be that window's quote, checked."""
    return _from_environment(ENV_MAX_QUOTE_AGE, DEFAULT_MAX_QUOTE_AGE_MIN, check_quote_age)


def check_market_ids(name: str, value: str) -> tuple[str, ...]:
    """The comma-separated Gamma market ids in ``value`` (blank: ``()``, every BTC market),
    else ConfigurationError naming ``name`` and the ids that are not decimal digits."""
    ids = [i.strip() for i in value.split(",") if i.strip()]
    bad = [i for i in ids if not i.isdigit()]
    if bad:
        raise ConfigurationError(
            f"{name}={value!r}: not Gamma market ids (digits only): {', '.join(bad)}; "
            "expected e.g. 1344329,1344330, or unset for every BTC market"
        )
    return tuple(dict.fromkeys(ids))


def scheduled_market_ids() -> tuple[str, ...]:
    """``BTC_TRACKER_MARKET_IDS``: the markets the 15-minute schedule collects, checked;
    ``()`` (unset or blank) for every BTC market."""
    return check_market_ids(ENV_MARKET_IDS, os.environ.get(ENV_MARKET_IDS, ""))


def check_families(name: str, value: str) -> tuple[str, ...]:
    """The comma-separated market families in ``value`` (blank: ``()``, every family),
    else ConfigurationError naming ``name``, the unknown ones and the known ones."""
    from btc_tracker_pipeline.features.market_terms import FAMILIES

    families = [f.strip() for f in value.split(",") if f.strip()]
    bad = [f for f in families if f not in FAMILIES]
    if bad:
        raise ConfigurationError(
            f"{name}={value!r}: unknown famil{'ies' if len(bad) > 1 else 'y'} "
            f"{', '.join(bad)}; expected some of {', '.join(FAMILIES)}, or unset for all"
        )
    return tuple(dict.fromkeys(families))


def scheduled_families() -> tuple[str, ...]:
    """``BTC_TRACKER_FAMILIES``: the market families the 15-minute schedule collects,
    checked; ``()`` (unset or blank) for every family. Refused together with
    ``BTC_TRACKER_MARKET_IDS`` (one selection at a time)."""
    families = check_families(ENV_FAMILIES, os.environ.get(ENV_FAMILIES, ""))
    if families and scheduled_market_ids():
        raise ConfigurationError(
            f"{ENV_MARKET_IDS} and {ENV_FAMILIES} are both set: the schedule collects "
            "either chosen markets or chosen families; unset one"
        )
    return families


def check_stale_windows(name: str, value: str | int) -> int:
    """``value`` as a whole number of windows from 1 to 96, else ConfigurationError."""
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 96:
        raise ConfigurationError(
            f"{name}={value!r}: expected a whole number of 15-minute windows from 1 to 96, "
            f"e.g. {DEFAULT_ALERT_STALE_WINDOWS}"
        )
    return int(text)


def check_configuration() -> None:
    """Check every ``BTC_TRACKER_*`` variable that is set: API URLs are http(s) with a
    host, the timeout is seconds > 0, the quote age limit is minutes in (0, 1440], the
    first partition is a date or a window key, the alert settings are usable, paths are
    not blank. Raises
    ConfigurationError for the first bad one, before anything is opened or requested."""
    for name in URL_VARIABLES:
        value = os.environ.get(name)
        if value is not None:
            check_url(name, value)
    http_timeout_s()
    max_quote_age_min()
    from btc_tracker_pipeline.partitions import ENV_FIRST_PARTITION, first_partition_key

    try:
        first_partition_key(os.environ.get(ENV_FIRST_PARTITION))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    _check_alert_settings()
    for name in PATH_VARIABLES:
        value = os.environ.get(name)
        if value is not None and not value.strip():
            raise ConfigurationError(
                f"{name}={value!r}: expected a file or folder path; unset it for the default"
            )


def _check_alert_settings() -> None:
    # Checked when the code location loads: a bad alert setting must not leave the alert
    # sensors failing quietly on every evaluation.
    import httpx

    value = os.environ.get(ENV_ALERT_STALE_WINDOWS)
    if value:
        check_stale_windows(ENV_ALERT_STALE_WINDOWS, value)
    for name in (ENV_ALERT_WEBHOOK, ENV_UI_URL):
        value = os.environ.get(name)
        if value:
            check_url(name, value)
            try:  # what the HTTP client does before it connects: parse, encode the host
                httpx.URL(value).host.encode("idna")
            except (httpx.InvalidURL, UnicodeError) as exc:
                raise ConfigurationError(
                    f"{name}={value!r}: not a usable URL ({exc}); expected an http:// or "
                    "https:// URL with a valid host, e.g. https://hooks.slack.com/services/…"
                ) from None


def project_root() -> Path:
    """The repository root: the folder holding ``dagster.yaml`` and ``workspace.yaml``."""
    return Path(__file__).resolve().parents[1]


def warehouse_path() -> Path:
    """``BTC_TRACKER_WAREHOUSE`` or ``data/warehouse.duckdb`` under the project root."""
    value = os.environ.get(ENV_WAREHOUSE)
    return Path(value).expanduser().resolve() if value else project_root() / "data/warehouse.duckdb"


def models_path() -> Path:
    """``BTC_TRACKER_MODELS`` or ``data/models`` under the project root."""
    value = os.environ.get(ENV_MODELS)
    return Path(value).expanduser().resolve() if value else project_root() / "data/models"


def prepare_dagster_environment() -> None:
    """Point Dagster at the project's instance with absolute storage paths (idempotent).

    Sets DAGSTER_HOME to the project root (where dagster.yaml is) and
    BTC_TRACKER_DAGSTER_STORAGE to ``data/dagster`` unless the user already set them, and
    makes them, BTC_TRACKER_WAREHOUSE and BTC_TRACKER_MODELS absolute paths.
    """
    root = project_root()
    # Absolute: `btc-tracker ui` starts Dagster in another folder than this one.
    for name, default in (("DAGSTER_HOME", root), (ENV_STORAGE, root / "data" / "dagster")):
        os.environ[name] = str(Path(os.environ.get(name) or default).expanduser().resolve())
    os.environ[ENV_WAREHOUSE] = str(warehouse_path())
    os.environ[ENV_MODELS] = str(models_path())
    Path(os.environ[ENV_STORAGE]).mkdir(parents=True, exist_ok=True)


def replay_variables(base_url: str) -> dict[str, str]:
    """The API variables (Gamma, CLOB, Binance) pointing at a replay server at
    ``base_url`` (http://127.0.0.1:PORT), in that order."""
    return {
        ENV_GAMMA: f"{base_url}/gamma",
        ENV_CLOB: f"{base_url}/clob",
        ENV_BINANCE: f"{base_url}/binance",
    }


def point_at_replay(base_url: str) -> None:
    """Send every API client to a replay server at ``base_url`` (http://127.0.0.1:PORT)."""
    os.environ.update(replay_variables(base_url))
