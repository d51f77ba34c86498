"""What ops see in the Temporal Web UI, in a real browser.

Three incidents on a dev server with its UI (tests/ui/conftest.py): two
apologised, one still waiting for its apology. Filtering the workflow list by
``RecoveryStage="apologised"`` must list exactly the two; opening one must
show its summary, its details and its current details (rendered Markdown)
without reading the event history. Screenshots of both pages are left in
tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest

from tests.support.factories import AGENT, report
from tests.support.identity import Amends
from workflows.client import summary, workflow_id
from workflows.inputs import ApologyInput

ROW = 'tr[data-testid="workflows-summary-configurable-table-row"]'
COUNT = '[data-testid="workflow-count"]'
TIMEOUT_MS = 60_000  # the UI's first load on a busy 2-core machine is slow


async def listed_ids(page, url: str, expected: set[str], tries: int = 60) -> set[str]:
    """The workflow ids the filtered list shows, reloading while visibility catches up."""
    seen: set[str] = set()
    for _ in range(tries):
        await page.goto(url)
        await page.wait_for_selector(COUNT, timeout=TIMEOUT_MS)
        if expected:
            try:
                await page.wait_for_selector(ROW, timeout=5_000)
            except Exception:
                pass
        links = await page.locator(f"{ROW} a").all_inner_texts()
        seen = {text.strip() for text in links if text.strip().startswith("incident-")}
        if seen == expected:
            return seen
        await asyncio.sleep(1)
    return seen


async def frame_text(page, frame_id: str, needle: str, tries: int = 60) -> str:
    """The rendered text of one of the User Metadata iframes, once it shows ``needle``."""
    body = page.frame_locator(f"#{frame_id}").locator("body")
    text = ""
    for _ in range(tries):
        try:
            text = await body.inner_text(timeout=5_000)
        except Exception:
            text = ""
        if needle in text:
            return text
        await asyncio.sleep(0.5)
    return text


@pytest.mark.timeout(900)  # a fresh machine first installs Chromium (about two minutes)
async def test_ops_filter_by_stage_and_read_an_incident(ui_env, browser, settings, artifacts):
    amends = Amends(ui_env.client, task_queue=settings.task_queue)
    apologised = [report("pi_unused"), report("pi_unused", severity="critical")]
    waiting = report("pi_unused")
    for incident in [*apologised, waiting]:
        await amends.open_incident(incident)
    for incident in apologised:
        snap = await amends.apologise(incident.incident_key, ApologyInput(by=AGENT))
        assert snap.stage == "apologised"

    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        query = quote('RecoveryStage="apologised"', safe="")
        url = f"{ui_env.ui_url}/namespaces/default/workflows?query={query}"
        expected = {workflow_id(i.incident_key) for i in apologised}
        seen = await listed_ids(page, url, expected)
        await page.screenshot(path=str(artifacts / "ui-apologised.png"), full_page=True)
        assert seen == expected, f"listed {sorted(seen)}, expected {sorted(expected)}"
        assert workflow_id(waiting.incident_key) not in seen
        assert (await page.inner_text(COUNT)).strip() == "2"  # the heading reads "2 Workflows"

        # Open the critical one from the list, as a person would.
        chosen = apologised[1]
        await page.locator(f"{ROW} a", has_text=workflow_id(chosen.incident_key)).first.click()
        await page.wait_for_url(f"**/workflows/{workflow_id(chosen.incident_key)}/**")
        await page.click('[data-testid="user-metadata-tab"]')
        await page.wait_for_selector('[data-testid="user-metadata"]')

        customer = chosen.customer.customer_id
        current = await frame_text(page, "user-metadata-current-details", "Stage:")
        assert "Stage:" in current and "apologised" in current, current
        assert customer in current, current
        assert "**" not in current, f"current details not rendered as Markdown: {current}"
        # Rendered Markdown: the labels are bold, not asterisks.
        bold = page.frame_locator("#user-metadata-current-details").locator("strong", has_text="Stage:")
        assert await bold.count() == 1

        shown_summary = await frame_text(page, "user-metadata-summary", customer)
        assert shown_summary.strip() == summary(chosen), shown_summary
        assert "critical late delivery" in shown_summary

        details = await frame_text(page, "user-metadata-details", "What happened:")
        assert "What happened:" in details and customer in details, details
        await page.screenshot(path=str(artifacts / "ui-incident.png"), full_page=True)
    finally:
        await page.close()
