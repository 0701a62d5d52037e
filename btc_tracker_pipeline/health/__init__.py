"""The success metrics of the original tracker's workflow, against its targets.

Pure: reads a DuckDB warehouse and a model card, prints nothing, writes nothing.
``health_report`` measures every metric of ``targets.SPECS``; the ``health`` asset and
``btc-tracker health`` show it.

Example::

    from btc_tracker_pipeline.health import health_report
    from btc_tracker_pipeline.model.artifact import latest_card
    with warehouse("data/warehouse.duckdb", read_only=True) as conn:
        report = health_report(conn, now, latest_card(Path("data/models")))
        print(report.markdown())
"""

from btc_tracker_pipeline.health.report import HealthReport, health_report
from btc_tracker_pipeline.health.targets import SPECS, Metric, Spec

__all__ = ["SPECS", "HealthReport", "Metric", "Spec", "health_report"]
