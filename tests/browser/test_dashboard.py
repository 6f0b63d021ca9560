"""The dashboard in a real browser (headless Chromium) over a real store with real pools.

Each test watches what a user would: a run's state changing on the page with no reload,
output appearing as the command prints it, a click on the DLQ page or a job's page doing
what it says, and an action refused without the token or from another site's page.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import Dashboard, start_dashboard, stop_dashboard
from tests.conftest import Queue

NO_RELOAD = "window.__not_reloaded = true"  # a mark a reload would wipe


def not_reloaded(page: Any) -> bool:
    return bool(page.evaluate("window.__not_reloaded === true"))


def state_of(page: Any, run_id: str) -> Any:
    return page.locator(f'tr[data-run-id="{run_id}"] td.state-cell')


def accept_dialogs(page: Any) -> list[str]:
    """Click OK on every confirm(); the questions asked, in order."""
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    return asked


def test_a_run_goes_from_pending_to_running_to_completed_on_the_page_without_a_reload(
    q: Queue, dashboard: Dashboard, page: Any
) -> None:
    page.goto(f"{dashboard.url}/runs")
    page.evaluate(NO_RELOAD)
    gate, path = q.gate()
    q("enqueue", "--id", "watched", "--command", gate)
    state = state_of(page, "watched")
    state.and_(page.locator('[data-state="pending"]')).wait_for()
    pool = q.start_pool("--count", "1")
    state.and_(page.locator('[data-state="running"]')).wait_for()
    path.touch()
    state.and_(page.locator('[data-state="completed"]')).wait_for()
    assert not_reloaded(page)
    pool.terminate()


def test_a_running_attempt_s_output_appears_as_it_is_printed(q: Queue, dashboard: Dashboard, page: Any) -> None:
    first, first_path = q.gate("first")
    second, second_path = q.gate("second")
    command = f"echo 'line one'; {first}; echo 'line <two>'; {second}; echo 'line three'"
    q("enqueue", "--id", "talking", "--command", command)
    q.start_pool("--count", "1")
    page.goto(f"{dashboard.url}/runs/talking")
    page.evaluate(NO_RELOAD)
    output = page.locator("#output")
    output.filter(has_text="line one").wait_for()
    assert "line <two>" not in output.inner_text()
    first_path.touch()
    output.filter(has_text="line <two>").wait_for()  # printed as text: the page shows the brackets
    assert "line three" not in output.inner_text()
    second_path.touch()
    output.filter(has_text="line three").wait_for()
    page.locator('#run-state[data-state="completed"]').wait_for()
    assert output.inner_text().count("line one") == 1  # a resumed stream repeats nothing
    assert not_reloaded(page)


def test_a_dead_run_is_retried_from_the_dlq_page(q: Queue, dashboard: Dashboard, page: Any) -> None:
    q("enqueue", "--id", "broken", "--command", "exit 3", "--retries", "0")
    q("enqueue", "--id", "broken-too", "--command", "exit 4", "--retries", "0")
    q.burst(dead=True)
    asked = accept_dialogs(page)
    page.goto(f"{dashboard.url}/dlq")
    page.locator('input.pick[value="broken"]').check()
    page.locator("#retry-selected").click()
    page.locator('#status[data-result="ok"]').wait_for()
    assert asked and "retry" in asked[0].lower()
    assert q.state("broken") == "pending" and q.state("broken-too") == "dead"
    page.locator('tr[data-run-id="broken"]').wait_for(state="detached")  # gone from the DLQ, no reload
    assert page.locator('tr[data-run-id="broken-too"]').count() == 1


def test_a_job_is_triggered_from_its_page_and_its_run_appears(q: Queue, dashboard: Dashboard, page: Any) -> None:
    jobs = q.write_job("nightly", 'command = "echo nightly"\ncron = "0 2 * * *"\ntimezone = "UTC"\n')
    q("apply", str(jobs))
    accept_dialogs(page)
    page.goto(f"{dashboard.url}/jobs/nightly")
    page.locator('#job-actions button[data-action="/api/jobs/nightly/trigger"]').click()
    page.locator('#status[data-result="ok"]').wait_for()
    (run,) = q.json("list", "--job", "nightly")
    assert run["state"] == "pending"
    page.locator(f'#recent-runs tr[data-run-id="{run["id"]}"]').wait_for()


class _Attacker(http.server.BaseHTTPRequestHandler):
    """Another site: its page posts a form to the dashboard as soon as it loads."""

    target = ""

    def do_GET(self) -> None:  # http.server calls it by this name
        body = (
            f'<form id="f" method="post" action="{self.target}"><input name="csrf_token" value="guessed"></form>'
            "<script>document.getElementById('f').submit()</script>"
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[tuple[http.server.HTTPServer, type[_Attacker]]]:
    handler = type("Attacker", (_Attacker,), {})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def test_an_action_is_refused_without_the_token_and_from_another_site(
    q: Queue, browser: Any, attacker: tuple[http.server.HTTPServer, type[_Attacker]]
) -> None:
    jobs = q.write_job("nightly", 'command = "echo nightly"\ncron = "0 2 * * *"\ntimezone = "UTC"\n')
    q("apply", str(jobs))
    served = start_dashboard(q, token="s3cret-token")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{served.url}/jobs/nightly")
        assert page.url.endswith("/login?next=%2Fjobs%2Fnightly")  # no token: the page sends the browser to log in
        status = page.evaluate("fetch('/api/jobs/nightly/trigger', {method: 'POST'}).then(r => r.status)")
        assert status == 401
        page.goto(f"{served.url}/login?token=s3cret-token")
        assert re.search(r"/$", page.url)
        server, handler = attacker
        handler.target = f"{served.url}/api/jobs/nightly/trigger"
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")  # the form posts itself to the dashboard
        page.get_by_text("refused").wait_for()
        assert "another origin" in page.inner_text("body")
        assert q.json("list", "--job", "nightly") == []  # nothing was triggered
        asked = accept_dialogs(page)
        page.goto(f"{served.url}/jobs/nightly")  # logged in, on its own page: the same click works
        page.locator('#job-actions button[data-action="/api/jobs/nightly/trigger"]').click()
        page.locator('#status[data-result="ok"]').wait_for()
        assert asked and len(q.json("list", "--job", "nightly")) == 1
    finally:
        context.close()
        stop_dashboard(served)


PAGES = ("/", "/jobs", "/jobs/nightly", "/runs", "/runs/wide", "/dlq", "/pools")


def test_every_page_fits_a_phone_follows_the_dark_theme_and_loads_only_its_own_assets(
    q: Queue, dashboard: Dashboard, browser: Any
) -> None:
    jobs = q.write_job("nightly", 'command = "echo nightly"\ncron = "0 2 * * *"\ntimezone = "UTC"\n')
    q("apply", str(jobs))
    q("enqueue", "--id", "wide", "--command", "echo " + "a-very-long-word-" * 30)
    q.burst()
    for scheme, dark in (("light", False), ("dark", True)):
        context = browser.new_context(color_scheme=scheme, viewport={"width": 375, "height": 800})
        page = context.new_page()
        asked: list[str] = []
        page.on("request", lambda request, into=asked: into.append(request.url))
        for path in PAGES:
            page.goto(f"{dashboard.url}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{path} is {width} px wide on a 375 px screen ({scheme})"
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            red, green, blue = (int(v) for v in re.findall(r"\d+", background)[:3])
            assert (red + green + blue < 150) is dark, f"{path}: background {background} in the {scheme} theme"
        assert asked and all(url.startswith(dashboard.url) for url in asked)  # nothing from the internet
        context.close()
