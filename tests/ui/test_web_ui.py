"""What ops see in the Temporal Web UI, in a real browser.

Three incidents on a dev server with its UI (tests/ui/conftest.py): two
apologised, one still waiting for its apology. Filtering the workflow list by
``RecoveryStage="apologised"`` must list exactly the two; opening one must
show its input, summary, its details and its current details (rendered Markdown)
without reading the event history, all decrypted by the codec server. A UI
started without the codec endpoint shows the same page as ciphertext.
Screenshots of the pages are left in tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import quote

import pytest
from temporalio.client import Client

from tests.support.factories import AGENT, report
from tests.support.identity import Amends
from workflows.client import summary, workflow_id
from workflows.inputs import ApologyInput

ROW = 'tr[data-testid="workflows-summary-configurable-table-row"]'
INPUT = '[data-testid="input-and-result"]'
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


async def shown(page, selector: str, needle: str, tries: int = 60) -> str:
    """The text of ``selector`` on the page, once it shows ``needle`` (the UI decodes payloads after loading)."""
    text = ""
    for _ in range(tries):
        text = await page.inner_text(selector)
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
        # The input, decrypted by the codec server: the report as the backend sent it.
        shown_input = await shown(page, INPUT, str(chosen.customer.email))
        assert chosen.customer.name in shown_input and str(chosen.customer.email) in shown_input, shown_input
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


async def test_without_the_codec_endpoint_the_same_page_shows_ciphertext(
        ui_env_without_codec, browser, settings, artifacts):
    """A Web UI started without ``--ui-codec-endpoint`` (anyone reading the server without the codec server)
    shows the incident's input as the stored ciphertext, and no summary, details or current details."""
    env = ui_env_without_codec
    incident = report("pi_unused", severity="critical")
    await Amends(env.client, task_queue=settings.task_queue).open_incident(incident)
    # The input as the server stores it, read without any codec.
    bare = await Client.connect(env.client.service_client.config.target_host, namespace="default")
    history = await bare.get_workflow_handle(workflow_id(incident.incident_key)).fetch_history()
    stored = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert stored.metadata["encoding"] == b"binary/encrypted"
    ciphertext = base64.b64encode(stored.data).decode()

    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        await page.goto(f"{env.ui_url}/namespaces/default/workflows/{workflow_id(incident.incident_key)}")
        shown_input = await shown(page, INPUT, ciphertext[:64])
        await page.screenshot(path=str(artifacts / "ui-incident-without-codec.png"), full_page=True)
        assert ciphertext in shown_input.replace("\n", ""), shown_input
        page_text = await page.inner_text("body")
        for private in (incident.customer.name, str(incident.customer.email), incident.customer.customer_id,
                        incident.what_happened, "apology deadline"):
            assert private not in page_text, private

        await page.click('[data-testid="user-metadata-tab"]')
        metadata = await shown(page, '[data-testid="user-metadata"]', "No details available")
        assert "No summary available" in metadata and "No details available" in metadata, metadata
        current = await frame_text(page, "user-metadata-current-details", "No Current Details")
        assert "No Current Details" in current, current
        assert incident.customer.customer_id not in metadata + current and "Stage:" not in current
        await page.screenshot(path=str(artifacts / "ui-metadata-without-codec.png"), full_page=True)
    finally:
        await page.close()
