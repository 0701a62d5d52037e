"""Typed resources: API base URLs, timeouts and the warehouse path.

Values come from ``BTC_TRACKER_*`` environment variables through ``dg.EnvVar``
when set (so the UI shows where they came from), else the real APIs' defaults.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import duckdb
from pydantic import Field, PrivateAttr

from btc_tracker_pipeline import environment
from btc_tracker_pipeline.collect.runs import utcnow
from btc_tracker_pipeline.sources.binance import BinanceClient, site_of
from btc_tracker_pipeline.sources.clob import ClobClient
from btc_tracker_pipeline.sources.gamma import GammaClient
from btc_tracker_pipeline.sources.http import HttpSettings, JsonHttp, make_client
from btc_tracker_pipeline.warehouse import open_warehouse

DEFAULT_GAMMA_URL = "https://gamma-api.polymarket.com"
DEFAULT_CLOB_URL = "https://clob.polymarket.com"
DEFAULT_BINANCE_URL = "https://api.binance.com"
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DEFAULT_MODELS = "data/models"


class PolymarketResource(dg.ConfigurableResource):
    """Gamma + CLOB clients sharing one ``httpx.Client`` per run."""

    gamma_url: str = DEFAULT_GAMMA_URL
    clob_url: str = DEFAULT_CLOB_URL
    timeout_s: float = 10.0
    max_attempts: int = 5
    max_quote_age_min: float = Field(
        environment.DEFAULT_MAX_QUOTE_AGE_MIN,
        description="How old a prices-history point may be at a window end and still be "
        "the window's quote (BTC_TRACKER_MAX_QUOTE_AGE_MIN; raise it, e.g. to 90, for "
        "hourly histories).",
    )

    _http: JsonHttp | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # A bad URL fails the run at once, naming it, instead of after three retries.
        environment.check_url(environment.ENV_GAMMA, self.gamma_url)
        environment.check_url(environment.ENV_CLOB, self.clob_url)
        environment.check_timeout(environment.ENV_HTTP_TIMEOUT, self.timeout_s)
        settings = HttpSettings(timeout_s=self.timeout_s, max_attempts=self.max_attempts)
        self._http = JsonHttp(make_client(settings), settings)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    @property
    def http(self) -> JsonHttp:
        """The run's HTTP client (created on first use outside Dagster execution)."""
        if self._http is None:
            settings = HttpSettings(timeout_s=self.timeout_s, max_attempts=self.max_attempts)
            self._http = JsonHttp(make_client(settings), settings)
        return self._http

    def gamma(self) -> GammaClient:
        """Gamma client on the run's HTTP connection pool."""
        return GammaClient(self.http, self.gamma_url)

    def clob(self) -> ClobClient:
        """CLOB client on the run's HTTP connection pool."""
        return ClobClient(self.http, self.clob_url)


class BinanceResource(dg.ConfigurableResource):
    """Binance spot through ccxt (``base_url`` + ``/api/v3`` is the public API)."""

    base_url: str = DEFAULT_BINANCE_URL
    timeout_s: float = 10.0
    max_attempts: int = 5

    def client(self) -> BinanceClient:
        """A ccxt-backed client for this run."""
        environment.check_url(environment.ENV_BINANCE, self.base_url)
        environment.check_timeout(environment.ENV_HTTP_TIMEOUT, self.timeout_s)
        return BinanceClient(
            base_url=self.base_url,
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            enable_rate_limit=site_of(self.base_url) == site_of(DEFAULT_BINANCE_URL),
        )


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file. One writer at a time (pool ``duckdb_write``)."""

    path: str = DEFAULT_WAREHOUSE
    lock_wait_s: float = 120.0

    _held: duckdb.DuckDBPyConnection | None = PrivateAttr(default=None)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Keep the warehouse open for the block (an asset's work on its run): every
        ``connect`` inside is a cursor on that one connection, so it costs no reopen and
        no checkpoint; the block's end checkpoints once and frees the file for readers."""
        if self._held is not None:
            yield
            return
        self._held = open_warehouse(self.path, wait_s=self.lock_wait_s)
        try:
            yield
        finally:
            conn, self._held = self._held, None
            conn.close()

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open (and migrate) the warehouse; waits for another writer's lock. Inside
        ``held`` a cursor on the held connection."""
        if self._held is not None:
            cursor = self._held.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
            return
        conn = open_warehouse(self.path, read_only=read_only, wait_s=self.lock_wait_s)
        try:
            yield conn
        finally:
            conn.close()


class ClockResource(dg.ConfigurableResource):
    """The pipeline's clock: it decides whether a window is live (it ended moments ago:
    live quotes) or history. Tests and replays set ``now_utc``."""

    now_utc: str | None = Field(
        None,
        description="A fixed time (ISO 8601, UTC) the run takes as now; empty: the wall clock.",
    )

    def now(self) -> datetime:
        """Now as naive UTC."""
        if not self.now_utc:
            return utcnow()
        fixed = datetime.fromisoformat(self.now_utc)
        return fixed.astimezone(UTC).replace(tzinfo=None) if fixed.tzinfo else fixed


class ModelStoreResource(dg.ConfigurableResource):
    """Where trained model artifacts live (one folder per training, newest wins)."""

    models_dir: str = DEFAULT_MODELS


class AlertResource(dg.ConfigurableResource):
    """Where alerts go: always the sensor's log; also a Slack-compatible webhook when set."""

    webhook_url: str | None = Field(
        None,
        description='POST {"text": …} here for every alert (BTC_TRACKER_ALERT_WEBHOOK); '
        "empty: the log only.",
    )
    ui_url: str | None = Field(
        None,
        description="The webserver as its readers reach it, for links to runs "
        "(BTC_TRACKER_UI_URL, e.g. http://127.0.0.1:3000); empty: no link.",
    )
    stale_windows: str = Field(
        str(environment.DEFAULT_ALERT_STALE_WINDOWS),
        description="Alert when this many 15-minute windows in a row are missing from the "
        "warehouse (BTC_TRACKER_ALERT_STALE_WINDOWS, 1-96).",
    )

    def limit(self) -> int:
        """``stale_windows`` checked (ConfigurationError in one line when bad)."""
        return environment.check_stale_windows(
            environment.ENV_ALERT_STALE_WINDOWS, self.stale_windows
        )

    def page(self, path: str) -> str | None:
        """The UI page at ``path`` (e.g. ``runs/<id>``), when ``ui_url`` is set."""
        return f"{self.ui_url.rstrip('/')}/{path}" if self.ui_url else None


def _env_or(name: str, default: str) -> str | dg.EnvVar:
    # Only a variable that is set is bound through EnvVar: an unset EnvVar fails at run time.
    return dg.EnvVar(name) if os.environ.get(name) else default


@dg.definitions
def resources() -> dg.Definitions:
    """Resources bound for every asset in the code location.

    A bad BTC_TRACKER_* variable fails the code location's load with a ConfigurationError
    naming it (the UI and the daemon show it) rather than a run retrying a bad URL.
    """
    environment.check_configuration()
    timeout_s = environment.http_timeout_s()
    return dg.Definitions(
        resources={
            "polymarket": PolymarketResource(
                gamma_url=_env_or("BTC_TRACKER_GAMMA_URL", DEFAULT_GAMMA_URL),
                clob_url=_env_or("BTC_TRACKER_CLOB_URL", DEFAULT_CLOB_URL),
                timeout_s=timeout_s,
                max_quote_age_min=environment.max_quote_age_min(),
            ),
            "binance": BinanceResource(
                base_url=_env_or("BTC_TRACKER_BINANCE_URL", DEFAULT_BINANCE_URL),
                timeout_s=timeout_s,
            ),
            "warehouse": WarehouseResource(
                path=_env_or("BTC_TRACKER_WAREHOUSE", DEFAULT_WAREHOUSE)
            ),
            "model_store": ModelStoreResource(
                models_dir=_env_or("BTC_TRACKER_MODELS", DEFAULT_MODELS)
            ),
            "clock": ClockResource(),
            "alerts": AlertResource(
                webhook_url=_env_or(environment.ENV_ALERT_WEBHOOK, ""),
                ui_url=_env_or(environment.ENV_UI_URL, ""),
                stale_windows=_env_or(
                    environment.ENV_ALERT_STALE_WINDOWS,
                    str(environment.DEFAULT_ALERT_STALE_WINDOWS),
                ),
            ),
        }
    )
