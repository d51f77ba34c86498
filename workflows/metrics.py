"""amends' own metrics, recorded from workflow code with ``workflow.metric_meter()``.

The SDK skips them while replaying, so each is counted once however often a
workflow is replayed. Names, units and labels are documented in
docs/metrics.md; labels never carry customer or order ids.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.inputs import IncidentReport


def _labels(report: IncidentReport) -> dict[str, str]:
    return {"category": str(report.category), "severity": str(report.severity)}


def opened(report: IncidentReport) -> None:
    workflow.metric_meter().create_counter(
        "amends_incidents_opened", "Incidents opened", "{incident}"
    ).add(1, _labels(report))


def apologised(report: IncidentReport, after: timedelta) -> None:
    workflow.metric_meter().create_histogram_float(
        "amends_time_to_apology_seconds", "From detection to the apology", "s"
    ).record(max(after.total_seconds(), 0.0), _labels(report))


def closed(report: IncidentReport, after: timedelta) -> None:
    workflow.metric_meter().create_histogram_float(
        "amends_time_to_close_seconds", "From detection to closing", "s"
    ).record(max(after.total_seconds(), 0.0), _labels(report))


def breached(report: IncidentReport, stage: str, level: int) -> None:
    workflow.metric_meter().create_counter(
        "amends_deadline_breaches", "Missed stage deadlines, per escalation level reached", "{breach}"
    ).add(1, {"stage": stage, "severity": str(report.severity), "level": str(level)})


def refunded(amount: int, currency: str) -> None:
    workflow.metric_meter().create_counter(
        "amends_refunded_minor_units", "Money refunded, in minor units", "{minor_unit}"
    ).add(amount, {"currency": currency})
