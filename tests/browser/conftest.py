"""A real browser over a real dashboard: headless Chromium (Debian's `chromium`) driven by Playwright.

Playwright's own browser download is not used (nor possible here): the browser is the system's,
found on PATH or named by QUEUECTL_CHROMIUM, started through `executable_path`. Without one
these tests skip, and in CI a skip fails the run (tests/conftest.py): there they are mandatory.

Playwright's sync API keeps an event loop running in the main thread of the test process (xdist
worker) it ran in, for the rest of the session: a test that calls asyncio.run() must do so in a
thread of its own (see tests/integration/test_web_actions.py).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Queue

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
# Chromium as root in a container, on a closed network: no sandbox, no GPU, and none of the
# background connections it would otherwise try (and be refused) at every start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    named = os.environ.get("QUEUECTL_CHROMIUM")
    if named:
        return named
    return next((found for name in BROWSER_NAMES if (found := shutil.which(name))), None)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium per test process (xdist worker); each test opens its own context."""
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium found (install Debian's chromium, or set QUEUECTL_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Dashboard:
    """A `queuectl dashboard` process over the queue's store."""

    url: str  # http://127.0.0.1:PORT (no trailing slash)
    proc: subprocess.Popen[str]
    token: str | None = None


LISTENING = re.compile(r"dashboard on (http://\S+?)/? ")


def start_dashboard(q: Queue, *args: str, token: str | None = None) -> Dashboard:
    argv = ["dashboard", "--port", "0", *args, *(["--token", token] if token else [])]
    proc = q.spawn(*argv, stdout=None, stderr=subprocess.PIPE, cwd=q.tmp)
    assert proc.stderr is not None
    for line in proc.stderr:
        found = LISTENING.search(line)
        if found:
            return Dashboard(found.group(1), proc, token)
    raise AssertionError(f"queuectl dashboard exited {proc.wait()} without serving")


def stop_dashboard(dashboard: Dashboard) -> None:
    if dashboard.proc.poll() is None:
        dashboard.proc.send_signal(signal.SIGTERM)
        dashboard.proc.wait(timeout=20)


@pytest.fixture
def dashboard(q: Queue) -> Iterator[Dashboard]:
    q.burst()  # the store exists (the dashboard does not make one)
    served = start_dashboard(q)
    yield served
    stop_dashboard(served)


@pytest.fixture(params=["light"])
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(color_scheme=request.param, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    opened = context.new_page()
    yield opened
    context.close()
