"""The browser harness itself: Chromium opens the dashboard's JSON status."""

from __future__ import annotations

import json
from typing import Any

from tests.browser.conftest import Dashboard
from tests.conftest import Queue


def test_chromium_reads_the_status_the_cli_prints(q: Queue, dashboard: Dashboard, page: Any) -> None:
    q("enqueue", '{"id": "job1", "command": "true"}')
    page.goto(f"{dashboard.url}/api/status")
    assert json.loads(page.inner_text("body")) == q.json("status")
