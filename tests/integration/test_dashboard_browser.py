"""The dashboard in headless Chromium (Debian's, driven by Playwright): sign in, submit a job,
watch its tokens arrive and the counters move. Screenshots go to <SLUICE_HOME>/artifacts."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.settings import get_settings
from tests.integration.conftest import mint_token, user_name

CHROMIUM = "/usr/bin/chromium"
NO_VALUE = "\u2013"  # what a tile shows before its first figure
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def artifacts() -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = (get_settings().home / "artifacts" / f"dashboard-{stamp}").resolve()
    path.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {path}")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("chromium is not installed: run scripts/install-system-deps.sh as root")
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _number(text: str) -> float:
    cleaned = re.sub(r"[^0-9.]", "", text)
    return float(cleaned) if cleaned else 0.0


def test_sign_in_submit_and_watch_tokens_and_counters(
    api_url: str, browser: object, artifacts: Path
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1100})  # type: ignore[attr-defined]
    script_errors: list[str] = []
    page.on("pageerror", lambda exc: script_errors.append(str(exc)))
    page.goto(f"{api_url}/dashboard")
    expect = sync_api.expect

    # A token without the admin scope is refused with the api's message.
    page.fill("#token-input", mint_token(user_name("viewer")))
    page.click("#sign-in")
    expect(page.locator("#sign-in-error")).to_contain_text("admin")
    page.screenshot(path=str(artifacts / "01-refused.png"))

    page.fill("#token-input", mint_token(user_name("ops"), admin=True))
    page.click("#sign-in")
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("#stat-workers")).not_to_have_text(NO_VALUE, timeout=10_000)
    assert int(page.locator("#stat-workers").inner_text()) >= 1
    tokens_before = _number(page.locator("#stat-tokens-total").inner_text())
    completed_before = _number(page.locator('[data-status="completed"] b').inner_text())
    page.screenshot(path=str(artifacts / "02-signed-in.png"), full_page=True)

    page.fill("#submit-prompt", "Review this Solidity contract for reentrancy.")
    page.select_option("#submit-type", "security_analysis")
    page.select_option("#submit-priority", "high")
    page.fill("#submit-max-tokens", "200")
    page.click("#submit-job")
    expect(page.locator("#submit-result")).to_contain_text("accepted")
    job_id = page.locator("#submit-result").inner_text().split()[-1]
    card = page.locator(f'.live-job[data-job-id="{job_id}"]')
    expect(card).to_be_visible()

    # Tokens arrive over the job's WebSocket while it runs.
    expect(card.locator(".count")).not_to_have_text("0 tokens", timeout=30_000)
    expect(card.locator(".status")).to_have_text("running")
    streamed_midway = len(card.locator(".tokens").inner_text())
    assert streamed_midway > 0
    page.screenshot(path=str(artifacts / "03-streaming.png"), full_page=True)

    expect(card.locator(".status")).to_have_text("completed", timeout=60_000)
    assert len(card.locator(".tokens").inner_text()) >= streamed_midway
    n_tokens = int(card.locator(".count").inner_text().split()[0])
    assert n_tokens > 0

    # The counters move: tokens streamed, completed jobs; charts and cost from ClickHouse.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tokens_after = _number(page.locator("#stat-tokens-total").inner_text())
        completed_after = _number(page.locator('[data-status="completed"] b').inner_text())
        if tokens_after >= tokens_before + n_tokens and completed_after > completed_before:
            break
        page.wait_for_timeout(500)
    assert tokens_after >= tokens_before + n_tokens
    assert completed_after > completed_before
    expect(page.locator("#stat-p95-ttft")).to_contain_text("ms", timeout=30_000)
    expect(page.locator("#stat-cost-today")).to_contain_text("$")
    page.wait_for_timeout(2500)
    page.screenshot(path=str(artifacts / "04-completed.png"), full_page=True)
    assert not script_errors, script_errors
    page.close()
