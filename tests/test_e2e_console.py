"""The ops console in a real browser (issue 15): headless Chromium driven by Selenium, against the four
services and the console as `make up` runs them (the e2e world: ports 18001-18006), with candidates in the
pool.

A partner's token is refused at sign-in; an ops token signs in; the pool chart shows the pool's candidates
in non-zero bars; a dry run shows the cut-off the draws service computes; the round is held through the
confirmation dialog with its idempotency key; the health panel shows every service ready. Screenshots go
to `.local/console/` for people to look at.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from e2e_documents import varied_documents
from e2e_harness import LOCAL, RUN_DIR, World, poll, port_base, running_world
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from console_service.settings import SERVICES
from shared.gateway import load_table

pytestmark = pytest.mark.infra

T = TypeVar("T")
PARTNER = ("partner-console", "partner")
OPS = ("ops-console", "ops")
PROFILES = 24
SHOTS = LOCAL / "console"
WAIT_S = 30.0


def console_port() -> int:
    return next(e for e in load_table() if e.name == "console").port(port_base())


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    async with running_world("console") as running:
        yield running


@pytest.fixture(scope="module")
async def pool(world: World) -> int:
    """Candidates created and submitted by a partner, all ranked."""
    today = await world.today("profile")

    async def create_and_submit(document: dict[str, Any]) -> None:
        created = await world.call(
            "profile", "POST", "/v1/profiles", as_=PARTNER, json_body=document,
            headers={"Idempotency-Key": str(uuid.uuid4())}, purpose="create",
        )  # fmt: skip
        assert created.status_code == 201, created.text
        submitted = await world.call(
            "profile", "POST", f"/v1/profiles/{created.json()['id']}/submit", as_=PARTNER,
            headers={"If-Match": '"1"'}, purpose="submit",
        )  # fmt: skip
        assert submitted.status_code == 200, submitted.text

    for document in varied_documents(PROFILES, today, seed=15):
        await create_and_submit(document)

    async def all_ranked() -> bool:
        response = await world.call("ranking", "GET", "/v1/pool/top", as_=OPS, params={"n": 1}, purpose="top")
        return response.status_code == 200 and response.json()["pool_size"] == PROFILES

    await poll(all_ranked, 60, f"ranking's pool to hold the {PROFILES} profiles")
    return PROFILES


@pytest.fixture(scope="module")
async def console(world: World) -> str:
    """The console as `make up` runs it (its line of deploy/services.conf), beside the world's services."""
    url = f"http://127.0.0.1:{console_port()}"

    async def ready() -> bool:
        async with httpx.AsyncClient() as client:
            return (await client.get(url + "/readyz", timeout=2)).status_code == 200

    await poll(ready, 30, f"the console's /readyz (log: {RUN_DIR / 'logs' / 'console.log'})")
    return url


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1440,2000", "--lang=en-CA"):  # fmt: skip
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    except WebDriverException as exc:
        raise AssertionError(f"Chromium did not start ({exc.msg}); run deploy/local/browser.sh") from None
    driver.set_page_load_timeout(WAIT_S)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], T], what: str) -> T:
    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(condition)
    except Exception:
        driver.save_screenshot(str(SHOTS / "failure.png"))
        errors = driver.find_elements(By.CSS_SELECTOR, ".error")
        shown = "; ".join(e.text for e in errors)
        raise AssertionError(
            f"{what}: not within {WAIT_S:g}s (errors on the page: {shown or 'none'})"
        ) from None


def shot(driver: WebDriver, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1440, max(900, min(int(height) + 40, 4000)))
    time.sleep(0.3)  # the resized page is laid out again before the picture (not a timed assertion)
    driver.save_screenshot(str(path))
    return path


def sign_in_with(driver: WebDriver, url: str, token: str) -> None:
    driver.get(url + "/console")
    wait_for(driver, lambda d: d.current_url.endswith("/console/login"), "the sign-in page")
    box = driver.find_element(By.ID, "token")
    box.clear()
    box.send_keys(token)
    driver.find_element(By.ID, "sign-in").click()


def test_a_partner_token_is_refused(world: World, console: str, browser: WebDriver) -> None:
    sign_in_with(browser, console, world.token(*PARTNER))
    error = wait_for(browser, lambda d: d.find_element(By.ID, "login-error"), "the refusal")
    assert "this token has the role partner" in error.text
    assert browser.find_elements(By.ID, "pool-chart") == []
    assert browser.get_cookie("ee_console") is None
    shot(browser, "refused-partner-token")


def test_ops_signs_in_and_sees_the_pool_in_non_zero_bars(
    world: World, pool: int, console: str, browser: WebDriver
) -> None:
    sign_in_with(browser, console, world.token(*OPS))
    wait_for(browser, lambda d: d.current_url.endswith("/console"), "the dashboard after sign-in")
    body = browser.find_element(By.TAG_NAME, "body")
    loaded = wait_for(browser, lambda d: body.get_attribute("data-pool-loaded"), "the pool chart")
    assert int(loaded or "0") == pool
    counts = browser.execute_script("return Chart.getChart('pool-chart').data.datasets[0].counts")
    shares = browser.execute_script("return Chart.getChart('pool-chart').data.datasets[0].data")
    assert sum(counts) == pool and sum(1 for c in counts if c > 0) >= 2, counts
    assert all((c > 0) == (s > 0) for c, s in zip(counts, shares, strict=True))
    assert browser.find_element(By.ID, "pool-total").text == str(pool)
    health = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#health-services tbody tr"),
                      "the health panel")  # fmt: skip
    assert [row.find_element(By.TAG_NAME, "td").text for row in health] == list(SERVICES)
    assert all("ready" in row.text and "down" not in row.text for row in health)
    for row in health:  # consumer lag, dead-lettered, outbox backlog: figures from each service's /metrics
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        assert all(cell.replace(",", "").isdigit() for cell in cells[3:6]), cells


async def test_a_candidate_lookup_shows_rank_and_breakdown(
    world: World, pool: int, console: str, browser: WebDriver
) -> None:
    top = await world.call("ranking", "GET", "/v1/pool/top", as_=OPS, params={"n": 1}, purpose="top")
    first = top.json()["candidates"][0]
    browser.find_element(By.ID, "lookup-id").send_keys(first["profile_id"])
    browser.find_element(By.CSS_SELECTOR, "#lookup-form button").click()
    summary = wait_for(browser, lambda d: d.find_element(By.ID, "lookup-summary").text, "the lookup")
    assert summary.startswith(f"CRS {first['crs']} · rank 1 of {pool}")
    factors = browser.find_elements(By.CSS_SELECTOR, "#lookup-breakdown tbody tr")
    assert sum(int(row.find_elements(By.TAG_NAME, "td")[1].text) for row in factors) == first["crs"]


async def test_a_dry_run_shows_the_cut_off_and_the_round_is_held_after_confirmation(
    world: World, pool: int, console: str, browser: WebDriver
) -> None:
    expected = await world.call(
        "draws", "POST", "/v1/draws/plan", as_=OPS, json_body={"type": "general", "size": 10}, purpose="plan"
    )
    assert expected.status_code == 200, expected.text
    Select(browser.find_element(By.ID, "plan-type")).select_by_value("general")
    size = browser.find_element(By.ID, "plan-size")
    size.clear()
    size.send_keys("10")
    browser.find_element(By.ID, "plan-run").click()
    cutoff = wait_for(browser, lambda d: d.find_element(By.ID, "plan-cutoff").text, "the dry run's cut-off")
    assert int(cutoff) == expected.json()["cutoff_crs"]
    assert browser.find_element(By.ID, "plan-invited").text == "10"
    invited = browser.execute_script("return Chart.getChart('plan-chart').data.datasets[0].data")
    assert sum(invited) == 10
    shot(browser, "dashboard-dry-run")

    browser.find_element(By.ID, "hold-round").click()
    key = wait_for(browser, lambda d: d.find_element(By.ID, "hold-key"), "the confirmation dialog")
    assert uuid.UUID(key.get_attribute("value") or "")
    shot(browser, "hold-confirmation")
    browser.find_element(By.ID, "hold-confirm").click()
    held = wait_for(browser, lambda d: d.find_element(By.ID, "hold-summary").text, "the held round")
    assert held.startswith("Round #1 held: 10 invitations") and cutoff in held
    rows = wait_for(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#rounds-ircc tbody tr"), "the rounds table"
    )
    assert rows[0].text.split()[0] == "1"
    rounds = await world.call("draws", "GET", "/v1/draws", purpose="rounds")
    assert [r["invitations"] for r in rounds.json()["items"]] == [10]
    shot(browser, "dashboard-after-round")
