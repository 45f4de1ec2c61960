"""What the console's browser scripts share: Debian's Chromium, headless, with no network of its
own, and signing in through the console's form."""

import os

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# No background traffic: Chromium reaches only the pages it is sent to.
ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


def sign_in(page, base, token, next_path="/console"):
    page.goto(f"{base}/console/sign-in?next={next_path}")
    page.get_by_label("Ops token or Flex token").fill(token)
    page.get_by_role("button", name="Sign in").click()
