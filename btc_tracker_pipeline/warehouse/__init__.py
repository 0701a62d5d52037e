"""The DuckDB warehouse: schema, connections, atomic per-window writes."""

from btc_tracker_pipeline.warehouse.connect import (
    WarehouseBusyError,
    WarehouseError,
    open_warehouse,
    warehouse,
)
from btc_tracker_pipeline.warehouse.write import (
    EmptyWindowError,
    TableAppend,
    TableWrite,
    WindowKeyError,
    append_rows,
    registered,
    replace_table,
    upsert_rows,
    write_window,
)

__all__ = [
    "EmptyWindowError",
    "TableAppend",
    "TableWrite",
    "WarehouseBusyError",
    "WarehouseError",
    "WindowKeyError",
    "append_rows",
    "open_warehouse",
    "registered",
    "replace_table",
    "upsert_rows",
    "warehouse",
    "write_window",
]
