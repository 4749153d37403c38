"""Reports: rank metrics of proxies against targets, bootstrap intervals, the noise ceiling,
renderers (JSON, Markdown, HTML) and the CI regression check against a baseline."""

from zcnas.report.build import REPORT_SCHEMA_VERSION, build_report
from zcnas.report.metrics import DEFAULT_TOP_K, METRICS, correlations, metric_names, parse_top_k, point_metrics
from zcnas.report.render import report_paths, to_json, to_markdown, write_report, write_report_files

__all__ = [
    "DEFAULT_TOP_K",
    "METRICS",
    "REPORT_SCHEMA_VERSION",
    "build_report",
    "correlations",
    "metric_names",
    "parse_top_k",
    "point_metrics",
    "report_paths",
    "to_json",
    "to_markdown",
    "write_report",
    "write_report_files",
]
