"""The dashboard's HTML pages and their live streams, over a real store with runs a real pool ran.

Starlette's TestClient in this process; the real `queuectl` in subprocesses made the runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import urllib.request
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from queuectl.services import runs as runs_service
from queuectl.web import live
from queuectl.web.app import create_app
from tests.browser.conftest import start_dashboard, stop_dashboard
from tests.conftest import LOCAL, Queue, wait_for

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
DAILY = "At 02:00, every day (UTC)"  # the schedule in words, as `show` says it


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queue]:
    """Completed, dead and waiting runs, a declared cron job with a run and a broken manifest: read only below."""
    q = Queue(tmp_path_factory.mktemp("pages"))
    for n in range(3):
        q("enqueue", "--id", f"ok-{n}", "--command", f"echo ok {n}")
    q("enqueue", "--id", "bad", "--command", f"echo '{EVIL}'; exit 3", "--retries", "0")
    good = f'command = "echo nightly"\ncron = "0 2 * * *"\ntimezone = "UTC"\ndescription = "{EVIL}"\n'
    jobs = q.write_job("nightly", good + '[env]\nPGPASSWORD = "hunter2-secret"\n')
    q("apply", str(jobs))
    q("trigger", "nightly")
    q.burst(dead=True)
    q.write_job("nightly", good + '"<script>x</script>" = 1\n')  # a broken manifest: its error names the key
    q("apply", str(jobs), check=False)
    q("enqueue", "--id", "later", "--command", "echo later")  # pending: no pool is left to run it
    yield q
    q.cleanup()


@pytest.fixture(scope="module")
def client(filled: Queue) -> TestClient:
    return TestClient(create_app(str(filled.db)), base_url=LOCAL)


def page(client: TestClient, path: str, status: int = 200) -> str:
    answer = client.get(path)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    return answer.text


def run_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-run-id="([^"]+)"', html)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ['data-count="completed"><span class="figure">4</span>', 'data-count="dead"><span class="figure">1<']),
        ("/", ['data-figure="queue-depth"><span class="figure">1</span>', "<h1>Overview</h1>"]),
        ("/", ['<section id="charts"', "last hour <span", '"chart-totals">4 completed, 1 failed</span>']),
        ("/jobs", ['data-job="nightly"', DAILY, "<td>UTC</td>", "nightly.toml", 'class="error manifest-error"']),
        ("/jobs/nightly", ['id="job-name" data-job="nightly"', DAILY, "<code>PGPASSWORD</code>", "Recent runs"]),
        ("/runs", ['<tr data-run-id="later"', '<tr data-run-id="bad"', 'data-state="dead"', 'href="/runs/ok-0"']),
        ("/runs?state=completed", ['<tr data-run-id="ok-1"', 'data-state="completed"']),
        ("/runs?job=nightly", ['<td><a href="/jobs/nightly">nightly</a></td>']),
        ("/runs/ok-1", ['id="run-state" data-state="completed"', "ok 1\n</pre>", 'data-attempt="1"', 'id="download"']),
        ("/runs/bad", ['data-state="dead"', 'data-outcome="failed"', "exit 3", 'data-action="/api/runs/bad/retry"']),
        ("/dlq", ['<tr data-run-id="bad"', 'value="bad"', 'id="retry-all"', 'id="delete-selected"']),
        ("/pools", ['id="no-pools"']),
    ],
)
def test_each_page_shows_what_the_store_holds(client: TestClient, path: str, expected: list[str]) -> None:
    html = page(client, path)
    for text in expected:
        assert text in html, text
    assert '<meta name="csrf-token"' in html and 'href="/static/dashboard.css"' in html
    assert "script-src 'self';" in client.get(path).headers["content-security-policy"]  # no inline script runs
    assert "hunter2-secret" not in html  # env values are never shown


def test_filters_keep_only_the_runs_asked_for(client: TestClient) -> None:
    completed = run_ids(page(client, "/runs?state=completed"))
    assert set(completed) >= {"ok-0", "ok-1", "ok-2"} and "bad" not in completed and "later" not in completed
    assert run_ids(page(client, "/runs?state=dead")) == ["bad"]
    mine = run_ids(page(client, "/runs?job=nightly"))
    assert len(mine) == 1 and mine[0] not in ("ok-0", "bad", "later")
    assert run_ids(page(client, "/dlq?job=nightly")) == []
    assert "Bad request" in page(client, "/runs?state=sideways", 400)
    assert run_ids(page(client, "/runs?q=ok+1")) == ["ok-1"]  # a text in the command
    assert run_ids(page(client, "/runs?q=late")) == ["later"]  # or in the id
    assert run_ids(page(client, "/runs?q=ok&state=pending")) == []
    assert 'id="searched"' not in page(client, "/runs?q=ok")  # a small store is searched whole


def test_a_search_that_stops_early_says_so_and_goes_on(q: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    q("enqueue", "--file", "-", input="".join(f'{{"id": "r{n:03d}", "command": "echo {n}"}}\n' for n in range(30)))
    monkeypatch.setattr(runs_service, "SEARCH_SCAN", 10)  # a million runs' worth, in small
    web = TestClient(create_app(str(q.db)), base_url=LOCAL)
    html = page(web, "/runs?q=echo+2")
    assert run_ids(html) == [f"r0{n}" for n in range(29, 19, -1)] and 'id="searched"' not in html  # a full page
    html = page(web, "/runs?q=echo+1")
    assert run_ids(html) == [] and 'data-searched="10"' in html  # the newest ten hold no "echo 1"
    more = re.search(r'href="\?([^"]+)" id="search-on"', html)
    assert more, html
    following = page(web, "/runs?" + more.group(1).replace("&amp;", "&"))
    assert run_ids(following) == ["r019", "r018", "r017", "r016", "r015", "r014", "r013", "r012", "r011", "r010"]


def test_a_page_of_one_state_reads_a_bounded_part_of_the_store(q: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """One dead run, the oldest of 30: the DLQ page looks at 10 runs at a time and says where to go on."""
    q("enqueue", "--id", "r000", "--command", "exit 3", "--retries", "0")
    q.burst(dead=True)
    q("enqueue", "--file", "-", input="".join(f'{{"id": "r{n:03d}", "command": "true"}}\n' for n in range(1, 30)))
    monkeypatch.setattr(runs_service, "SEARCH_SCAN", 10)
    web = TestClient(create_app(str(q.db)), base_url=LOCAL)
    html = page(web, "/dlq")
    assert run_ids(html) == [] and 'data-searched="10"' in html
    while (more := re.search(r'href="\?([^"]+)" id="search-on"', html)) is not None:
        html = page(web, "/dlq?" + more.group(1).replace("&amp;", "&"))
        if run_ids(html):
            break
    assert run_ids(html) == ["r000"]
    assert run_ids(page(web, "/runs?state=completed")) == []  # none completed: known from the counts, no walk
    assert 'id="searched"' not in page(web, "/runs?state=completed")


def test_a_cron_job_page_draws_its_expected_fires_against_its_runs(filled: Queue, client: TestClient) -> None:
    html = page(client, "/jobs/nightly")
    assert '<section id="timeline">' in html and 'data-job="nightly"' in html
    (triggered,) = run_ids(page(client, "/runs?job=nightly"))  # at no expected fire (02:00): its own mark
    assert f'<a href="/runs/{triggered}"><rect class="fire fire-on_time"' in html
    assert '<section id="timeline">' not in page(client, "/jobs")  # the timeline is the job page's


def test_everything_from_jobs_is_escaped(client: TestClient) -> None:
    """A command, a job's description, a manifest error and the output holding <script> show it as text."""
    for path in ("/runs/bad", "/runs", "/dlq", "/jobs", "/jobs/nightly"):
        html = page(client, path)
        assert "<script>" not in html, path
    run = page(client, "/runs/bad")
    assert f"echo &#39;{ESCAPED}&#39;; exit 3" in run  # the command
    assert f'data-stream="/runs/bad/output/stream">{ESCAPED}\n</pre>' in run  # the output
    jobs = page(client, "/jobs")
    assert f'<div class="muted description">{ESCAPED}</div>' in jobs  # the description
    assert "&lt;script&gt;x&lt;/script&gt;" in jobs  # the manifest error names the bad key
    assert "&lt;script&gt;x&lt;/script&gt;" in page(client, "/")  # the overview lists manifest errors too


def test_a_missing_run_or_job_is_the_404_page(client: TestClient) -> None:
    assert "no run with id &#39;nope&#39;" in page(client, "/runs/nope", 404)
    assert "no run or job named &#39;nope&#39;" in page(client, "/jobs/nope", 404)
    assert client.get("/runs/nope/output").status_code == 404
    assert client.get("/runs/nope/output/stream").status_code == 404


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "9" * 5000, "-1", "1e3"])
def test_a_bad_offset_attempt_or_limit_is_a_400_never_a_500(client: TestClient, value: str) -> None:
    """'²' and '٣' pass str.isdigit() and 5,000 digits are past int()'s limit: each a 400, not a crash."""
    stream = "/runs/bad/output/stream"
    for path, query in ((stream, "offset"), (stream, "attempt"), ("/api/runs", "limit")):
        answer = client.get(path, params={query: value})
        assert answer.status_code == 400, (path, query, answer.text)
    answer = client.get(stream, headers=[(b"last-event-id", b"9" * 5000)])
    assert answer.status_code == 400, answer.text
    zeroth = client.get(stream, params={"attempt": "0"})  # attempts count from 1
    assert zeroth.status_code == 400 and "counted from 1" in zeroth.text


def test_a_fragment_is_the_main_block_alone(client: TestClient) -> None:
    whole, part = page(client, "/runs/ok-0"), page(client, "/runs/ok-0?fragment=1")
    assert part.strip() and part.strip() in whole
    assert "<html" not in part and "<nav" not in part


def test_download_serves_the_whole_output_as_an_attachment(client: TestClient) -> None:
    answer = client.get("/runs/ok-2/output")
    assert answer.status_code == 200 and answer.text == "ok 2\n"
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="ok-2.1.log"'


def test_a_log_path_that_is_no_pools_log_is_never_served(q: Queue, tmp_path: Path) -> None:
    """A store's writer (a PostgreSQL user, say) who points an attempt's log at a file of the dashboard's host
    gets nothing of that file: the page, the stream and the download show the store's tail instead."""
    q("enqueue", "--id", "done", "--command", "echo from the run")
    q.burst()
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY\n")
    with sqlite3.connect(q.db) as db:
        db.execute("UPDATE attempts SET log_path = ? WHERE run_id = 'done'", (str(secret),))
    web = TestClient(create_app(str(q.db)), base_url=LOCAL)
    download = web.get("/runs/done/output")
    assert download.status_code == 200 and download.text == "from the run\n"
    assert "PRIVATE KEY" not in page(web, "/runs/done")
    with web.stream("GET", "/runs/done/output/stream") as stream:
        assert "PRIVATE KEY" not in "".join(stream.iter_text())
    assert "PRIVATE KEY" not in q("logs", "done").stdout  # nor the CLI: `logs` takes its log the same way


def test_the_download_of_a_log_growing_while_it_is_sent_is_never_cut_off(q: Queue) -> None:
    """A real server: FileResponse declared the log's size, then sent what it held at its end (more, or less once
    the log was cut at its cap), and the server aborted the download midway."""
    _, path = q.gate()
    chatty = f"while [ ! -e {path} ]; do yes 0123456789abcdef | head -c 1000000; done"
    q("enqueue", "--id", "chatty", "--command", chatty)
    pool = q.start_pool("--count", "1")
    served = start_dashboard(q)
    try:
        wait_for(lambda: q.json("show", "chatty")["state"] == "running", what="the run to start")
        for _ in range(5):
            with urllib.request.urlopen(f"{served.url}/runs/chatty/output", timeout=30) as answer:
                body = answer.read()  # IncompleteRead when the server aborts
            assert body.startswith(b"0123456789abcdef\n")
    finally:
        path.touch()
        stop_dashboard(served)
        pool.terminate()


def test_read_only_pages_show_no_action(filled: Queue) -> None:
    reading = TestClient(create_app(str(filled.db), read_only=True), base_url=LOCAL)
    for path in ("/runs/bad", "/runs/later", "/jobs/nightly", "/dlq", "/runs"):
        html = page(reading, path)
        assert "data-action" not in html and "data-selection" not in html and "enqueue-form" not in html, path
        assert 'id="read-only"' in html
    writing = TestClient(create_app(str(filled.db)), base_url=LOCAL)
    assert 'data-action="/api/runs/later/cancel"' in page(writing, "/runs/later")
    assert 'data-action="/api/jobs/nightly/trigger"' in page(writing, "/jobs/nightly")
    assert 'id="enqueue-form" data-post="/api/runs"' in page(writing, "/runs")


def test_runs_page_newest_first_by_keyset_pages(q: Queue) -> None:
    lines = "".join(json.dumps({"id": f"r{n:03d}", "command": "true"}) + "\n" for n in range(120))
    (q.tmp / "runs.jsonl").write_text(lines)
    q("enqueue", "--file", str(q.tmp / "runs.jsonl"))
    client = TestClient(create_app(str(q.db)), base_url=LOCAL)
    seen: list[str] = []
    path = "/runs"
    while True:
        html = page(client, path)
        ids = run_ids(html)
        assert 0 < len(ids) <= 50
        seen += ids
        found = re.search(r'id="page-next" data-after="([^"]+)"', html)
        if not found:
            break
        assert f'href="?state=&amp;job=&amp;q=&amp;after={quote(found.group(1))}"' in html
        path = f"/runs?after={found.group(1)}"
    assert seen == [f"r{n:03d}" for n in reversed(range(120))]  # newest first, each once
    assert "no run named &#39;gone&#39;" in page(client, "/runs?after=gone", 404)


def read_events(lines: Iterator[str], until: str) -> list[dict[str, Any]]:
    """Server-sent events from `lines` until one of event type `until` (that one included)."""
    events: list[dict[str, Any]] = []
    event: dict[str, Any] = {}
    for line in lines:
        if not line:
            if "event" in event:
                events.append(event)
                if event["event"] == until:
                    return events
            event = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            event[key] = json.loads(value) if key == "data" else value
    raise AssertionError(f"the stream ended before a {until!r} event: {events}")


def _truncating_checkpoint(db: Path) -> int:
    """1 while some connection reads the store (a checkpoint that truncates the WAL cannot pass it), else 0."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        return int(con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])


def test_output_stream_follows_a_running_attempt_and_resumes_from_last_event_id(q: Queue) -> None:
    gate_cmd, gate = q.gate()
    q("enqueue", "--id", "live", "--command", f"echo 'first <b>'; {gate_cmd}; echo second; echo third")
    pool = q.start_pool("--count", "1")
    wait_for(lambda: q.state("live") == "running", what="the run started")
    client = TestClient(create_app(str(q.db)), base_url=LOCAL)
    html = page(client, "/runs/live")
    assert 'data-state="running"' in html and 'data-follow="true"' in html
    assert re.search(r'data-busy="1"', page(client, "/"))  # the overview: one live pool, one busy slot
    with client.stream("GET", "/runs/live/output/stream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = read_events(stream.iter_lines(), until="output")
        # the open stream holds no read of the store: a checkpoint that waits for every reader gets through
        wait_for(lambda: _truncating_checkpoint(q.db) == 0, timeout=5, what="a checkpoint past the open stream")
    assert first[-1]["data"] == "first <b>\n" and first[-1]["id"] == str(len("first <b>\n"))
    gate.touch()
    wait_for(lambda: q.state("live") == "completed", what="the run finished")
    headers = {"Last-Event-ID": first[-1]["id"]}
    with client.stream("GET", "/runs/live/output/stream", headers=headers) as stream:
        rest = read_events(stream.iter_lines(), until="end")
    text = "".join(e["data"] for e in rest if e["event"] == "output")
    assert text == "second\nthird\n"  # only what followed the offset
    assert rest[-2]["id"] == str(len("first <b>\nsecond\nthird\n"))
    assert rest[-1]["data"] == {"state": "completed", "attempt": 1, "final": True}
    os.kill(pool.pid, signal.SIGKILL)  # a pool that died without unregistering
    pool.wait()
    pools = page(client, "/pools")
    assert 'data-state="dead"' in pools and f"<dd>{pool.pid}</dd>" in pools


def test_events_says_when_the_store_changes_and_streams_are_capped(q: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    q("enqueue", "--id", "one", "--command", "true")
    monkeypatch.setattr(live, "MAX_STREAMS", 1)
    monkeypatch.setattr(live, "CHANGE_POLL", 0.2)
    client = TestClient(create_app(str(q.db)), base_url=LOCAL)
    with client.stream("GET", "/events") as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        busy = client.get("/events")
        assert busy.status_code == 503 and "too many live streams" in busy.text
        q("enqueue", "--id", "two", "--command", "true")
        changed = read_events(lines, until="change")
        assert changed[-1]["event"] == "change"
    with client.stream("GET", "/events") as again:  # the closed stream gave its slot back
        assert again.status_code == 200


def test_a_run_page_of_a_pending_run_follows_its_first_attempt(filled: Queue, client: TestClient) -> None:
    html = page(client, "/runs/later")
    assert 'data-state="pending"' in html and 'data-follow="true"' in html and 'data-attempt="1"' in html
    assert Path(str(filled.db)).exists()


def test_pages_output_and_live_changes_on_each_engine(each_engine: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    q = each_engine
    for name in ("a", "b", "c"):
        q("enqueue", "--id", name, "--command", f"echo out-{name}")
    q.burst()
    monkeypatch.setattr(live, "CHANGE_POLL", 0.2)
    client = TestClient(create_app(str(q.db)), base_url=LOCAL)
    assert run_ids(page(client, "/runs")) == ["c", "b", "a"]
    assert run_ids(page(client, "/runs?after=c")) == ["b", "a"]
    assert "out-b\n</pre>" in page(client, "/runs/b")
    with client.stream("GET", "/runs/b/output/stream") as stream:
        events = read_events(stream.iter_lines(), until="end")
    assert [e["data"] for e in events if e["event"] == "output"] == ["out-b\n"]
    with client.stream("GET", "/events") as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        q("enqueue", "--id", "d", "--command", "true")
        assert read_events(lines, until="change")[-1]["event"] == "change"


def test_close_streams_ends_every_open_stream_at_its_next_tick(
    filled: Queue, q: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a stopping server must call first: it waits for open requests, and a live page's streams never end."""
    monkeypatch.setattr(live, "_apps", weakref.WeakSet())  # this process's other apps keep theirs open
    monkeypatch.setattr(live, "MAX_STREAMS", 2)
    client = TestClient(create_app(str(filled.db)), base_url=LOCAL)
    with client.stream("GET", "/events") as events, client.stream("GET", "/runs/later/output/stream") as output:
        changes, printed = events.iter_lines(), output.iter_lines()
        assert next(changes).startswith("retry:") and next(printed).startswith("retry:")
        live.close_streams()
        assert [line for line in changes if line] == []  # the stream ended, with no event more
        assert [line for line in printed if line] == []
    assert client.get("/events").status_code == 200  # both gave their slots back (it ends at once: closing)
    q.burst()  # a store of its own to change: the module's is read by the other tests
    again = TestClient(create_app(str(q.db)), base_url=LOCAL)  # a server started again in this process
    with again.stream("GET", "/events") as events:
        lines = events.iter_lines()
        assert next(lines).startswith("retry:")
        q("enqueue", "--command", "true")
        assert read_events(lines, until="change")[-1]["event"] == "change"  # it streams afresh
