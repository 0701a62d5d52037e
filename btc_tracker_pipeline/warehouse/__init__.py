"""The DuckDB warehouse: schema, connections, atomic writes of a run's windows."""

from btc_tracker_pipeline.warehouse.connect import (
    WarehouseBusyError,
    WarehouseError,
    open_warehouse,
    warehouse,
)
from btc_tracker_pipeline.warehouse.write import (
    EmptyWindowError,
    TableAppend,
    TableUpsert,
    TableWrite,
    WindowKeyError,
    append_rows,
    registered,
    replace_table,
    upsert_rows,
    write_window,
    write_windows,
)

__all__ = [
    "EmptyWindowError",
    "TableAppend",
    "TableUpsert",
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
    "write_windows",
]
