"""The dashboard's JSON API: every /api/ answer is the CLI's --json answer for the same question.

A real SQLite store with real runs (a burst pool ran them), Starlette's TestClient
in this process, and the real `queuectl` in subprocesses for the CLI's side.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from queuectl import json_views
from queuectl.web import app as web_app
from queuectl.web.app import create_app
from tests.conftest import LOCAL, QUEUECTL, Queue, wait_for

SECRET = "hunter2-not-for-the-web"


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queue]:
    """A store with completed, dead and waiting runs and a declared job: read only by the tests below."""
    q = Queue(tmp_path_factory.mktemp("web"))
    for n in range(3):
        q("enqueue", "--id", f"ok-{n}", "--command", f"echo ok {n}")
    q("enqueue", "--id", "bad", "--command", "echo broken >&2; exit 3", "--retries", "0", "--env", f"TOKEN={SECRET}")
    manifest = f'command = "echo nightly"\ncron = "0 2 * * *"\ntimezone = "UTC"\n[env]\nPGPASSWORD = "{SECRET}"\n'
    jobs = q.write_job("nightly", manifest)
    q("apply", str(jobs))
    q.burst(dead=True)
    q("enqueue", "--id", "later", "--command", "echo later")  # pending: no pool is left to run it
    yield q
    q.cleanup()


@pytest.fixture(scope="module")
def client(filled: Queue) -> TestClient:
    return TestClient(create_app(str(filled.db)), base_url=LOCAL)


def _get(client: TestClient, path: str) -> Any:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    return answer.json()


@pytest.mark.parametrize(
    ("path", "cli"),
    [
        ("/api/status", ["status"]),
        ("/api/runs", ["list"]),
        ("/api/runs?state=completed", ["list", "--state", "completed"]),
        ("/api/runs?state=processing&limit=5", ["list", "--state", "running", "-n", "5"]),
        ("/api/runs?limit=2", ["list", "-n", "2"]),
        ("/api/runs/bad", ["show", "bad"]),
        ("/api/runs/ok-1", ["show", "ok-1"]),
        ("/api/jobs", ["list", "--jobs"]),
        ("/api/jobs/nightly", ["show", "nightly"]),
        ("/api/pools", ["worker", "status"]),
        ("/api/dlq", ["dlq", "list"]),
        ("/api/dlq?limit=1", ["dlq", "list", "-n", "1"]),
    ],
)
def test_each_api_answer_is_the_cli_json_answer(filled: Queue, client: TestClient, path: str, cli: list[str]) -> None:
    """The same JSON, but for env values: the CLI shows them to the store's owner, the web never."""
    said = filled.json(*cli)
    assert _get(client, path) == json_views.without_env_values(said)
    assert SECRET not in client.get(path).text


def test_env_keys_are_shown_and_their_values_hidden(filled: Queue, client: TestClient) -> None:
    assert filled.json("show", "bad")["env"] == {"TOKEN": SECRET}  # what the web hides is there to hide
    assert _get(client, "/api/runs/bad")["env"] == {"TOKEN": json_views.ENV_HIDDEN}
    assert _get(client, "/api/jobs/nightly")["spec"]["env"] == {"PGPASSWORD": json_views.ENV_HIDDEN}


def test_the_store_has_what_the_comparisons_rely_on(client: TestClient) -> None:
    """The equalities above compare something: runs in three states, a dead one with its error, a job."""
    counts = _get(client, "/api/status")["counts"]
    assert (counts["completed"], counts["dead"], counts["pending"]) == (3, 1, 1)
    assert [r["id"] for r in _get(client, "/api/dlq")] == ["bad"]
    assert _get(client, "/api/runs/bad")["history"][0]["exit_code"] == 3
    assert [j["job"] for j in _get(client, "/api/jobs")] == ["nightly"]
    assert _get(client, "/api/pools") == []  # a burst pool leaves no trace; a live one's heartbeat moves


def test_runs_filter_by_job_and_page_with_a_keyset_cursor(client: TestClient) -> None:
    every = [r["id"] for r in _get(client, "/api/runs")]
    assert every[:4] == ["ok-0", "ok-1", "ok-2", "bad"] and every[-1] == "later"
    assert [r["id"] for r in _get(client, "/api/runs?after=ok-1&limit=2")] == ["ok-2", "bad"]
    assert [r["id"] for r in _get(client, f"/api/runs?after={every[-1]}")] == []
    assert [r["job"] for r in _get(client, "/api/runs?job=nightly")] == [
        r["job"] for r in _get(client, "/api/runs") if r["job"] == "nightly"
    ]
    assert _get(client, "/api/runs?job=no-such-job") == []


def test_a_listing_answers_a_page_and_links_the_next(q: Queue) -> None:
    """No limit: 1,000 runs, never the whole store; a full page's Link header names the next."""
    q("enqueue", "--file", "-", input="".join(f'{{"id": "r{n:04d}", "command": "true"}}\n' for n in range(1005)))
    web = TestClient(create_app(str(q.db)), base_url=LOCAL)
    first = web.get("/api/runs")
    assert [r["id"] for r in first.json()] == [f"r{n:04d}" for n in range(1000)]
    assert first.json() == q.json("list", "-n", "1000")
    link = re.fullmatch(r'<(/api/runs\?after=r0999%40[0-9.]+)>; rel="next"', first.headers["link"])
    assert link is not None, first.headers["link"]
    rest = web.get(link.group(1))
    assert [r["id"] for r in rest.json()] == [f"r{n:04d}" for n in range(1000, 1005)] and "link" not in rest.headers
    paged = web.get("/api/runs?state=pending&limit=2&after=r0001")
    assert [r["id"] for r in paged.json()] == ["r0002", "r0003"]
    assert re.fullmatch(r'</api/runs\?state=pending&limit=2&after=r0003%40[0-9.]+>; rel="next"', paged.headers["link"])


def test_a_next_page_link_works_once_its_last_run_is_gone(q: Queue) -> None:
    """A script that deletes each page of the DLQ before asking for the next still gets the next."""
    dead = "".join(f'{{"id": "d{n}", "command": "exit 3", "retries": 0}}\n' for n in range(5))
    q("enqueue", "--file", "-", input=dead)
    q.burst(dead=True)
    web = TestClient(create_app(str(q.db)), base_url=LOCAL)
    seen: list[str] = []
    answer = web.get("/api/dlq?limit=2")
    while True:
        assert answer.status_code == 200, answer.text
        page = [run["id"] for run in answer.json()]
        seen += page
        q("dlq", "clear", *page)  # gone before the next page is asked for
        if "link" not in answer.headers:
            break
        answer = web.get(answer.headers["link"].split(">")[0][1:])
    assert seen == ["d0", "d1", "d2", "d3", "d4"]
    assert web.get("/api/dlq?after=d1").status_code == 404  # a bare id that is gone: said so
    assert web.get("/api/dlq?after=d1@soon").status_code == 400
    too_many = web.get("/api/runs?limit=10001")
    assert too_many.status_code == 400 and "1 to 10000" in too_many.json()["error"]


def test_status_looks_the_store_over_once_a_minute(q: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pollers ask /api/status again and again: the whole-store check (every page read) runs once a minute."""
    q("enqueue", "--file", "-", input="".join(f'{{"command": "echo {n}"}}\n' for n in range(300)))
    clock = [1000.0]
    monkeypatch.setattr(web_app.time, "monotonic", lambda: clock[0])
    web = TestClient(create_app(str(q.db)), base_url=LOCAL)
    assert web.get("/api/status").json() == q.json("status")
    with sqlite3.connect(q.db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs_listed'").fetchone()
    with open(q.db, "r+b") as f:  # an index the counts do not read: only the check finds it
        f.seek((root - 1) * 4096)
        f.write(os.urandom(4096))
    clock[0] += 30
    later = web.get("/api/status")
    assert later.status_code == 200, later.text  # checked 30 s ago
    clock[0] += 31
    damaged = web.get("/api/status")
    assert damaged.status_code == 503 and "restore it from a backup" in damaged.json()["error"]


def test_not_found_is_404_with_the_cli_message(filled: Queue, client: TestClient) -> None:
    said = filled("show", "nope", check=False).stderr.strip()
    for path in ("/api/runs/nope", "/api/jobs/nope"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert said == f"queuectl: error: {answer.json()['error']}"
        assert set(answer.json()) == {"error"}
    assert client.get("/api/runs?after=nope").status_code == 404


def test_bad_query_values_are_400_with_one_line(client: TestClient) -> None:
    for path in ("/api/runs?state=sideways", "/api/runs?limit=-1", "/api/runs?limit=many"):
        answer = client.get(path)
        assert answer.status_code == 400, path
        assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]


def test_healthz_is_ok_while_the_store_answers_and_503_with_the_reason_after(tmp_path: Path) -> None:
    q = Queue(tmp_path)
    q("enqueue", "--command", "true")
    app = TestClient(create_app(str(q.db)), base_url=LOCAL)
    answer = app.get("/healthz")
    assert (answer.status_code, answer.text) == (200, "ok\n")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{q.db}{suffix}").unlink(missing_ok=True)
    Path(q.db).write_bytes(b"not a database, " * 64)
    answer = app.get("/healthz")
    assert answer.status_code == 503
    assert "not a database" in answer.text
    assert app.get("/api/status").status_code == 503


def test_a_token_is_needed_on_the_api_when_set(filled: Queue) -> None:
    app = TestClient(create_app(str(filled.db), token="s3cret"), base_url=LOCAL)
    assert app.get("/api/status").status_code == 401
    assert app.get("/api/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert app.get("/api/status", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert app.get("/healthz").status_code == 200  # a load balancer's check carries no token


def _same(client: TestClient, q: Queue, path: str, cli: list[str]) -> bool:
    return bool(_get(client, path) == q.json(*cli))


def _dashboard(q: Queue, *args: str) -> subprocess.Popen[str]:
    return q.spawn("dashboard", *args, stderr=subprocess.PIPE)


def test_dashboard_serves_the_api_over_http_and_stops_on_sigterm(filled: Queue) -> None:
    proc = _dashboard(filled, "--port", "0")
    assert proc.stderr is not None
    line = proc.stderr.readline()
    port = int(re.search(r"dashboard on http://127\.0\.0\.1:(\d+)/", line).group(1))  # type: ignore[union-attr]
    assert port != 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=10) as answer:
        assert json.loads(answer.read()) == filled.json("status")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert proc.communicate()[1] == ""  # no log of uvicorn's, no traceback


def test_dashboard_on_a_port_in_use_says_so_in_one_line(filled: Queue) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _dashboard(filled, "--port", str(port))
        _, said = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert said.splitlines() == [f"queuectl: error: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_dashboard_refuses_to_bind_off_loopback_without_a_token(filled: Queue) -> None:
    env = {k: v for k, v in filled.env.items() if k != "QUEUECTL_DASHBOARD_TOKEN"}
    done = subprocess.run(
        [*QUEUECTL, "dashboard", "--host", "0.0.0.0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "queuectl: error: refusing to serve on 0.0.0.0 without a token: "
        "give --token T or --generate-token, or set QUEUECTL_DASHBOARD_TOKEN (or use --host 127.0.0.1)"
    ]


def test_dashboard_without_the_web_extra_says_how_to_install_it(filled: Queue, tmp_path: Path) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "uvicorn.py").write_text("raise ImportError('no uvicorn here')\n")
    env = dict(filled.env, PYTHONPATH=os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([*QUEUECTL, "dashboard"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    said = "queuectl: error: the dashboard needs the web extra: pip install 'queuectl[web]'"
    assert done.stderr.splitlines() == [said]


def test_a_live_pool_and_its_running_run_are_answered_as_the_cli_says(tmp_path: Path) -> None:
    q = Queue(tmp_path)
    command, gate = q.gate()
    q("enqueue", "--id", "held", "--command", command)
    pool = q.start_pool()
    try:
        client = TestClient(create_app(str(q.db)), base_url=LOCAL)
        wait_for(lambda: q.state("held") == "running", what="the run running")
        pools = _get(client, "/api/pools")
        assert [(p["pid"], p["state"]) for p in pools] == [(pool.pid, "alive")]
        # a pool's heartbeat moves between the two looks now and then: look until both saw the same one
        # (a running run's lease renewals move it too)
        questions = [
            ("/api/pools", ["worker", "status"]),
            ("/api/status", ["status"]),
            ("/api/runs?state=running", ["list", "--state", "running"]),
            ("/api/runs/held", ["show", "held"]),
        ]
        for path, cli in questions:  # no env here: the answers are the CLI's whole
            wait_for(functools.partial(_same, client, q, path, cli), what=f"{path} as the CLI says")
        assert [r["id"] for r in _get(client, "/api/runs?state=running")] == ["held"]
    finally:
        gate.touch()
        pool.send_signal(signal.SIGTERM)
        pool.wait(timeout=30)


def test_the_api_answers_over_postgresql_as_the_cli_does(tmp_path: Path, pg_url: str) -> None:
    """Each request opens its own PostgreSQL session (and closes it): the answers are the CLI's."""
    q = Queue(tmp_path, db=pg_url)
    q("enqueue", "--id", "pg-ok", "--command", "echo ok")
    q("enqueue", "--id", "pg-bad", "--command", "exit 4", "--retries", "0")
    q.burst(dead=True)
    client = TestClient(create_app(pg_url), base_url=LOCAL)
    for path, cli in [
        ("/api/status", ["status"]),
        ("/api/runs", ["list"]),
        ("/api/runs/pg-bad", ["show", "pg-bad"]),
        ("/api/dlq", ["dlq", "list"]),
        ("/api/jobs", ["list", "--jobs"]),
        ("/api/pools", ["worker", "status"]),
    ]:
        assert _get(client, path) == q.json(*cli), path
    assert [r["id"] for r in _get(client, "/api/runs?after=pg-ok")] == ["pg-bad"]
    assert client.get("/api/runs/nope").status_code == 404
    assert client.get("/healthz").text == "ok\n"
