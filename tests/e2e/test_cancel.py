"""`cancel ID...`: waiting runs are cancelled, running ones stopped by their pool, finished ones left alone."""

from __future__ import annotations

import json

from tests.conftest import Queue, group_members, wait_for


def test_cancel_stops_a_running_run_s_process_group_and_records_it_cancelled(each_engine: Queue) -> None:
    q = each_engine
    gate, _never = q.gate()
    # deaf to SIGTERM, with a child in its group: only the SIGKILL after kill-grace ends them
    q("enqueue", json.dumps({"id": "busy", "command": f"trap '' TERM; sleep 300 & {gate}"}))
    q("config", "set", "kill-grace", "1s")
    pool = q.start_pool()
    run = wait_for(lambda: (r := q.run("busy"))["state"] == "running" and r["pgid"] and r, what="busy running")
    wait_for(lambda: len(group_members(run["pgid"])) >= 2, what="its child started")
    said = q("cancel", "busy").stdout
    assert said.startswith("stopping busy")
    wait_for(lambda: q.state("busy") == "cancelled", what="busy cancelled")
    assert group_members(run["pgid"]) == []
    shown = q.run("busy")
    assert shown["error"] == "cancelled by the user"
    # the attempt says what happened, not another cause of a cancel (it said "a newer fire replaced it")
    assert [(a["n"], a["outcome"], a["error"]) for a in shown["history"]] == [
        (1, "cancelled", "cancelled while running")
    ]
    assert shown["attempts"] == 1
    assert pool.poll() is None  # the pool goes on
    pool.terminate()
    output, _ = pool.communicate(timeout=30)
    assert "cancelled busy in " in output and ": now cancelled" in output  # not "failed ... now cancelled"
    # a user's cancel is no failure: neither success rate counts it
    q("run", "true", "--id", "fine")
    q.burst()
    assert q.json("metrics")["success_rate"] == 1.0
    overall = q.json("metrics", "--detailed")["overall"]
    assert overall["success_rate"] == 1.0 and overall["attempts"] == 1


def test_cancel_a_waiting_run_a_finished_one_and_an_unknown_id(q: Queue) -> None:
    q("enqueue", '{"id":"done","command":"true"}')
    q.burst()
    q("enqueue", '{"id":"soon","command":"true"}')
    q("enqueue", '{"id":"later","command":"true","delay":3600}')
    unknown = q("cancel", "soon", "ghost", check=False)
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "ghost" in unknown.stderr
    assert q.state("soon") == "pending"  # nothing changed
    said = q("cancel", "soon", "later", "done").stdout.splitlines()
    assert said == ["cancelled later", "cancelled soon", "done is completed already: left alone"]
    assert [q.state(r) for r in ("soon", "later", "done")] == ["cancelled", "cancelled", "completed"]
    assert q.json("cancel", "done", "soon") == {
        "cancelled": [],
        "stopping": [],
        "finished": {"done": "completed", "soon": "cancelled"},
    }
    q.burst()
    assert q.state("soon") == "cancelled"


def test_cancel_of_a_job_s_name_points_to_its_runs(q: Queue) -> None:
    jobs = q.write_job("later", 'command = "true"\nrun_at = "+1h"\n')
    q("apply", str(jobs))
    (run,) = q.json("list")
    refused = q("cancel", "later", check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        f"queuectl: error: no run with id 'later': later is a job; cancel its run by id ({run['id']}),"
        " or 'queuectl suspend later'\n"
    )
    assert q.state(run["id"]) == "scheduled"  # nothing changed
    q("cancel", run["id"])
    refused = q("cancel", "later", check=False)
    assert refused.returncode == 1
    assert "later is a job with no run waiting or running (see 'queuectl show later')" in refused.stderr
    assert q("cancel", "ghost", check=False).stderr == "queuectl: error: no run with id 'ghost' (see 'queuectl list')\n"
