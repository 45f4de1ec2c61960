"""Screenshots of the console for the README: the overview and a chain timeline, taken from a
running baton (the demo test's, which holds every kind of customer). Writes
console-overview.png and console-chain.png into SCREENSHOT_DIR."""

import os
import sys

from playwright.sync_api import expect, sync_playwright

from browser import launch, sign_in

BASE = os.environ["BATON_URL"]
TOKEN = os.environ["BATON_CONSOLE_TOKEN"]
TASK = os.environ["CHAIN_TASK"]
SHOTS = os.environ["SCREENSHOT_DIR"]


def main():
    os.makedirs(SHOTS, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(15000)
        sign_in(page, BASE, TOKEN)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        expect(page.locator("#refreshed")).to_be_visible()
        page.screenshot(path=os.path.join(SHOTS, "console-overview.png"), full_page=True)
        page.goto(f"{BASE}/console/tasks/{TASK}")
        expect(page.locator("li.hop").first).to_be_visible()
        page.screenshot(path=os.path.join(SHOTS, "console-chain.png"), full_page=True)
        browser.close()
    print("screenshots: console-overview.png, console-chain.png")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001 - report any failure
        print(f"FAILED: {str(error).replace(TOKEN, '[ops token]')}", file=sys.stderr)
        sys.exit(1)
