"""/ui in a real browser: Debian's chromium driven by Selenium through chromium-driver (headless,
offline, a fresh profile). Sign in with the agent's token, see the pending approval with the
decision's stage, reason and confidence, press Approve: the trigger goes out. Also what a
browser must not be able to do: answer without a session, or from another site's form.

Set AGENT_SRE_SCREENSHOTS to a folder to keep the screenshots (docs/ui holds the committed ones).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from agent_sre.server import create_app
from tests.gate.support import data
from tests.helpers import serve_asgi
from tests.loop.support import CLASS, Clock, crash, make
from tests.loop.test_loop import fixed

TOKEN = "ui-token"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    missing = [p for p in (CHROMIUM, DRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"{missing} missing: run .ci/install-system-deps.sh (Debian's chromium and chromium-driver)",
                    pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1500,1100"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()


def find(drv, element_id: str, timeout: float = 15):
    """The element once the page that has it is loaded (a click starts a navigation; wait for it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, timeout).until(ec.presence_of_element_located((By.ID, element_id)))


def shot(drv, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    drv.save_screenshot(str(path))
    keep = os.environ.get("AGENT_SRE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


def test_approve_in_the_browser(tmp_path, browser):
    from selenium.webdriver.common.by import By

    rig = make(tmp_path, "mode: execute\nautonomy: {promote_after: 3}", clock=Clock(time.time() - 120))
    fixed(rig, 1)  # some history: one verified outcome, a decision, a result
    rig.agent.handle_alerts([crash(2)])
    [req] = [r for r in rig.requests() if r["parameters"]["name"] == "web-2"]
    before = len(rig.broker.triggers)
    with serve_asgi(create_app(rig.agent, auth_token=TOKEN)) as url:
        browser.get(url + "/ui")
        assert "Sign in" in browser.page_source  # the token is needed first
        browser.find_element(By.ID, "token").send_keys("wrong")
        browser.find_element(By.ID, "sign-in").click()
        assert "not the agent's token" in find(browser, "login-error").text
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "sign-in").click()

        row = find(browser, f"approval-{req['id']}")
        assert "pod-restart" in row.text and "web-2" in row.text and "fake model" in row.text
        assert "confidence 0.95" in row.text and CLASS in row.text
        decisions = browser.find_element(By.ID, "decisions").text
        assert "function_gemma" in decisions and "held for a person (suggest)" in decisions
        classes = browser.find_element(By.ID, "classes").text
        assert "suggest" in classes and "1 of 3 verified" in classes
        shot(browser, tmp_path, "approvals")

        browser.find_element(By.ID, f"approve-{req['id']}").click()
        assert f"{req['id']}: approved" in find(browser, "message").text
        assert "approved" in find(browser, f"answered-{req['id']}").text
        assert browser.find_elements(By.ID, f"approval-{req['id']}") == []
        shot(browser, tmp_path, "approved")
    [trig] = rig.broker.triggers[before:]
    assert data(trig)["parameters"]["name"] == "web-2" and data(trig)["dry_run"] is False
    assert rig.loop.store.get_approval(req["id"]).by == "ui"


def test_reject_in_the_browser_needs_a_reason(tmp_path, browser):
    from selenium.webdriver.common.by import By

    rig = make(tmp_path)
    rig.agent.handle_alerts([crash(1)])
    [req] = rig.requests()
    with serve_asgi(create_app(rig.agent)) as url:  # no AUTH_TOKEN: a session without signing in
        browser.get(url + "/ui")
        browser.find_element(By.ID, f"reject-{req['id']}").click()
        assert "Say why" in find(browser, "message").text
        find(browser, f"reason-{req['id']}").send_keys("maintenance window")
        browser.find_element(By.ID, f"reject-{req['id']}").click()
        assert "rejected" in find(browser, f"answered-{req['id']}").text
    a = rig.loop.store.get_approval(req["id"])
    assert (a.status, a.note) == ("rejected", "maintenance window") and rig.broker.triggers == []


def test_no_session_or_another_sites_form_cannot_approve(tmp_path):
    rig = make(tmp_path)
    rig.agent.handle_alerts([crash(1)])
    [req] = rig.requests()
    with serve_asgi(create_app(rig.agent, auth_token=TOKEN)) as url:
        action = f"{url}/ui/approvals/{req['id']}/approve"
        assert httpx.post(action, data={"csrf": "x"}).status_code == 401  # no session
        c = httpx.Client(base_url=url, follow_redirects=False)
        assert c.post("/ui/login", data={"token": TOKEN}).status_code == 303
        cookie = c.cookies.get("agent_sre_ui")
        assert cookie
        # A form on another site: the browser would send the cookie only if SameSite allowed it, and
        # the page cannot know the CSRF token.
        r = c.post(f"/ui/approvals/{req['id']}/approve", data={"csrf": "guess"}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "CSRF" in r.json()["error"]
        page = c.get("/ui").text
        token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        r = c.post(f"/ui/approvals/{req['id']}/approve", data={"csrf": token}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403  # the right token from the wrong origin
        assert rig.broker.triggers == []
        r = c.post(f"/ui/approvals/{req['id']}/approve", data={"csrf": token}, headers={"Origin": url})
        assert r.status_code == 303 and len(rig.broker.triggers) == 1
        set_cookie = httpx.post(f"{url}/ui/login", data={"token": TOKEN}).headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "path=/ui" in set_cookie
