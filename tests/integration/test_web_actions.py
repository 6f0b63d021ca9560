"""The dashboard's actions: each answer is what the CLI's `--json` prints for the same verb.

A template store is filled once (dead, completed and waiting runs, a cron job and a job whose
run died); each test copies it twice: the web acts on one copy, the real `queuectl` (in a
subprocess) on the other, and the answers, exit codes and the runs' states after must agree.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from queuectl.web.app import create_app
from tests.conftest import LOCAL, Queue

BASE = LOCAL
TOKEN = "actions-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queue]:
    q = Queue(tmp_path_factory.mktemp("template"))
    q("enqueue", "--id", "ok", "--command", "echo ok")
    for n in (1, 2):
        q("enqueue", "--id", f"dead-{n}", "--command", "exit 3", "--retries", "0")
    q.write_job("nightly", 'command = "echo nightly"\ncron = "0 2 * * *"\ntimezone = "UTC"\n')
    q("apply", str(q.write_job("flaky", 'command = "exit 1"\nretries = 0\n')))
    q.burst(dead=True)
    q("enqueue", "--id", "waiting", "--command", "echo later", "--delay", "1h")
    yield q
    q.cleanup()


def _copy(template: Queue, tmp: Path) -> Queue:
    """A queue over a copy of the template's store (SQLite's backup: the WAL's pages too)."""
    tmp.mkdir()
    copy = Queue(tmp)
    with sqlite3.connect(template.db) as source, sqlite3.connect(copy.db) as target:
        source.backup(target)
    return copy


@pytest.fixture
def twins(template: Queue, tmp_path: Path) -> tuple[Queue, Queue]:
    """Two equal stores: (the web's, the CLI's)."""
    return _copy(template, tmp_path / "web"), _copy(template, tmp_path / "cli")


def _web(q: Queue, **options: Any) -> TestClient:
    return TestClient(create_app(str(q.db), token=TOKEN, **options), base_url=BASE)


def _states(q: Queue) -> tuple[list[tuple[str, str]], list[tuple[str, bool]]]:
    """Each run's state, and each job's suspension."""
    return [(r["id"], r["state"]) for r in q.json("list")], [
        (j["job"], j["suspended"]) for j in q.json("list", "--jobs")
    ]


def _dead_of(q: Queue, job: str) -> list[str]:
    return [r["id"] for r in q.json("dlq", "list") if r["job"] == job]


@pytest.mark.parametrize(
    ("path", "body", "cli", "status"),
    [
        (
            "/api/runs",
            {"id": "new", "command": "echo new", "priority": 8},
            ["enqueue", '{"id": "new", "command": "echo new", "priority": 8}'],
            201,
        ),
        ("/api/runs/dead-1/retry", None, ["dlq", "retry", "dead-1"], 200),
        ("/api/runs/dead-1/retry", {"reset_attempts": True}, ["dlq", "retry", "dead-1", "--reset-attempts"], 200),
        ("/api/runs/waiting/cancel", None, ["cancel", "waiting"], 200),
        ("/api/runs/ok/cancel", None, ["cancel", "ok"], 200),  # finished already: left alone, and said so
        ("/api/jobs/nightly/suspend", None, ["suspend", "nightly"], 200),
        ("/api/jobs/nightly/resume", {}, ["resume", "nightly"], 200),
        ("/api/dlq/retry", {"ids": ["dead-1", "dead-2"]}, ["dlq", "retry", "dead-1", "dead-2"], 200),
        ("/api/dlq/retry", {"all": True}, ["dlq", "retry", "--all"], 200),
        ("/api/dlq/retry", {"all": True, "job": "flaky"}, ["dlq", "retry", "--all", "--job", "flaky"], 200),
        ("/api/dlq/delete", {"ids": ["dead-2"]}, ["dlq", "clear", "dead-2"], 200),
        ("/api/dlq/delete", {"all": True}, ["dlq", "clear", "-y"], 200),
        ("/api/dlq/delete", {"all": True, "job": "flaky"}, ["dlq", "clear", "--job", "flaky", "-y"], 200),
    ],
)
def test_each_action_answers_as_the_cli_json_and_does_the_same(
    twins: tuple[Queue, Queue], path: str, body: Any, cli: list[str], status: int
) -> None:
    web_side, cli_side = twins
    before = _states(web_side)
    answer = _web(web_side).post(path, json=body, headers=BEARER)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == cli_side.json(*cli)
    assert _states(web_side) == _states(cli_side)
    assert _states(web_side) != before or path.endswith(("/ok/cancel", "/resume"))  # it did something


def test_suspend_cancels_the_waiting_run_of_a_job_and_says_so(twins: tuple[Queue, Queue]) -> None:
    web_side, cli_side = twins
    web = _web(web_side)
    web_run, cli_run = (
        web_side.json("trigger", "nightly")["triggered"],
        cli_side.json("trigger", "nightly")["triggered"],
    )
    answer = web.post("/api/jobs/nightly/suspend", headers=BEARER).json()
    said = cli_side.json("suspend", "nightly")
    assert (answer["cancelled"], said["cancelled"]) == ([web_run], [cli_run])  # run ids are drawn at random
    assert {**answer, "cancelled": None} == {**said, "cancelled": None} and answer["already"] is False
    again = web.post("/api/jobs/nightly/suspend", headers=BEARER)
    assert again.json() == cli_side.json("suspend", "nightly") and again.json()["already"] is True
    assert web_side.state(web_run) == "cancelled"


def test_trigger_adds_a_run_of_the_job(twins: tuple[Queue, Queue]) -> None:
    web_side, cli_side = twins
    answer = _web(web_side).post("/api/jobs/nightly/trigger", headers=BEARER)
    said = cli_side.json("trigger", "nightly")
    assert answer.status_code == 200 and set(answer.json()) == set(said) == {"triggered"}
    run = web_side.run(answer.json()["triggered"])  # run ids are drawn at random: each names its job's new run
    assert (run["job"], run["state"]) == ("nightly", "pending")
    assert cli_side.run(said["triggered"])["job"] == "nightly"


def test_dlq_actions_of_one_job_leave_the_other_dead_runs(twins: tuple[Queue, Queue]) -> None:
    web_side, _ = twins
    web = _web(web_side)
    assert _dead_of(web_side, "flaky") != []
    assert web.post("/api/dlq/retry", json={"all": True, "job": "flaky"}, headers=BEARER).status_code == 200
    assert _dead_of(web_side, "flaky") == []
    assert sorted(r["id"] for r in web_side.json("dlq", "list")) == ["dead-1", "dead-2"]
    assert web.post("/api/dlq/delete", json={"ids": ["dead-1"]}, headers=BEARER).json() == {"deleted": 1}
    assert [r["id"] for r in web_side.json("dlq", "list")] == ["dead-2"]


@pytest.mark.parametrize(
    ("path", "body", "cli", "status"),
    [
        ("/api/runs/ok/retry", None, ["dlq", "retry", "ok"], 409),  # not dead
        ("/api/dlq/retry", {"ids": ["dead-1", "ok"]}, ["dlq", "retry", "dead-1", "ok"], 409),
        ("/api/dlq/delete", {"ids": ["waiting"]}, ["dlq", "clear", "waiting"], 409),
        ("/api/runs/nope/retry", None, ["dlq", "retry", "nope"], 404),
        ("/api/runs/nope/cancel", None, ["cancel", "nope"], 404),
        ("/api/runs/nightly/cancel", None, ["cancel", "nightly"], 404),  # a job's name: the hint of the CLI
        ("/api/jobs/nope/trigger", None, ["trigger", "nope"], 404),
        ("/api/jobs/nope/suspend", None, ["suspend", "nope"], 404),
        ("/api/jobs/nope/resume", None, ["resume", "nope"], 404),
        ("/api/runs", {"id": "ok", "command": "true"}, ["enqueue", '{"id": "ok", "command": "true"}'], 409),
        ("/api/runs", {"command": "true", "bogus": 1}, ["enqueue", '{"command": "true", "bogus": 1}'], 400),
        ("/api/runs", {"priority": 3}, ["enqueue", '{"priority": 3}'], 400),
    ],
)
def test_refusals_say_what_the_cli_says(
    twins: tuple[Queue, Queue], path: str, body: Any, cli: list[str], status: int
) -> None:
    web_side, cli_side = twins
    before = _states(web_side)
    answer = _web(web_side).post(path, json=body, headers=BEARER)
    said = cli_side(*cli, check=False)
    assert answer.status_code == status, answer.text
    assert said.returncode == (2 if status == 400 else 1)
    assert said.stderr == f"queuectl: error: {answer.json()['error']}\n"
    assert list(answer.json()) == ["error"]
    assert _states(web_side) == before == _states(cli_side)  # all or nothing: no part of it was done


@pytest.mark.parametrize(
    ("path", "content", "said"),
    [
        ("/api/runs", b"not json", "malformed JSON"),
        ("/api/runs", b'\xff\xfe{"command": "echo hi"}', "malformed JSON"),
        ("/api/runs", b'["echo hi"]', "expected a JSON object"),
        ("/api/runs", b"", "missing command"),
        ("/api/runs/dead-1/retry", b'{"reset": true}', "unknown key 'reset'"),
        ("/api/runs/dead-1/retry", b'{"reset_attempts": "yes"}', "invalid reset_attempts"),
        ("/api/runs/waiting/cancel", b'{"force": true}', "unknown key 'force'"),
        ("/api/jobs/nightly/trigger", b"42", "expected a JSON object"),
        ("/api/dlq/retry", b"{}", "give the ids of dead runs"),
        ("/api/dlq/retry", b'{"ids": ["dead-1"], "all": true}', "give the ids of dead runs"),
        ("/api/dlq/delete", b'{"ids": []}', "invalid ids"),
        ("/api/dlq/delete", b'{"ids": "dead-1"}', "invalid ids"),
        ("/api/dlq/delete", b'{"ids": ["dead-1"], "job": "flaky"}', "invalid job"),
        ("/api/dlq/delete", b'{"all": 1}', "invalid all"),
    ],
)
def test_bad_bodies_are_400_with_one_line(twins: tuple[Queue, Queue], path: str, content: bytes, said: str) -> None:
    web_side, _ = twins
    before = _states(web_side)
    answer = _web(web_side).post(path, content=content, headers={**BEARER, "Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]
    assert said in answer.json()["error"]
    assert _states(web_side) == before


def test_an_error_about_a_huge_value_does_not_echo_it(twins: tuple[Queue, Queue]) -> None:
    web_side, _ = twins
    for body in ({"ids": list(range(100_000))}, {"all": "x" * 100_000}, {"all": True, "job": ["x"] * 100_000}):
        answer = _web(web_side).post("/api/dlq/retry", json=body, headers=BEARER)
        assert answer.status_code == 400, answer.text
        assert len(answer.json()["error"]) < 200, answer.json()["error"][:300]
    for body in ({"command": "true", "priority": "x" * 100_000}, {"command": "true", "x" * 100_000: 1}):
        answer = _web(web_side).post("/api/runs", json=body, headers=BEARER)
        assert answer.status_code == 400 and len(answer.json()["error"]) <= 300, answer.json()["error"][:400]


def _post_streamed(
    app: Any, path: str, chunks: int, chunk: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, int]:
    """POST a body of `chunks` x `chunk` as the server hands it over (no Content-Length): (status, chunks read)."""
    read = 0
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read >= chunks:
            return {"type": "http.disconnect"}
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": read < chunks}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    # In a thread of its own: Playwright's sync API (tests/browser) keeps an event loop running in the main
    # thread of the test process it ran in, where asyncio.run() refuses to start another.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    return status[0], read


@pytest.mark.parametrize("path", ["/api/runs", "/login"])
def test_a_huge_body_is_refused_without_reading_it_all(twins: tuple[Queue, Queue], path: str) -> None:
    """A 32 MiB body (64 KiB at a time, no Content-Length) is refused (413) once past the limit, not read whole."""
    web_side, _ = twins
    before = _states(web_side)
    app = create_app(str(web_side.db), token=TOKEN)
    bearer = [(b"authorization", f"Bearer {TOKEN}".encode())]
    status, read = _post_streamed(app, path, 512, b" " * 65536, bearer)
    assert status == 413
    assert read <= 16 * 1024 * 1024 // 65536 + 1  # the 16 MiB limit (the login form's is 64 KiB), and no more
    huge = [*bearer, (b"content-length", str(2**40).encode())]
    assert _post_streamed(app, path, 1, b"{}", huge)[0] == 413  # a Content-Length past the limit: not read at all
    assert _states(web_side) == before


def test_actions_answer_over_postgresql_as_the_cli_does(tmp_path: Path, pg_url: str) -> None:
    """Each action opens its own PostgreSQL session: the same verb, on two runs, answers alike."""
    q = Queue(tmp_path, db=pg_url)
    for n in (1, 2, 3):
        q("enqueue", "--id", f"pg-dead-{n}", "--command", "exit 4", "--retries", "0")
    q.burst(dead=True)
    web = TestClient(create_app(pg_url, token=TOKEN), base_url=BASE)
    answer = web.post("/api/dlq/retry", json={"ids": ["pg-dead-1"]}, headers=BEARER)
    assert (answer.json(), q.json("dlq", "retry", "pg-dead-2")) == (
        {"retried": ["pg-dead-1"]},
        {"retried": ["pg-dead-2"]},
    )
    assert web.post("/api/dlq/delete", json={"all": True}, headers=BEARER).json() == {"deleted": 1}
    assert q.json("dlq", "list") == []
    answer = web.post("/api/runs", json={"id": "pg-new", "command": "true", "delay": "1h"}, headers=BEARER)
    assert (answer.status_code, answer.json()) == (201, {"enqueued": ["pg-new"]})
    q("enqueue", "--id", "pg-cli", "--command", "true", "--delay", "1h")
    answer = web.post("/api/runs/pg-new/cancel", headers=BEARER)
    assert answer.json() == {"cancelled": ["pg-new"], "stopping": [], "finished": {}}
    assert q.json("cancel", "pg-cli") == {"cancelled": ["pg-cli"], "stopping": [], "finished": {}}
    assert q.state("pg-new") == "cancelled"
