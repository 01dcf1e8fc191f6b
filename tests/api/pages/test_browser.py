"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright, at a
desktop's width and at a phone's (375 px). Each page is checked by axe-core (bundled in
``axe-playwright-python``) and must not scroll sideways; screenshots of every page are
written to ``tests/output/screenshots/`` (git-ignored) to look at.

Chromium is not downloaded: the tests use ``/usr/bin/chromium`` and fail, saying how to
install it, when it is not there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from headend.domain.enums import Role
from tests.api.conftest import LISTED
from tests.api.pages.conftest import Served, as_coordinator, fleet_day

CHROMIUM = Path(os.environ.get("HEADEND_TEST_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(__file__).resolve().parents[2] / "output" / "screenshots"
SCREENS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 740}}

try:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError as exc:  # pragma: no cover - the test extra is not installed
    raise ImportError(
        "the browser tests need the test extra: .venv/bin/pip install -e '.[test]' "
        "(playwright and axe-playwright-python; no `playwright install`: Debian's chromium "
        "is used)"
    ) from exc


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run `apt-get install chromium` "
            "(Debian's package; the browser tests do not download a browser)",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path, served: Served) -> Iterator[Browser]:
    # after ``served``: Playwright's sync API keeps an event loop running in this thread, and
    # the fleet is collected with asyncio.run
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium))
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Screen:
    name: str
    page: Page
    served: Served

    def open(self, path: str) -> None:
        answer = self.page.goto(self.served.base_url + path)
        assert answer is not None and answer.ok, (path, answer.status if answer else None)

    def check(self, shot: str) -> None:
        """Screenshot the page, then: no sideways scrolling, and no axe-core violation."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{self.name}-{shot}.png"), full_page=True)
        overflow = self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{shot} scrolls sideways by {overflow} px at {self.name} width"
        violations: list[dict[str, Any]] = Axe().run(self.page).response["violations"]
        found = {v["id"]: [n["target"] for n in v["nodes"]][:5] for v in violations}
        assert "label" not in found and "color-contrast" not in found, json.dumps(found)
        assert not found, f"axe-core found on {shot}: {json.dumps(found, indent=1)}"


def _log_in(page: Page, served: Served, key: str) -> None:
    page.goto(served.base_url + "/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(served.base_url + "/")


@pytest.fixture(scope="module", params=list(SCREENS))
def screen(request: pytest.FixtureRequest, browser: Browser, served: Served) -> Iterator[Screen]:
    """An operator logged in, in a browser window of one size."""
    context = browser.new_context(viewport=SCREENS[request.param])  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        _log_in(page, served, served.keys[Role.OPERATOR])
        yield Screen(request.param, page, served)
    finally:
        context.close()


def test_the_login_page_is_accessible_and_refuses_a_wrong_key(
    browser: Browser, served: Served
) -> None:
    for name, size in SCREENS.items():
        context = browser.new_context(viewport=size)  # type: ignore[arg-type]
        try:
            page = context.new_page()
            page.goto(served.base_url + "/meters")
            assert page.url.startswith(served.base_url + "/login?next=")
            Screen(name, page, served).check("login")
            page.get_by_label("API key").fill("hk_000000000000_" + "x" * 43)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("alert")).to_contain_text("not valid")
        finally:
            context.close()


def test_the_overview_shows_the_fleet(screen: Screen) -> None:
    day = fleet_day(screen.served)
    screen.open(f"/?date={day}")
    expect(screen.page.get_by_role("heading", level=1)).to_have_text(f"Fleet overview, {day}")
    expect(screen.page.get_by_role("img", name="Read-success rate per day")).to_be_visible()
    screen.check("overview")


def test_every_page_fits_the_screen_and_passes_the_accessibility_check(screen: Screen) -> None:
    served = screen.served
    day = fleet_day(served)
    meter = next(f.meter_id for f in served.context.reports.open_findings())
    for shot, path in (
        ("failed-reads", f"/failed-reads?date={day}"),
        ("meters", "/meters"),
        ("meter", f"/meters/{meter}"),
        ("findings", "/findings"),
        ("gateways", f"/gateways?date={day}"),
        ("workers", "/workers"),
    ):
        screen.open(path)
        screen.check(shot)
    missing = screen.page.goto(served.base_url + "/meters/NO-SUCH-METER")
    assert missing is not None and missing.status == 404
    screen.check("error")


def test_the_workers_page_lists_the_workers_alive_first_and_sorts_them(screen: Screen) -> None:
    with as_coordinator(screen.served, "standby"):
        screen.open("/workers")
    table = screen.page.locator("#workers")
    expect(table.locator("tbody tr")).to_have_count(len(LISTED))
    expect(table.locator("tbody tr td:first-child")).to_have_text(LISTED)
    expect(table.locator("tbody tr").last).to_contain_text("Lost")
    expect(screen.page.locator("#collection")).to_contain_text("Standby")
    screen.check("workers-celery")
    table.get_by_role("button", name="Worker").click()
    expect(table.locator("th").first).to_have_attribute("aria-sort", "ascending")
    expect(table.locator("tbody tr td:first-child")).to_have_text(sorted(LISTED))


def test_the_failed_reads_table_sorts_and_links_to_each_meter(screen: Screen) -> None:
    screen.open(f"/failed-reads?date={fleet_day(screen.served)}")
    table = screen.page.locator("#failed-reads")
    table.get_by_role("button", name="Meter").click()
    expect(table.locator("th").first).to_have_attribute("aria-sort", "ascending")
    first = table.locator("tbody tr td a").first
    meter = first.inner_text()
    first.click()
    expect(screen.page.get_by_role("heading", level=1)).to_have_text(f"Meter {meter}")


def test_read_now_shows_the_job_and_its_result_without_reloading(screen: Screen) -> None:
    meter = screen.served.healthy()[-1]
    screen.open(f"/meters/{meter}")
    screen.page.evaluate("window.notReloaded = true")
    screen.page.get_by_role("button", name="Read now").click()
    status = screen.page.locator("#read-status")
    expect(status).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(status).to_contain_text("succeeded")
    expect(screen.page.locator("#read-result table")).to_contain_text("1.0.1.8.0.255")
    assert screen.page.evaluate("window.notReloaded") is True
    screen.check("meter-read-now")


def test_an_operator_edits_a_finding_and_it_leaves_the_queue(screen: Screen) -> None:
    served = screen.served
    finding = next(f for f in served.context.reports.open_findings() if f.channel)
    screen.open(f"/findings?meter_id={finding.meter_id}")
    item = screen.page.locator(f"#finding-{finding.id}")
    item.get_by_text("Edit the intervals").click()
    item.get_by_label("Keep each interval's current value").check()
    item.get_by_label("Reason code").fill("ESTIMATE_OK")
    item.get_by_label("Comment").fill(f"checked in the browser at {screen.name} width")
    screen.check("finding-edit-form")
    item.get_by_role("button", name="Save the edit and resolve").click()
    expect(screen.page.get_by_role("status")).to_contain_text(
        f"Finding {finding.id} is resolved by edit"
    )
    assert finding.id not in {f.id for f in served.context.reports.open_findings()}
    screen.check("findings-after-edit")
