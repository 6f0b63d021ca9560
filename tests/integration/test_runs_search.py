"""The runs listing's filters: a job's runs on its index, newest first, and the bounded text search.

A real SQLite store filled through the services; /api/runs through Starlette's TestClient, compared
with the real `queuectl list --json` in a subprocess where the CLI can ask the same question.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from queuectl.model import NewRun
from queuectl.services import jobs, runs
from queuectl.store.contract import Store
from queuectl.store.factory import open_store
from queuectl.web import app as web
from queuectl.web.app import create_app
from tests.conftest import LOCAL, Queue

# Created in this order (oldest first); commands name what the text searches look for.
RUNS = [
    ("mail-1", "send-mail --to ops"),
    ("db-1", "pg_dump app > /backups/app.sql"),
    ("mail-2", "send-mail --to dev"),
    ("report-1", "make report"),
    ("db-2", "pg_dump app > /backups/app.sql"),
    ("mail-3", "send-mail --to ops"),
]


def one_off(run_id: str, command: str) -> NewRun:
    return NewRun(run_id, command, 5, 0, 2.0, 60.0, None)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queue]:
    """Runs of two declared jobs (triggered), between runs of no job, a second apart each."""
    q = Queue(tmp_path_factory.mktemp("search"))
    for name, command in [("mailer", "send-mail --digest"), ("dumper", "pg_dump app")]:
        q.write_job(name, f'command = "{command}"\ncron = "0 3 * * *"\ntimezone = "UTC"\n')
    q("apply", str(q.tmp / "jobs.d"))
    clock = [1_700_000_000.0]  # in the past: the runs are due (pending, not scheduled)
    store = open_store(str(q.db), clock=lambda: clock[0])
    try:
        for n, (run_id, command) in enumerate(RUNS):
            runs.add(store, [one_off(run_id, command)])
            clock[0] += 1
            jobs.trigger(store, "mailer" if n % 2 == 0 else "dumper")
            clock[0] += 1
    finally:
        store.close()
    yield q
    q.cleanup()


@pytest.fixture(scope="module")
def client(filled: Queue) -> TestClient:
    return TestClient(create_app(str(filled.db)), base_url=LOCAL)


def ids(client: TestClient, path: str) -> list[str]:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return [run["id"] for run in answer.json()]


def every(client: TestClient) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = client.get("/api/runs").json()
    return answer


def test_a_job_s_runs_are_the_cli_s_and_those_of_the_whole_listing(filled: Queue, client: TestClient) -> None:
    mine = [run["id"] for run in every(client) if run["job"] == "mailer"]
    assert len(mine) == 3
    assert ids(client, "/api/runs?job=mailer") == mine
    assert client.get("/api/runs?job=mailer").json() == filled.json("list", "--job", "mailer")
    assert ids(client, "/api/runs?job=mailer&order=newest") == mine[::-1]
    assert ids(client, f"/api/runs?job=mailer&after={mine[0]}&limit=1") == mine[1:2]
    assert ids(client, f"/api/runs?job=mailer&order=newest&after={mine[2]}") == mine[1::-1]
    assert filled("list", "--job", "nobody").stdout == "no runs of job nobody\n"
    tsv = filled("list", "--job", "dumper").stdout.splitlines()
    assert tsv[0].split()[:2] == ["ID", "STATE"] and len(tsv) == 4
    assert all(line.startswith("dumper.") for line in tsv[1:])


def test_newest_first_pages_with_the_cursor_through_every_run_once(client: TestClient) -> None:
    oldest_first = [run["id"] for run in every(client)]
    seen: list[str] = []
    after = ""
    while page := ids(client, f"/api/runs?order=newest&limit=5{after}"):
        seen += page
        after = f"&after={page[-1]}"
    assert seen == oldest_first[::-1] and len(seen) == 12


def test_text_finds_a_substring_of_the_command_or_the_id_in_the_listing_s_order(client: TestClient) -> None:
    by_command = [run["id"] for run in every(client) if "--to ops" in run["command"]]
    assert by_command == ["mail-1", "mail-3"]
    assert ids(client, "/api/runs?text=--to%20ops") == by_command
    assert ids(client, "/api/runs?text=--to%20ops&order=newest") == by_command[::-1]
    assert ids(client, "/api/runs?text=report-") == ["report-1"]  # in the id only
    dumps = [run["id"] for run in every(client) if "pg_dump" in run["command"]]
    assert len(dumps) == 5  # two by hand, three of the job dumper
    assert ids(client, "/api/runs?text=pg_dump&job=dumper") == [d for d in dumps if d.startswith("dumper.")]
    assert ids(client, "/api/runs?text=pg_dump&state=pending&limit=2") == dumps[:2]
    assert ids(client, "/api/runs?text=PG_DUMP") == []  # as typed
    answer = client.get("/api/runs?text=pg_dump")
    assert web.SEARCHED_HEADER not in answer.headers  # it looked at every run: nothing left to say


def test_a_search_looks_at_a_bounded_number_of_runs_and_says_where_to_go_on(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "SEARCH_SCAN", 4)
    newest = [run["id"] for run in every(client)][::-1]
    found: list[str] = []
    looked: list[str] = []
    after = ""
    while True:
        answer = client.get(f"/api/runs?text=send-mail&order=newest{after}")
        assert answer.status_code == 200
        found += [run["id"] for run in answer.json()]
        if web.SEARCHED_HEADER not in answer.headers:
            break
        assert answer.headers[web.SEARCHED_HEADER] == "4"
        looked.append(answer.headers[web.RESUME_HEADER])
        after = f"&after={answer.headers[web.RESUME_HEADER]}"
    assert [cursor.split("@")[0] for cursor in looked] == [newest[3], newest[7]]  # four a request, the last named
    assert found == [run_id for run_id in newest if run_id.startswith(("mail-", "mailer."))]


def test_search_as_a_service_a_full_page_goes_on_after_its_last_run(filled: Queue) -> None:
    store: Store = open_store(str(filled.db))
    try:
        first = runs.search(store, "send-mail", limit=2, newest_first=True)
        last = first.runs[-1]
        assert not first.stopped_early and first.resume_after == runs.cursor_of(last.created_at, last.id)
        rest = runs.search(store, "send-mail", newest_first=True, after=first.resume_after)
        assert len(first.runs) + len(rest.runs) == 6 and rest.resume_after is None
        short = runs.search(store, "send-mail", scan=3, newest_first=True)
        assert (short.stopped_early, short.searched) == (True, 3)
    finally:
        store.close()


def test_bad_filters_are_400_with_one_line(client: TestClient) -> None:
    for path in ("/api/runs?order=sideways", "/api/runs?text=", "/api/runs?text=x&after=nope"):
        answer = client.get(path)
        assert answer.status_code in (400, 404), path
        assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]
    assert (
        client.get("/api/runs?order=sideways").json()["error"] == "invalid order 'sideways': expected oldest or newest"
    )
