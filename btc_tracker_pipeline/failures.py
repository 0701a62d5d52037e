"""What a failed run tells the user: its root cause on one line, and what to do.

A step failure carries Dagster's serialized error with its ``cause`` chain. The line a
user needs is the first error our code raised (a ``dg.Failure`` description, a
``WarehouseError``), not Dagster's wrappers around it nor the libraries' internals
below it; an API that cannot be reached is named with its base URL and the innermost
reason (``connection refused``). The full trace stays in the run's log in the instance.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import dagster as dg

from btc_tracker_pipeline import environment

if TYPE_CHECKING:
    from dagster._utils.error import SerializableErrorInfo

TRACE_HINT = "rerun with --verbose for the full trace"
API_HINT = (
    "existing rows were kept (see collection_runs); run the same command again once the "
    "API answers, or check the BTC_TRACKER_*_URL settings"
)
TRAIN_HINT = "collect more history (btc-tracker backfill) or lower the bar with --min-markets"
UNKNOWN_IDS_METADATA = "unknown_market_ids"

# Errors written for the user: their message says it all, without the class name.
_OWN_MODULES = ("btc_tracker_pipeline.", "dagster._core.definitions.events.Failure")
_URL = re.compile(r"\[url: (\S+?)\]")


@dataclass(frozen=True)
class Cause:
    """Why a run failed, in one line, and at most one line of what to do."""

    text: str
    hint: str | None = None


def _chain(error: SerializableErrorInfo | None) -> Iterator[SerializableErrorInfo]:
    """``error``, then what raised it (``raise … from``), else what it happened during."""
    while error is not None:
        yield error
        error = error.cause or error.context


def _first_line(error: SerializableErrorInfo, keep_class: bool) -> str:
    text = (error.message or "").strip()
    qualified, _, rest = text.partition(": ")
    if not rest:
        return text.splitlines()[0] if text else error.cls_name
    body = rest.strip().splitlines()[0]
    if not keep_class or qualified.startswith(_OWN_MODULES):
        return body
    return f"{error.cls_name}: {body}"


def _is_dagster_wrapper(error: SerializableErrorInfo) -> bool:
    # DagsterExecutionStepExecutionError, ComponentTreeException and friends only say
    # where the error below them happened.
    wraps = error.cause is not None or error.context is not None
    return wraps and error.message.startswith("dagster") and error.cls_name != "Failure"


def _api_bases() -> list[tuple[str, str]]:
    from btc_tracker_pipeline.defs import resources

    return [
        ("Gamma", os.environ.get(environment.ENV_GAMMA) or resources.DEFAULT_GAMMA_URL),
        ("CLOB", os.environ.get(environment.ENV_CLOB) or resources.DEFAULT_CLOB_URL),
        ("Binance", os.environ.get(environment.ENV_BINANCE) or resources.DEFAULT_BINANCE_URL),
    ]


def _api_at(url: str) -> str:
    """``Gamma API`` … for a request URL under a configured base, else its host."""
    for name, base in _api_bases():
        if url.startswith(base.rstrip("/")):
            return f"{name} API unreachable at {base}"
    parts = urlsplit(url)
    return f"API unreachable at {parts.scheme}://{parts.netloc}"


def _transport_reason(errors: list[SerializableErrorInfo]) -> str:
    text = " ".join(e.message for e in errors)
    if any(e.cls_name == "ConnectionRefusedError" for e in errors) or "refused" in text:
        return "connection refused"
    if any("Timeout" in e.cls_name for e in errors) or "timed out" in text:
        return "no answer within the timeout (BTC_TRACKER_HTTP_TIMEOUT_S)"
    return _first_line(errors[-1], keep_class=True)


def root_cause(error: SerializableErrorInfo | None) -> Cause:
    """The innermost meaningful message of a step's error, with a hint where one helps."""
    errors = list(_chain(error))
    transport = next((e for e in errors if e.cls_name == "TransportError"), None)
    if transport is not None:
        url = _URL.search(transport.message)
        where = _api_at(url.group(1)) if url else "API unreachable"
        return Cause(f"{where}: {_transport_reason(errors)}", API_HINT)
    own = [e for e in errors if not _is_dagster_wrapper(e)]
    if not own:
        return Cause("run failed", TRACE_HINT)
    first = own[0]
    hint = TRAIN_HINT if any(e.cls_name == "InsufficientDataError" for e in errors) else None
    if first.message.startswith(_OWN_MODULES):
        return Cause(_first_line(first, keep_class=False), hint)
    # Not an error written for users (a bug, an OS error): name its class, offer the trace.
    return Cause(_first_line(first, keep_class=True), hint or TRACE_HINT)


def exception_cause(exc: BaseException) -> Cause:
    """``root_cause`` of an exception raised outside a run (loading definitions, a read)."""
    from dagster._utils.error import serializable_error_info_from_exc_info

    return root_cause(serializable_error_info_from_exc_info((type(exc), exc, exc.__traceback__)))


def run_cause(result: dg.ExecuteInProcessResult) -> Cause:
    """One line for a failed run: its steps' distinct root causes, in step order.

    Several steps failing for one reason (the warehouse cannot be opened) say it once.
    """
    causes: list[Cause] = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        cause = root_cause(data.error if data else None)
        if cause.text not in (c.text for c in causes):
            causes.append(cause)
    if not causes:
        failure = result.get_run_failure_event()
        data = failure.job_failure_data if failure else None
        causes.append(root_cause(data.error if data else None))
    hint = next((c.hint for c in causes if c.hint), None)
    return Cause("; ".join(c.text for c in causes), hint)


def unknown_market_ids(result: dg.ExecuteInProcessResult) -> list[str]:
    """Market ids a run was asked for that Gamma does not know (``tracked_markets`` metadata)."""
    ids: list[str] = []
    for event in result.get_asset_materialization_events():
        value = event.materialization.metadata.get(UNKNOWN_IDS_METADATA)
        for market_id in str(value.value).split(",") if value else []:
            if market_id.strip() and market_id.strip() not in ids:
                ids.append(market_id.strip())
    return ids
