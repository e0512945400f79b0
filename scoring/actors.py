"""Dramatiq actor that builds reports on the ``default`` queue (thin: an id in)."""

import contextlib

import dramatiq

REPORT_TIME_LIMIT_MS = 2 * 60 * 60 * 1000


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=REPORT_TIME_LIMIT_MS)
def build_report_job(report_id: int) -> None:
    """Build one report unless it is already built (a redelivered message does nothing)."""
    from scoring.models import Report, ReportState
    from scoring.services import ReportError, build_report

    report = Report.objects.filter(pk=report_id).first()
    if report is None or report.state == ReportState.DONE:
        return
    # A ReportError is stored on the report as its error: there is nothing to retry.
    with contextlib.suppress(ReportError):
        build_report(report=report)
