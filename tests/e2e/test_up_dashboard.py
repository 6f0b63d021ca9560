"""`queuectl up DIR --dashboard [HOST:]PORT`: the dashboard served from a thread of `up`, over up's store.

The real `queuectl up` in a subprocess, its dashboard asked over real HTTP (urllib), polled with deadlines.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from typing import Any

from queuectl.web.security import READ_ONLY
from tests.conftest import QUEUECTL, Queue, wait_for


def _up(q: Queue, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`up` in the background, and the lines of its log (stderr) as they come."""
    proc = q.spawn("up", *args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=q.tmp)
    lines: list[str] = []
    assert proc.stderr is not None
    threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True).start()
    return proc, lines


def _port(lines: list[str]) -> int | None:
    found = [re.search(r"dashboard on http://127\.0\.0\.1:(\d+)/", line) for line in list(lines)]
    return next((int(m.group(1)) for m in found if m), None)


def _get(port: int, path: str) -> tuple[int, Any, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            body = answer.read().decode()
            return answer.status, body, answer.headers.get("set-cookie", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), ""
    except OSError:
        return 0, "", ""


def _post(port: int, path: str, csrf: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=b"",
        method="POST",
        headers={"Cookie": f"queuectl_csrf={csrf}", "X-CSRF-Token": csrf, "Origin": f"http://127.0.0.1:{port}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_up_serves_the_dashboard_over_its_store_and_stops_with_it(q: Queue) -> None:
    jobs = q.write_job("hello", 'command = "echo hello"\ncron = "0 2 * * *"\ntimezone = "UTC"\n')
    proc, lines = _up(q, str(jobs), "--workers", "1", "--dashboard", "127.0.0.1:0")
    port = wait_for(lambda: _port(lines), timeout=30, what="the dashboard's address in up's log")
    assert wait_for(lambda: _get(port, "/healthz")[0] == 200, what="/healthz answering")
    wait_for(lambda: "hello" in [j["job"] for j in json.loads(_get(port, "/api/jobs")[1])], what="the job applied")
    status, body, cookie = _get(port, "/api/status")
    assert status == 200 and json.loads(body)["jobs"]
    csrf = re.search(r"queuectl_csrf=([^;]+)", cookie)
    assert csrf is not None
    status, triggered = _post(port, "/api/jobs/hello/trigger", csrf.group(1))
    assert status == 200, triggered
    run_id = triggered["triggered"]
    wait_for(lambda: q.state(run_id) == "completed", what="up's pool running the run the dashboard triggered")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert _get(port, "/healthz")[0] == 0  # nothing listens any more
    assert not any("Traceback" in line for line in lines)


def test_up_serves_a_read_only_dashboard_when_asked(q: Queue) -> None:
    jobs = q.write_job("hello", 'command = "echo hello"\ncron = "0 2 * * *"\ntimezone = "UTC"\n')
    proc, lines = _up(q, str(jobs), "--workers", "1", "--dashboard", "127.0.0.1:0", "--dashboard-read-only")
    port = wait_for(lambda: _port(lines), timeout=30, what="the dashboard's address in up's log")
    wait_for(lambda: _get(port, "/api/jobs")[0] == 200, what="the dashboard answering")
    cookie = _get(port, "/api/status")[2]
    csrf = re.search(r"queuectl_csrf=([^;]+)", cookie)
    assert csrf is not None
    assert _post(port, "/api/jobs/hello/trigger", csrf.group(1)) == (403, {"error": READ_ONLY})
    assert "data-action" not in _get(port, "/jobs/hello")[1]  # no button either
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert q("up", str(jobs), "--dashboard-read-only", check=False).stderr.splitlines() == [
        "queuectl: error: --dashboard-read-only goes with --dashboard [HOST:]PORT"
    ]


def test_up_on_a_port_in_use_says_so_in_one_line_before_anything_starts(q: Queue) -> None:
    jobs = q.write_job("hello", 'command = "echo hello"\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = q("up", str(jobs), "--dashboard", str(port), check=False)
    assert done.returncode == 1  # as `dashboard` on a port in use: not bad usage, a failure of what was asked
    assert done.stderr.splitlines() == [f"queuectl: error: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert q.json("list", "--jobs") == []  # nothing was applied


def test_up_refuses_a_dashboard_off_loopback_without_a_token(q: Queue) -> None:
    jobs = q.write_job("hello", 'command = "echo hello"\n')
    env = {k: v for k, v in q.env.items() if k != "QUEUECTL_DASHBOARD_TOKEN"}
    done = subprocess.run(
        [*QUEUECTL, "up", str(jobs), "--dashboard", "0.0.0.0:0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "queuectl: error: refusing to serve on 0.0.0.0 without a token: give --dashboard-token T "
        "or set QUEUECTL_DASHBOARD_TOKEN (or use --dashboard 127.0.0.1:PORT)"
    ]
    for bad in ("http", "host:", "70000", ":8080"):
        said = q("up", str(jobs), "--dashboard", bad, check=False)
        assert said.returncode == 2 and said.stderr.splitlines() == [
            f"queuectl: error: invalid --dashboard {bad!r}: expected [HOST:]PORT, like 8080 or 0.0.0.0:8080"
        ]
