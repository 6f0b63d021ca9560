"""The dead-letter queue as users of other tools use it: each run's last error, retries with new settings."""

from __future__ import annotations

import json

from tests.conftest import Queue
from tests.e2e.test_tables import plain, rows_of, terminal

LONG_ERROR = "echo " + " ".join(f"cause{n}" for n in range(30)) + " >&2; exit 3"


def test_dlq_list_shows_each_run_s_last_error_beside_its_id(q: Queue) -> None:
    q("enqueue", json.dumps({"id": "boom", "command": "echo first >&2; echo disk full >&2; exit 3", "max_retries": 0}))
    q("enqueue", json.dumps({"id": "slow", "command": "sleep 30", "timeout": 0.5, "max_retries": 0}))
    q("enqueue", json.dumps({"id": "long-winded", "command": LONG_ERROR, "max_retries": 0}))
    q.burst(dead=True)
    piped = q("dlq", "list").stdout.splitlines()
    assert piped[0].split() == ["ID", "TRIES", "EXIT", "FINISHED", "ERROR"]
    rows = {line.split()[0]: line for line in piped[1:]}
    assert rows["boom"].endswith("exit 3: disk full")
    assert "timed out after" in rows["slow"]
    assert rows["long-winded"].endswith("cause28 cause29")  # into a pipe nothing is cut
    code, shown = terminal(q, "dlq", "list", columns=70)
    assert code == 0
    row = rows_of(shown, "long-winded")
    assert len(row) == 2 and row[-1].rstrip().endswith("…")  # the error gives way: two lines, then cut
    assert all(len(line.rstrip()) <= 70 for line in plain(shown).splitlines())
    assert "exit 3: disk full" in rows_of(shown, "boom")[0]


def test_dlq_retry_overrides_timeout_and_retries_for_the_retried_run(q: Queue) -> None:
    q(
        "enqueue",
        json.dumps({"id": "slow", "command": "sleep 1; exit 1", "timeout": 0.3, "max_retries": 0, "backoff_base": 0}),
    )
    q.burst(dead=True)
    assert q.run("slow")["history"][0]["outcome"] == "timeout"
    said = q("dlq", "retry", "slow", "--timeout", "1m", "--retries", "2").stdout
    assert said.strip() == "retrying 1 run(s): slow"
    run = q.run("slow")
    assert (run["state"], run["timeout"], run["max_retries"]) == ("pending", 60, 3)
    q.burst(dead=True)  # it no longer times out; it fails and is retried twice
    run = q.run("slow")
    assert [a["outcome"] for a in run["history"]] == ["timeout", "failed", "failed", "failed"]
    assert run["state"] == "dead"
    bad = q("dlq", "retry", "slow", "--timeout", "soon", check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
