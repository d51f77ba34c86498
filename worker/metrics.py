"""Prometheus metrics of the worker, through the Temporal SDK's runtime telemetry.

The SDK's core serves ``/metrics`` itself: its own metrics (workflow and
activity tasks, polls, requests, latencies: ``temporal_*``) and those amends'
workflow code records with ``workflow.metric_meter()`` (``amends_*``). Both
names and meanings are in docs/metrics.md.

``AMENDS_METRICS_BIND`` (e.g. ``127.0.0.1:9464``) turns the endpoint on for
``amends worker``; unset, the worker serves no metrics. ``amends dev`` serves
them on 127.0.0.1:9464 unless told otherwise (``--metrics-port``).
"""

from __future__ import annotations

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

ENV = "AMENDS_METRICS_BIND"
DEV_PORT = 9464

# Buckets for amends' own histograms, in seconds: the SDK's default buckets
# (50 ... 10,000) suit milliseconds, not apologies that take minutes to
# hours and incidents that take days to close.
MINUTE, HOUR, DAY = 60, 3600, 86400
HISTOGRAM_BUCKETS: dict[str, list[float]] = {
    "amends_time_to_apology_seconds": [
        MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, DAY, 2 * DAY,
    ],
    "amends_time_to_close_seconds": [
        HOUR, 4 * HOUR, DAY, 2 * DAY, 3 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 90 * DAY,
    ],
}


class MetricsBindError(ValueError):
    """The metrics endpoint could not be bound: a bad address, or the port is in use."""


def prometheus_runtime(bind_address: str) -> Runtime:
    """A runtime whose metrics are served at ``http://<bind_address>/metrics``.

    The address is bound at once; a bad address or a port in use raises
    ``MetricsBindError``. A client connected with ``runtime=`` this runtime,
    and every worker built on that client, report here. SDK defaults are kept
    (durations in milliseconds, counters without ``_total``) so that Temporal's
    published SDK dashboards read these metrics as they are.
    """
    try:
        return Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=bind_address, histogram_bucket_overrides=HISTOGRAM_BUCKETS)
            )
        )
    except ValueError as err:  # the SDK's word for a bad address or a port in use
        raise MetricsBindError(f"cannot serve metrics on {bind_address!r}: {err}") from None


def runtime_for(bind_address: str | None) -> Runtime | None:
    """The runtime to connect with: ``None`` (the SDK's default, no endpoint) when no address is given."""
    return prometheus_runtime(bind_address) if bind_address else None
