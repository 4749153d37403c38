"""Reports: rank metrics of proxies against targets, and their renderers."""

from zcnas.report.build import build_report
from zcnas.report.metrics import METRICS, correlations
from zcnas.report.render import to_json, to_markdown, write_report

__all__ = ["METRICS", "build_report", "correlations", "to_json", "to_markdown", "write_report"]
