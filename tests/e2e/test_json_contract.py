"""The README's "JSON output" section is a contract: every documented field, by name and type.

Fields may be added, never renamed or removed; times are UTC ISO 8601 with milliseconds, or null.
Each shape below is copied from the README; a value's kinds say what it may hold.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.conftest import Queue, wait_for

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
STATES = {"scheduled", "pending", "running", "completed", "failed", "dead", "cancelled"}
OUTCOMES = {"completed", "failed", "timeout", "lost", "interrupted", "cancelled"}

# kinds: "str", "int", "num" (int or float), "bool", "time", "null", "dict", "list", or a set of allowed strings
Shape = dict[str, tuple[Any, ...]]

RUN: Shape = {
    "id": ("str",),
    "job": ("str", "null"),
    "command": ("str",),
    "state": (STATES,),
    "attempts": ("int",),
    "max_retries": ("int",),
    "exit_code": ("int", "null"),
    "error": ("str", "null"),
    "priority": ("int",),
    "timeout": ("num", "null"),
    "backoff_base": ("num",),
    "created_at": ("time",),
    "updated_at": ("time",),
    "run_at": ("time",),
    "started_at": ("time", "null"),
    "finished_at": ("time", "null"),
    "worker": ("str", "null"),
    "host": ("str", "null"),
}
SHOW: Shape = {
    **RUN,
    "cwd": ("str", "null"),
    "env": ("dict", "null"),
    "lease_expires": ("time", "null"),
    "pgid": ("int", "null"),
    "log_path": ("str", "null"),
    "output_tail": ("str", "null"),
    "history": ("list",),
    "pool": ("str", "null"),
}
ATTEMPT: Shape = {
    "n": ("int",),
    "outcome": (OUTCOMES,),
    "exit_code": ("int", "null"),
    "error": ("str", "null"),
    "started_at": ("time", "null"),
    "finished_at": ("time", "null"),
    "duration": ("num", "null"),
    "worker": ("str", "null"),
    "host": ("str", "null"),
    "log_path": ("str", "null"),
}
WORKER: Shape = {
    "id": ("str",),
    "host": ("str",),
    "pid": ("int",),
    "slots": ("int",),
    "running": ("list",),
    "started_at": ("time",),
    "heartbeat_at": ("time",),
    "state": ({"alive", "stale", "stopping"},),
}
METRICS: Shape = {
    "counts": ("dict",),
    "attempts": ("int",),
    "success_rate": ("num", "null"),
    "mean_duration": ("num", "null"),
    "p95_duration": ("num", "null"),
    "completed_last_hour": ("int",),
    "throughput_per_minute": ("num",),
}
STATUS: Shape = {"counts": ("dict",), "workers": ("list",), "store": ("str",), "jobs": ("dict",)}
JOBS_SUMMARY: Shape = {"total": ("int",), "drift": ("dict",), "manifest_errors": ("dict",)}
PLAN: Shape = {
    "applied": ("bool",),
    "created": ("list",),
    "updated": ("list",),
    "deleted": ("list",),
    "unchanged": ("list",),
    "invalid": ("list",),
    "counts": ("dict",),
}
PLAN_COUNTS: Shape = {k: ("int",) for k in ("create", "update", "unchanged", "delete", "invalid")}
INVALID: Shape = {"file": ("str",), "job": ("str", "null"), "errors": ("list",)}
ERROR: Shape = {"file": ("str",), "line": ("int", "null"), "key": ("str", "null"), "message": ("str",)}
UPDATED: Shape = {"name": ("str",), "changes": ("dict",)}
JOB: Shape = {
    "job": ("str",),
    "spec": ("dict",),
    "spec_hash": ("str",),
    "source": ("str", "null"),
    "file": ("str", "null"),
    "file_hash": ("str", "null"),
    "git_commit": ("str", "null"),
    "git_dirty": ("bool", "null"),
    "status_dir": ("str", "null"),
    "manifest_error": ("str", "null"),
    "drift": ("str", "null"),
    "created_at": ("time",),
    "updated_at": ("time",),
    "next_run_at": ("time", "null"),
    "runs": ("dict",),
    "last_run": ("dict", "null"),
}
SETTINGS = {
    "max-retries",
    "backoff-base",
    "backoff-max",
    "job-timeout",
    "lease-seconds",
    "worker-poll-interval",
    "stop-grace",
    "kill-grace",
    "log-max-bytes",
    "priority-aging",
}


def _is(value: Any, kind: Any) -> bool:
    if isinstance(kind, set):
        return value in kind
    return {
        "str": lambda: isinstance(value, str),
        "int": lambda: isinstance(value, int) and not isinstance(value, bool),
        "num": lambda: isinstance(value, int | float) and not isinstance(value, bool),
        "bool": lambda: isinstance(value, bool),
        "time": lambda: isinstance(value, str) and TIME.fullmatch(value) is not None,
        "null": lambda: value is None,
        "dict": lambda: isinstance(value, dict),
        "list": lambda: isinstance(value, list),
    }[kind]()


def conforms(obj: Any, shape: Shape, where: str) -> dict[str, Any]:
    """Assert `obj` has every field of `shape`, each of an allowed kind; return it for more checks."""
    assert isinstance(obj, dict), f"{where}: expected an object, got {obj!r}"
    missing = set(shape) - set(obj)
    assert not missing, f"{where}: documented field(s) missing: {sorted(missing)}"
    for key, kinds in shape.items():
        assert any(_is(obj[key], kind) for kind in kinds), f"{where}.{key}: {obj[key]!r} is not one of {kinds}"
    return obj


def _declare(q: Queue) -> Path:
    jobs = q.tmp / "jobs.d"
    jobs.mkdir()
    (jobs / "declared.toml").write_text('command = "echo declared"\n')
    (jobs / "hourly.toml").write_text('command = "true"\ncron = "@hourly"\n')
    (jobs / "broken.toml").write_text("command = 5\n")
    for path in jobs.iterdir():
        path.chmod(0o644)
    applied = conforms(_json_any(q, "apply", str(jobs)), PLAN, "apply")
    assert applied["applied"] is True and sorted(applied["created"]) == ["declared", "hourly"]
    conforms(applied["counts"], PLAN_COUNTS, "apply.counts")
    invalid = conforms(applied["invalid"][0], INVALID, "apply.invalid[0]")
    conforms(invalid["errors"][0], ERROR, "apply.invalid[0].errors[0]")
    return jobs


def _json_any(q: Queue, *args: str) -> Any:
    """`--json` output of a command whose exit code reports findings (apply, diff, validate exit non-zero)."""
    import json

    return json.loads(q(*args, "--json", check=False).stdout)


def test_every_documented_json_field_is_there_with_its_type(q: Queue) -> None:
    jobs = _declare(q)
    enqueued = q.json("enqueue", "--id", "a", "--command", "echo hi", "--cwd", str(q.tmp), "--env", "X=1")
    assert enqueued == {"enqueued": ["a"]}
    assert q.json("run", "--id", "d", "--retries", "0", "exit 3") == {"enqueued": ["d"]}
    q.burst(dead=True)

    for run in q.json("list"):
        conforms(run, RUN, f"list[{run['id']}]")
    dead = q.json("dlq", "list")
    assert [r["id"] for r in dead] == ["d"]
    conforms(dead[0], RUN, "dlq list[0]")

    a = conforms(q.run("a"), SHOW, "show a")
    assert (a["state"], a["exit_code"], a["cwd"], a["env"], a["output_tail"]) == (
        "completed",
        0,
        str(q.tmp),
        {"X": "1"},
        "hi\n",
    )
    assert a["job"] is None and isinstance(a["log_path"], str)
    attempt = conforms(a["history"][0], ATTEMPT, "show a.history[0]")
    assert (attempt["n"], attempt["outcome"], attempt["exit_code"]) == (1, "completed", 0)
    assert _is(attempt["duration"], "num") and _is(attempt["finished_at"], "time") and attempt["worker"]
    d = conforms(q.run("d"), SHOW, "show d")
    assert (d["state"], d["exit_code"], d["error"]) == ("dead", 3, "exit 3")
    conforms(d["history"][0], ATTEMPT, "show d.history[0]")
    declared = next(r for r in q.json("list") if r["job"] == "declared")
    assert declared["state"] == "completed"

    command, gate = q.gate()
    q("enqueue", "--id", "g", "--command", command)
    pool = q.start_pool("--count", "2")
    try:
        g = wait_for(lambda: (run := q.run("g"))["pgid"] and run, what="g running and recorded")
        conforms(g, SHOW, "show g (running)")
        assert g["state"] == "running" and _is(g["lease_expires"], "time") and g["worker"]
        workers = q.json("worker", "status")
        worker = conforms(workers[0], WORKER, "worker status[0]")
        assert (worker["pid"], worker["slots"], worker["state"], worker["running"]) == (pool.pid, 2, "alive", ["g"])
        status = conforms(q.json("status"), STATUS, "status")
        assert set(status["counts"]) == STATES and all(_is(n, "int") for n in status["counts"].values())
        assert status["counts"]["running"] == 1 and status["store"] == str(q.db)
        conforms(status["workers"][0], WORKER, "status.workers[0]")
        summary = conforms(status["jobs"], JOBS_SUMMARY, "status.jobs")
        assert summary["total"] == 2 and list(summary["manifest_errors"]) == []  # broken.toml never made a job
    finally:
        gate.touch()
        q("worker", "stop")
        pool.wait(timeout=30)

    metrics = conforms(q.json("metrics"), METRICS, "metrics")
    assert set(metrics["counts"]) >= STATES and metrics["attempts"] == 4
    settings = q.json("config", "show")
    assert set(settings) == SETTINGS and all(_is(v, "num") for v in settings.values())

    (jobs / "declared.toml").write_text('command = "echo declared, again"\n')
    diff = conforms(_json_any(q, "diff", str(jobs)), PLAN, "diff")
    assert diff["applied"] is False and diff["created"] == [] and diff["unchanged"] == ["hourly"]
    change = conforms(diff["updated"][0], UPDATED, "diff.updated[0]")
    assert change["name"] == "declared" and change["changes"]["command"] == ["echo declared", "echo declared, again"]
    conforms(diff["counts"], PLAN_COUNTS, "diff.counts")
    validated = _json_any(q, "validate", str(jobs))
    assert set(validated) >= {"valid", "invalid"}
    assert sorted(v["job"] for v in validated["valid"]) == ["declared", "hourly"]
    assert all(set(v) >= {"file", "job"} for v in validated["valid"])
    assert set(validated["invalid"][0]) >= {"file", "errors"}
    conforms(validated["invalid"][0]["errors"][0], ERROR, "validate.invalid[0].errors[0]")

    hourly = conforms(q.json("show", "hourly"), JOB, "show hourly")
    assert hourly["job"] == "hourly" and hourly["spec"]["cron"] == "@hourly" and _is(hourly["next_run_at"], "time")
    declared_job = conforms(q.json("show", "declared"), JOB, "show declared")
    assert declared_job["file"] == str(jobs / "declared.toml") and declared_job["runs"] == {"completed": 1}
    assert declared_job["last_run"] is not None
