"""The ops console in real headless Chromium, driven by Playwright, against a running baton.

Run by `tests/api/console.rs`, which starts baton and the Twilio stand-in, builds a chain, a park
and a dead call, and passes them in the environment. Exits non-zero on the first failure, saying
which step failed. The token is read from the environment and never printed.
"""

import os
import re
import sys

from playwright.sync_api import expect, sync_playwright

from browser import launch

BASE = os.environ["BATON_URL"]
TOKEN = os.environ["BATON_CONSOLE_TOKEN"]
WORKER = os.environ["WORKER_SID"]
FIRST_TASK = os.environ["FIRST_TASK"]
SECOND_TASK = os.environ["SECOND_TASK"]
CONVERSATION = os.environ["CONVERSATION"]
DEAD_CALL = os.environ["DEAD_CALL"]
PARK_ID = os.environ["PARK_ID"]

errors = []


def step(name):
    print(f"step: {name}", flush=True)


def main():
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(f"page error on {page.url}: {e}"))
        page.on("console", lambda m: errors.append(f"console {m.type} on {page.url}: {m.text}")
                if m.type == "error" else None)
        page.set_default_timeout(15000)

        step("a page without a session sends its user to sign in")
        page.goto(f"{BASE}/console/transfers")
        expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
        token_field = page.get_by_label("Ops token or Flex token")
        expect(token_field).to_have_attribute("type", "password")

        step("sign in with the ops token")
        token_field.fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{BASE}/console/transfers")
        cookies = context.cookies()
        session = [c for c in cookies if c["name"] == "baton_session"]
        assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict", cookies
        storage = page.evaluate("() => JSON.stringify([localStorage, sessionStorage, document.cookie])")
        assert TOKEN not in storage and "baton_session" not in storage, "nothing in browser storage"

        step("the overview shows the window's transfers, the park and the dead call")
        page.goto(f"{BASE}/console?window=24h")
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        expect(page.locator(".card", has_text="Completed").locator(".value")).to_have_text("1")
        expect(page.locator(".card", has_text="Outbox dead").locator(".value")).to_have_text("1")
        expect(page.locator("ul.attention a", has_text=f"#{DEAD_CALL}")).to_be_visible()
        expect(page.get_by_text(re.compile(r"Times are shown in"))).to_be_visible()

        step("find the transfer by worker")
        page.goto(f"{BASE}/console/transfers")
        page.get_by_label("Worker", exact=True).fill(WORKER)
        page.get_by_role("button", name="Search").click()
        expect(page).to_have_url(re.compile(f"worker_sid={WORKER}"))
        rows = page.locator("main table tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("completed")
        csv = page.get_by_role("link", name=re.compile("Download CSV"))
        assert "format=csv" in csv.get_attribute("href") and f"worker_sid={WORKER}" in csv.get_attribute("href")

        step("open its chain: every task and hop")
        rows.first.get_by_role("link", name=SECOND_TASK).click()
        expect(page).to_have_url(f"{BASE}/console/tasks/{SECOND_TASK}")
        expect(page.locator("li.task-item")).to_have_count(2)
        expect(page.locator("li.hop")).to_have_count(1)
        expect(page.locator("li.hop")).to_contain_text("billing question")
        expect(page.locator(f"li.task-item#{FIRST_TASK}")).to_be_visible()
        expect(page.locator(f"li.task-item#{SECOND_TASK}")).to_contain_text(WORKER)

        step("search a conversation SID: its page")
        page.get_by_label("Search by SID or outbox id").fill(CONVERSATION)
        page.get_by_label("Search by SID or outbox id").press("Enter")
        expect(page).to_have_url(f"{BASE}/console/conversations/{CONVERSATION}")
        expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
        expect(page.locator("main")).to_contain_text(PARK_ID)

        step("re-drive the dead call and see it done")
        page.goto(f"{BASE}/console/outbox?state=dead")
        page.get_by_role("link", name=f"#{DEAD_CALL}").click()
        expect(page).to_have_url(f"{BASE}/console/outbox/{DEAD_CALL}")
        expect(page.locator("main table").nth(1).locator("tbody tr")).to_have_count(3)
        page.get_by_role("button", name="Re-drive").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text(f"Re-drive call #{DEAD_CALL}?")
        dialog.get_by_role("button", name="Re-drive").click()
        expect(page.locator("#call-status")).to_have_text("Re-driven: done.", timeout=30000)
        expect(page.get_by_role("button", name="Re-drive")).to_have_count(0)

        step("resume the park, after a confirmation")
        page.goto(f"{BASE}/console/parks")
        row = page.locator("main table tbody tr", has_text=PARK_ID)
        row.get_by_role("button", name="Resume").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("To the same worker").check()
        dialog.get_by_role("button", name="Resume").click()
        expect(page.get_by_role("status")).to_have_text(f"Park {PARK_ID} resumed.")
        expect(page.get_by_text("Nothing is parked.")).to_be_visible()

        step("every page loads without a JavaScript error")
        for path in ["/console", "/console/transfers", f"/console/tasks/{FIRST_TASK}",
                     f"/console/conversations/{CONVERSATION}", "/console/parks",
                     "/console/outbox", f"/console/outbox/{DEAD_CALL}"]:
            response = page.goto(f"{BASE}{path}")
            csp = response.headers.get("content-security-policy", "")
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, (path, csp)
            expect(page.locator("main h1")).to_be_visible()
            expect(page.locator("main .error")).to_have_count(0)

        step("an empty list says so")
        page.goto(f"{BASE}/console/transfers?worker_sid=WK{'0' * 31}9")
        expect(page.get_by_text("No transfers in this window.")).to_be_visible()

        step("sign out: back to sign-in, and pages need signing in again")
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(f"{BASE}/console/sign-in")
        page.goto(f"{BASE}/console/outbox")
        expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))

        browser.close()
    if errors:
        print("JavaScript errors:\n" + "\n".join(errors), file=sys.stderr)
        sys.exit(1)
    print("console: all steps passed")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001 - report any failure as the step's
        message = str(error).replace(TOKEN, "[ops token]")
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)
