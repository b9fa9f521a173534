"""The chat demo in a real browser: headless Chromium driven by Playwright.

Two phone-sized pages chat through ``python -m trionet chat``; a message holding HTML and
a script shows as text and runs nothing; the page says when the server has gone and
reconnects, without reloading, once the server is back on the same port.

Skipped when Playwright or ``/usr/bin/chromium`` is missing, except under CI (env ``CI``
set), where that is a failure.  The browser is the system's Chromium: no download.  One
browser serves the whole module.  Set ``CHAT_SCREENSHOT=path.png`` to keep a copy of the
screenshot (``docs/_static/chat.png`` was made that way).
"""

from __future__ import annotations

import base64
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 640}
TIMEOUT_MS = 10_000  # every wait on the page
# The page's backoff is capped at 8 s; a reconnect may take one full delay after restart.
RECONNECT_MS = 20_000


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run under CI: {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=ARGS, headless=True, timeout=30_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


class ChatProcess:
    """``python -m trionet chat`` in a subprocess, on a given port or a free one."""

    def __init__(self, port: int = 0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trionet", "chat", "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        output = self._read_until_ready(timeout=20)
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", output)
        assert match is not None, output
        self.port = int(match.group(1))
        self.url = match.group(0)

    def _read_until_ready(self, timeout: float) -> str:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        output = b""
        while b"READY\n" not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise AssertionError(f"no READY within {timeout} s: {output!r}")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.kill()
                    raise AssertionError(f"the chat server exited before READY: {output!r}")
                output += chunk
        return output.decode()

    def stop(self) -> None:
        """Ctrl-C: the server closes every client with 1001 and exits 0."""
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=20) == 0
        self.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)
        self.close()

    def close(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def chat() -> Iterator[ChatProcess]:
    server = ChatProcess()
    try:
        yield server
    finally:
        server.kill()


def open_page(browser: Any, url: str) -> Any:
    """A phone-sized page, in its own context, connected to the chat."""
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    wait_status(page, "connected")
    return page


def wait_status(page: Any, state: str, timeout: int = TIMEOUT_MS) -> None:
    page.wait_for_selector(f'#status[data-state="{state}"]', timeout=timeout)


def send(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.press("#text", "Enter")


def message(page: Any, name: str, text: str) -> Any:
    """Wait for the message ``text`` from ``name`` in the page's list, and return it."""
    item = page.locator("#messages li:not(.system)").filter(has_text=text).last
    item.wait_for()
    assert item.locator(".name").text_content() == name
    assert item.locator(".text").text_content() == text
    return item


def save_screenshot(browser: Any, pages: list[Any], path: Path) -> None:
    """One image with ``pages`` side by side (rendered by a scratch page, no image library)."""
    shots = [base64.b64encode(page.screenshot()).decode() for page in pages]
    images = "".join(f'<img src="data:image/png;base64,{shot}">' for shot in shots)
    canvas = browser.new_page(viewport={"width": PHONE["width"] * len(pages) + 48, "height": 688})
    try:
        canvas.set_content(
            "<body style='margin:0;padding:16px;display:flex;gap:16px;background:#d1d5db'>"
            f"<style>img{{box-shadow:0 2px 8px #0006}}</style>{images}</body>"
        )
        canvas.screenshot(path=str(path))
    finally:
        canvas.close()
    keep = os.environ.get("CHAT_SCREENSHOT")
    if keep:
        shutil.copyfile(path, keep)


def test_two_pages_chat_and_html_stays_text(
    browser: Any, chat: ChatProcess, tmp_path: Path
) -> None:
    alice = open_page(browser, chat.url + "?name=alice")
    bob = open_page(browser, chat.url + "?name=bob")
    assert alice.text_content("#whoami").startswith("you are alice")
    alice.locator("#messages li.system", has_text="bob joined").wait_for()
    assert alice.text_content("#whoami") == "you are alice · 2 people here"

    send(alice, "hi bob, this is trionet's chat demo")
    message(bob, "alice", "hi bob, this is trionet's chat demo")
    message(alice, "alice", "hi bob, this is trionet's chat demo")  # echoed to the sender
    assert alice.input_value("#text") == ""  # Enter sent it and cleared the input
    send(bob, "hello alice! it runs on trionet.WebSocketServer")
    message(alice, "bob", "hello alice! it runs on trionet.WebSocketServer")

    hostile = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> <b>bold?</b>'
    send(bob, hostile)
    for page in (alice, bob):
        message(page, "bob", hostile)  # shown as the very characters typed
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.locator("#messages img, #messages b, #messages script").count() == 0

    send(alice, "x" * 1001)
    alice.locator("#messages li.error", has_text="too long").wait_for()
    assert bob.locator("#messages li", has_text="x" * 1001).count() == 0

    screenshot = tmp_path / "chat.png"
    save_screenshot(browser, [alice, bob], screenshot)
    assert screenshot.stat().st_size > 10_000
    for page in (alice, bob):
        page.context.close()


def test_page_shows_disconnect_and_reconnects_without_reloading(
    browser: Any, chat: ChatProcess
) -> None:
    carol = open_page(browser, chat.url + "?name=carol")
    carol.evaluate("window.__sameDocument = true")
    chat.stop()
    wait_status(carol, "disconnected")
    assert "disconnected" in carol.text_content("#status")
    send(carol, "sent while offline")
    carol.locator("#messages li.error", has_text="not connected").wait_for()
    assert carol.input_value("#text") == "sent while offline"  # kept, to send again

    again = ChatProcess(chat.port)  # the same port, a new process
    try:
        wait_status(carol, "connected", timeout=RECONNECT_MS)
        assert carol.evaluate("window.__sameDocument") is True  # no reload happened
        dave = open_page(browser, again.url + "?name=dave")
        carol.locator("#messages li.system", has_text="dave joined").wait_for()
        send(carol, "back again")
        message(dave, "carol", "back again")
        dave.context.close()
        carol.context.close()
    finally:
        again.kill()
