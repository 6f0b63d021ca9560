"""Declarative jobs through the real CLI: apply, diff, validate, status files, up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import QUEUECTL, Queue, wait_for


def write(directory: Path, name: str, text: str, mode: int = 0o644) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    os.chmod(path, mode)
    return path


def runs_of(q: Queue, job: str) -> list[dict[str, Any]]:
    return [r for r in q.json("list") if r["job"] == job]


@pytest.fixture
def jobs(q: Queue) -> Path:
    return q.tmp / "jobs.d"


def test_dry_run_prints_the_plan_and_changes_nothing(q: Queue, jobs: Path) -> None:
    write(jobs, "a.toml", 'command = "echo a"\n')
    write(jobs, "b.toml", 'command = "echo b"\npriority = 9\n')
    out = q("apply", str(jobs), "--dry-run").stdout
    assert "+ a: to create" in out and "+ b: to create" in out
    assert "plan: 2 to create, 0 to update, 0 to delete, 0 unchanged" in out
    assert q.json("list") == []
    assert q.json("status")["jobs"]["total"] == 0
    out = q("apply", str(jobs)).stdout
    assert "applied: 2 created, 0 updated, 0 deleted, 0 unchanged" in out
    assert sorted(r["job"] for r in q.json("list")) == ["a", "b"]
    assert [r["priority"] for r in runs_of(q, "b")] == [9]


def test_applying_the_same_tree_twice_changes_nothing(q: Queue, jobs: Path) -> None:
    a = write(
        jobs,
        "a.toml",
        'command = "echo a"\ntimeout = 90\npriority = 5\nretries = 2\ncron = "*/5 * * * *"\n'
        '[env]\nFIRST = "1"\nSECOND = "two"\n',
    )
    write(jobs, "later.toml", 'command = "echo later"\nrun_at = "+1h"\n')
    q("apply", str(jobs))
    before = q.json("list")
    spec_before = q.json("show", "a")["spec_hash"]
    out = q("apply", str(jobs)).stdout
    assert "applied: 0 created, 0 updated, 0 deleted, 2 unchanged" in out
    assert q.json("list") == before
    assert q("diff", str(jobs), check=False).returncode == 0
    later = runs_of(q, "later")[0]
    assert later["state"] == "scheduled"  # run_at ahead
    due = time.mktime(time.strptime(later["run_at"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert 3500 < due - time.time() <= 3600
    # The same job written differently: comments, blank lines, keys and env in another order, other
    # quotes, 90 as "1m30s", 5 as "medium". Specs are compared in normalized form: still no change.
    a.write_text(
        "# the a job, reformatted\n"
        "cron     = '*/5 * * * *'\n"
        'timeout  = "1m30s"   # was 90\n\n'
        'priority = "medium"\n'
        "retries  = 2\n"
        "command  = 'echo a'\n"
        "\n[env]\nSECOND = 'two'\nFIRST  =  \"1\"   # keys reordered\n"
    )
    assert q("diff", str(jobs), check=False).returncode == 0
    out = q("apply", str(jobs)).stdout
    assert "applied: 0 created, 0 updated, 0 deleted, 2 unchanged" in out
    assert q.json("list") == before  # no run cancelled, none added
    assert q.json("show", "a")["spec_hash"] == spec_before


def test_update_lists_what_changed_and_runs_the_new_version(q: Queue, jobs: Path) -> None:
    path = write(jobs, "a.toml", 'command = "echo one"\ntimeout = 30\n')
    q("apply", str(jobs))
    q.burst()
    path.write_text('command = "echo two"\ntimeout = "1m"\n')
    out = q("apply", str(jobs)).stdout
    assert '~ a: updated (command "echo one" -> "echo two"; timeout 30.0 -> 60.0)' in out
    q.burst()
    runs = runs_of(q, "a")
    assert [r["state"] for r in runs] == ["completed", "completed"]
    assert [r["command"] for r in runs] == ["echo one", "echo two"]
    # A description does not change what runs: no new run.
    path.write_text('command = "echo two"\ntimeout = "1m"\ndescription = "says two"\n')
    assert '~ a: updated (description "" -> "says two")' in q("apply", str(jobs)).stdout
    assert len(runs_of(q, "a")) == 2


def test_update_replaces_a_run_not_yet_started(q: Queue, jobs: Path) -> None:
    path = write(jobs, "later.toml", 'command = "echo x"\nrun_at = 2099-01-01T00:00:00Z\n')
    q("apply", str(jobs))
    path.write_text('command = "echo x"\nrun_at = 2099-01-01T00:00:00Z\npriority = 8\n')
    assert "1 run(s) of the old version cancelled" in q("apply", str(jobs)).stdout
    runs = runs_of(q, "later")
    assert sorted((r["state"], r["priority"]) for r in runs) == [("cancelled", 5), ("scheduled", 8)]


def test_delete_keeps_history_and_cancels_runs_not_started(q: Queue, jobs: Path) -> None:
    done = write(jobs, "done.toml", 'command = "echo done"\n')
    q("apply", str(jobs))
    q.burst()
    later = write(jobs, "later.toml", 'command = "echo later"\nrun_at = "+1h"\n')
    q("apply", str(jobs))
    done.unlink()
    later.unlink()
    out = q("apply", str(jobs)).stdout
    assert "- done: deleted (its manifest is gone; history kept)" in out
    assert "- later: deleted (its manifest is gone; history kept; 1 run(s) not yet started cancelled)" in out
    assert [r["state"] for r in runs_of(q, "done")] == ["completed"]
    assert [r["state"] for r in runs_of(q, "later")] == ["cancelled"]
    missing = q("show", "done", check=False)
    assert missing.returncode == 1 and "no run or job named 'done'" in missing.stderr


def test_a_running_run_finishes_when_its_job_is_deleted(q: Queue, jobs: Path) -> None:
    gate = q.tmp / "go"
    path = write(jobs, "slow.toml", f'command = "while [ ! -f {gate} ]; do sleep 0.02; done; echo finished"\n')
    q("apply", str(jobs))
    pool = q.start_pool("--count", "1")
    wait_for(lambda: [r["state"] for r in runs_of(q, "slow")] == ["running"], what="slow running")
    path.unlink()
    assert "- slow: deleted" in q("apply", str(jobs)).stdout
    assert [r["state"] for r in runs_of(q, "slow")] == ["running"]
    gate.touch()
    wait_for(lambda: [r["state"] for r in runs_of(q, "slow")] == ["completed"], what="slow completed")
    run_id = runs_of(q, "slow")[0]["id"]
    assert q.run(run_id)["output_tail"] == "finished\n"
    pool.terminate()
    pool.wait(timeout=20)


def test_invalid_file_beside_a_valid_one(q: Queue, jobs: Path) -> None:
    write(jobs, "good.toml", 'command = "echo good"\n')
    write(jobs, "bad.toml", 'command = "echo bad"\ntimeout = -1\ncron = "0 2 * * *"\nrun_at = "+5m"\n')
    write(jobs, "broken.toml", 'command = "echo\n')
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1
    assert "bad.toml:2: timeout: expected a duration above zero" in done.stdout
    assert "bad.toml:3: cron: give either run_at (once) or cron (repeatedly), not both" in done.stdout
    assert "broken.toml:1: invalid TOML" in done.stdout
    assert "applied: 1 created, 0 updated, 0 deleted, 0 unchanged; 2 invalid manifest(s)" in done.stdout
    assert [r["job"] for r in q.json("list")] == ["good"]
    assert q("show", "bad", check=False).returncode == 1


def test_broken_file_keeps_its_last_good_version(q: Queue, jobs: Path) -> None:
    path = write(jobs, "a.toml", 'command = "echo good"\n')
    q("apply", str(jobs))
    path.write_text('command = "echo oops"\nretries = "many"\n')
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1 and "(job a keeps its last good version)" in done.stdout
    job = q.json("show", "a")
    assert job["spec"]["command"] == "echo good"
    assert "retries: expected a whole number" in job["manifest_error"]
    assert "a" in q.json("status")["jobs"]["manifest_errors"]
    assert len(runs_of(q, "a")) == 1
    status_file = json.loads((jobs / ".status" / "a.json").read_text())
    assert "retries: expected a whole number" in status_file["manifest_error"]
    path.write_text('command = "echo good"\n')
    assert "= a: manifest valid again" in q("apply", str(jobs)).stdout
    assert q.json("show", "a")["manifest_error"] is None
    assert len(runs_of(q, "a")) == 1


def test_diff_exit_codes(q: Queue, jobs: Path) -> None:
    path = write(jobs, "a.toml", 'command = "echo a"\n')
    assert q("diff", str(jobs), check=False).returncode == 1
    q("apply", str(jobs))
    same = q("diff", str(jobs), check=False)
    assert same.returncode == 0 and "plan: 0 to create, 0 to update, 0 to delete, 1 unchanged" in same.stdout
    path.write_text('command = "echo b"\n')
    changed = q("diff", str(jobs), check=False)
    assert changed.returncode == 1 and '~ a: to update (command "echo a" -> "echo b")' in changed.stdout
    assert q.json("show", "a")["spec"]["command"] == "echo a"  # diff changes nothing
    path.write_text("command = \n")
    assert q("diff", str(jobs), check=False).returncode == 2
    missing = q("diff", str(q.tmp / "nope"), check=False)
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr


def test_one_typo_gives_one_error_in_validate_apply_diff_and_the_up_log(q: Queue, jobs: Path) -> None:
    write(jobs, "hello.toml", 'comand = "echo hi"\n')
    expected = "jobs.d/hello.toml:1: comand: unknown key (did you mean 'command'?)"
    for verb in ("validate", "apply", "diff", "up"):
        done = q(verb, str(jobs), *(["--burst"] if verb == "up" else []), check=False)
        assert done.returncode != 0, (verb, done.stdout, done.stderr)
        out = done.stdout + done.stderr
        problems = [line for line in out.splitlines() if "hello.toml" in line and "refused" not in line]
        assert len(problems) == 1 and expected in problems[0], (verb, out)
        assert "missing key" not in out, (verb, out)


def test_validate_needs_no_store_and_reports_every_error(q: Queue, jobs: Path) -> None:
    write(jobs, "one.toml", 'comand = "x"\n')
    write(jobs, "two.toml", 'command = "x"\npriority = 0\nenabled = "no"\n')
    write(jobs, "fine.toml", 'command = "x"\n')
    done = q("validate", str(jobs), check=False)
    assert done.returncode == 1
    assert done.stdout == ""  # errors and the summary are diagnostics: all on stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("jobs.d/one.toml:1: comand: unknown key") for line in lines), lines
    assert not any("one.toml: command: missing key" in line for line in lines), lines  # one typo, one error
    assert any("two.toml:2: priority:" in line for line in lines)
    assert any("two.toml:3: enabled:" in line for line in lines)
    assert "1 valid, 2 invalid manifest(s)" in done.stderr
    assert not q.db.exists()
    (jobs / "one.toml").unlink()
    (jobs / "two.toml").unlink()
    ok = q("validate", str(jobs / "fine.toml"))
    assert "1 valid, 0 invalid manifest(s)" in ok.stdout
    assert q.json("validate", str(jobs))["valid"] == [{"file": str(jobs / "fine.toml"), "job": "fine"}]
    assert not q.db.exists()


def test_unsafe_manifests_are_refused_unless_insecure(q: Queue, jobs: Path) -> None:
    write(jobs, "shared.toml", 'command = "echo shared"\n', mode=0o664)
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1
    assert "shared.toml: refused: writable by group (mode 0664)" in done.stdout
    assert q.json("list") == []
    assert "1 created" in q("apply", str(jobs), "--insecure").stdout


def test_jobs_belong_to_their_directory(q: Queue) -> None:
    first, second = q.tmp / "first", q.tmp / "second"
    write(first, "a.toml", 'command = "echo a"\n')
    write(second, "b.toml", 'command = "echo b"\n')
    q("enqueue", "--id", "manual", "--command", "echo manual")
    q("apply", str(first))
    out = q("apply", str(second)).stdout
    assert "applied: 1 created, 0 updated, 0 deleted, 0 unchanged" in out
    write(second, "a.toml", 'command = "echo impostor"\n')
    clash = q("apply", str(second), check=False)
    assert clash.returncode == 1 and f"job name 'a' is already declared by {first / 'a.toml'}" in clash.stdout
    assert q.json("show", "a")["spec"]["command"] == "echo a"
    assert q.state("manual") == "pending"


def git_in(repo: Path) -> Callable[..., str]:
    """Run git in `repo` as a test user; its output."""
    env = dict(
        os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@e"
    )

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True
        ).stdout

    return git


def test_git_commit_and_file_hash_are_recorded(q: Queue) -> None:
    repo = q.tmp / "repo"
    path = write(repo / "jobs.d", "a.toml", 'command = "echo a"\n')
    git = git_in(repo)

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    head = git("rev-parse", "HEAD").strip()
    q("apply", str(repo / "jobs.d"))
    job = q.json("show", "a")
    assert (job["git_commit"], job["git_dirty"]) == (head, False)
    assert not (repo / "jobs.d" / ".status" / "a.json").exists()  # it comes with the first attempt
    q.burst()
    status_file = json.loads((repo / "jobs.d" / ".status" / "a.json").read_text())
    assert status_file["git_commit"] == head and status_file["file_hash"] == job["file_hash"]
    assert git("status", "--porcelain") == ""  # the status directory ignores itself
    path.write_text('command = "echo b"\n')
    assert q.json("status")["jobs"]["drift"] == {"a": "manifest changed since apply"}
    q("apply", str(repo / "jobs.d"))
    assert q.json("show", "a")["git_dirty"] is True
    assert q.json("status")["jobs"]["drift"] == {}


def test_status_files_are_whole_after_every_attempt_even_while_read(q: Queue, jobs: Path) -> None:
    counter = q.tmp / "count"
    write(
        jobs,
        "flaky.toml",
        f'command = "echo x >> {counter}; [ $(wc -l < {counter}) -ge 3 ] || exit 7"\nretries = 3\nbackoff_base = 1\n',
    )
    q("apply", str(jobs))
    status_path = jobs / ".status" / "flaky.json"
    assert (jobs / ".status" / ".gitignore").read_text().strip().endswith("*")
    seen: list[tuple[str | None, int]] = []
    stop = threading.Event()
    bad: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                text = status_path.read_text()
            except FileNotFoundError:
                continue
            try:
                doc = json.loads(text)
            except json.JSONDecodeError:
                bad.append(text)
                return
            seen.append((doc["state"], doc["attempts"]))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        q.burst()
    finally:
        stop.set()
        thread.join()
    assert not bad, f"a reader saw a partial status file: {bad[0]!r}"
    final = json.loads(status_path.read_text())
    assert (final["state"], final["attempts"], final["exit_code"]) == ("completed", 3, 0)
    assert final["duration"] is not None and final["started_at"] and final["finished_at"]
    assert final["spec_hash"] == q.json("show", "flaky")["spec_hash"]
    assert ("failed", 1) in seen and ("failed", 2) in seen, "the status file was not rewritten after each attempt"


def test_init_and_schema(q: Queue) -> None:
    target = q.tmp / "mine"
    out = q("init", str(target)).stdout
    assert "created" in out and (target / "hello.toml").exists()
    assert oct((target / "hello.toml").stat().st_mode & 0o777) == oct(0o644)
    q("validate", str(target))
    again = q("init", str(target), check=False)
    assert again.returncode == 2 and "already holds manifests" in again.stderr
    schema = json.loads(q("schema").stdout)
    assert "command" in schema["properties"] and schema["$schema"].startswith("https://json-schema.org/")


def test_apply_defaults_to_jobs_d_in_the_current_directory(q: Queue) -> None:
    write(q.tmp / "jobs.d", "a.toml", 'command = "echo a"\n')
    done = subprocess.run([*QUEUECTL, "apply"], cwd=q.tmp, env=q.env, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "+ a: created" in done.stdout
    empty = q.tmp / "empty"
    empty.mkdir()
    none = subprocess.run([*QUEUECTL, "apply"], cwd=empty, env=q.env, capture_output=True, text=True, check=False)
    assert none.returncode == 2 and "no jobs.d/ here" in none.stderr


def test_disabled_job_has_no_runs_until_enabled(q: Queue, jobs: Path) -> None:
    path = write(jobs, "a.toml", 'command = "echo a"\nenabled = false\n')
    q("apply", str(jobs))
    assert runs_of(q, "a") == []
    path.write_text('command = "echo a"\nenabled = true\n')
    assert "~ a: updated (enabled false -> true)" in q("apply", str(jobs)).stdout
    assert [r["state"] for r in runs_of(q, "a")] == ["pending"]


# -- up: the watched directory ---------------------------------------------------------
class Up:
    def __init__(self, q: Queue, directory: Path, *args: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [*QUEUECTL, "up", str(directory), *args],
            env=q.env,
            cwd=q.tmp,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        q.procs.append(self.proc)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_for(lambda: any("watching" in line for line in self.lines), what="up watching")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=30)


def test_up_picks_up_new_changed_and_removed_files_within_a_second(q: Queue, jobs: Path) -> None:
    write(jobs, "first.toml", 'command = "echo first"\n')
    up = Up(q, jobs, "--workers", "2")
    wait_for(lambda: [r["state"] for r in runs_of(q, "first")] == ["completed"], what="first completed")

    # up prints a change once its apply has committed: its own lines time it (a CLI poll per
    # look would add its start-up to the measure)
    def applied_within_a_second(change: Callable[[], object], line: str) -> None:
        started = time.monotonic()
        change()
        wait_for(lambda: any(line in seen for seen in up.lines), timeout=1.0, interval=0.01, what=f"{line!r} in 1s")
        assert time.monotonic() - started < 1.0

    applied_within_a_second(lambda: write(jobs, "new.toml", 'command = "echo new"\n'), "+ new: created")
    assert runs_of(q, "new")

    staged = jobs / ".new.toml.tmp"
    staged.write_text('command = "echo newer"\n')
    os.chmod(staged, 0o644)
    # an atomic rename, as editors and git do
    applied_within_a_second(lambda: os.replace(staged, jobs / "new.toml"), "~ new: updated")
    assert len(runs_of(q, "new")) == 2

    applied_within_a_second((jobs / "first.toml").unlink, "- first: deleted")
    assert q("show", "first", check=False).returncode == 1
    wait_for(lambda: [r["state"] for r in runs_of(q, "new")] == ["completed", "completed"], what="both versions ran")
    assert json.loads((jobs / ".status" / "new.json").read_text())["output_tail"] == "newer\n"
    assert not (jobs / ".status" / "first.json").exists()
    assert up.stop() == 0
    log = "\n".join(up.lines)
    assert "+ new: created" in log and "~ new: updated" in log and "- first: deleted" in log


def test_up_reports_a_broken_file_and_ignores_editor_files(q: Queue, jobs: Path) -> None:
    path = write(jobs, "a.toml", 'command = "echo good"\n')
    up = Up(q, jobs)
    wait_for(lambda: [r["state"] for r in runs_of(q, "a")] == ["completed"], what="a completed")
    for junk in (".a.toml.swp", "a.toml~", "#a.toml#", ".#a.toml", "4913", "notes.txt"):
        write(jobs, junk, 'command = "echo junk"\n')
    path.write_text("command = [\n")
    wait_for(lambda: any("a.toml:" in line and "invalid TOML" in line for line in up.lines), what="broken reported")
    assert q.json("show", "a")["spec"]["command"] == "echo good"
    assert q.json("status")["jobs"]["total"] == 1
    assert up.stop() == 0


def test_up_applies_a_burst_of_500_files(q: Queue, jobs: Path) -> None:
    jobs.mkdir()
    up = Up(q, jobs, "--workers", "4", "--quiet")
    for n in range(500):
        write(jobs, f"job{n:03d}.toml", f'command = "true {n}"\n')
    wait_for(lambda: q.json("status")["jobs"]["total"] == 500, timeout=60, interval=0.2, what="500 jobs applied")
    wait_for(lambda: q.json("status")["counts"]["completed"] == 500, timeout=120, interval=0.2, what="500 runs done")
    # status files follow the results, written by a thread of their own
    wait_for(lambda: len(list((jobs / ".status").glob("*.json"))) == 500, timeout=60, what="500 status files")
    assert up.stop() == 0


def test_up_does_not_report_a_file_caught_half_written(q: Queue, jobs: Path) -> None:
    jobs.mkdir()
    up = Up(q, jobs)
    path = jobs / "slow-writer.toml"
    with open(path, "w") as handle:  # an editor writing in place, in two steps
        handle.write('command = "echo com')
        handle.flush()
        os.chmod(path, 0o644)
        wait_for(lambda: any("watching" in line for line in up.lines))
        time.sleep(0.1)  # the second half comes later: this is the scenario, not a wait for a condition
        handle.write('plete"\n')
    wait_for(lambda: [r["state"] for r in runs_of(q, "slow-writer")] == ["completed"], what="the whole file ran")
    assert q.run(runs_of(q, "slow-writer")[0]["id"])["output_tail"] == "complete\n"
    assert up.stop() == 0
    assert not [line for line in up.lines if "slow-writer.toml:" in line], up.lines


# -- found in review ----------------------------------------------------------------
def test_a_second_file_cannot_take_over_a_job(q: Queue, jobs: Path) -> None:
    write(jobs, "z.toml", 'name = "backup"\ncommand = "echo backup"\n')
    q("apply", str(jobs))
    write(jobs, "a.toml", 'name = "backup"\ncommand = "echo impostor"\n')
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1
    assert f"a.toml: name: job name 'backup' is already used by {jobs / 'z.toml'}" in done.stdout
    job = q.json("show", "backup")
    assert (job["spec"]["command"], job["file"], job["manifest_error"]) == ("echo backup", str(jobs / "z.toml"), None)


def test_renaming_a_job_inside_its_file_replaces_the_old_job(q: Queue, jobs: Path) -> None:
    path = write(jobs, "a.toml", 'name = "foo"\ncommand = "echo x"\nrun_at = "+1h"\n')
    q("apply", str(jobs))
    path.write_text('name = "bar"\ncommand = "echo x"\nrun_at = "+1h"\n')
    out = q("apply", str(jobs)).stdout
    assert "+ bar: created" in out and "- foo: deleted" in out
    assert sorted((r["job"], r["state"]) for r in q.json("list")) == [("bar", "scheduled"), ("foo", "cancelled")]
    assert q.json("status")["jobs"] == {"total": 1, "drift": {}, "manifest_errors": {}}


def test_moving_a_file_between_directories_applied_together_keeps_the_job(q: Queue) -> None:
    first, second = q.tmp / "first", q.tmp / "second"
    path = write(first, "m.toml", 'command = "echo m"\nrun_at = "+1h"\n')
    second.mkdir()
    q("apply", str(first), str(second))
    os.rename(path, second / "m.toml")
    out = q("apply", str(first), str(second)).stdout
    assert "~ m: updated (file first/m.toml -> second/m.toml)" in out
    assert [r["state"] for r in runs_of(q, "m")] == ["scheduled"]  # what runs did not change: same run


def test_status_and_show_do_not_hang_on_a_fifo(q: Queue, jobs: Path) -> None:
    path = write(jobs, "a.toml", 'command = "echo a"\n')
    q("apply", str(jobs))
    path.unlink()
    os.mkfifo(path)
    assert q.json("status")["jobs"]["drift"] == {"a": "manifest is no longer a regular file"}
    assert q.json("show", "a")["drift"] == "manifest is no longer a regular file"
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1 and "a.toml: not a regular file" in done.stdout


def test_status_dir_can_be_moved_for_applied_jobs(q: Queue, jobs: Path) -> None:
    write(jobs, "s.toml", 'command = "echo s"\n')
    q("apply", str(jobs))
    elsewhere = q.tmp / "status-elsewhere"
    q("up", str(jobs), "--burst", "--status-dir", str(elsewhere))
    assert json.loads((elsewhere / "s.json").read_text())["state"] == "completed"
    assert q.json("show", "s")["status_dir"] == str(elsewhere)


def test_git_commit_is_refreshed_after_a_commit(q: Queue) -> None:
    repo = q.tmp / "repo"
    write(repo / "jobs.d", "a.toml", 'command = "echo a"\nrun_at = "+1h"\n')
    git = git_in(repo)

    git("init", "-q")
    q("apply", str(repo / "jobs.d"))
    job = q.json("show", "a")
    assert (job["git_commit"], job["git_dirty"]) == (None, True)  # no commit yet; the file is untracked
    git("add", ".")
    git("commit", "-qm", "first")
    assert "0 created, 0 updated, 0 deleted, 1 unchanged" in q("apply", str(repo / "jobs.d")).stdout
    job = q.json("show", "a")
    assert (job["git_commit"], job["git_dirty"]) == (git("rev-parse", "HEAD").strip(), False)


def test_error_status_files_go_when_their_file_is_fixed_or_removed(q: Queue, jobs: Path) -> None:
    fixed = write(jobs, "r.toml", 'command = "echo r"\npriority = 11\n')
    removed = write(jobs, "z.toml", "command = \n")
    q("apply", str(jobs), check=False)
    assert "priority" in json.loads((jobs / ".status" / "r.json").read_text())["manifest_error"]
    assert json.loads((jobs / ".status" / "z.json").read_text())["manifest_error"]
    removed.unlink()
    q("apply", str(jobs), check=False)  # nothing else changed: the error document still goes
    assert not (jobs / ".status" / "z.json").exists()
    fixed.write_text('command = "echo r"\n')
    assert "+ r: created" in q("apply", str(jobs)).stdout
    assert not (jobs / ".status" / "r.json").exists()


def test_a_file_name_that_is_not_utf8_is_reported_and_the_rest_applies(q: Queue, jobs: Path) -> None:
    write(jobs, "good.toml", 'command = "echo good"\n')
    bad = os.path.join(os.fsencode(jobs), b"\xff.toml")
    with open(bad, "wb") as handle:
        handle.write(b'name = "weird"\ncommand = "echo weird"\n')
    os.chmod(bad, 0o644)
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1 and "file name is not UTF-8" in done.stdout
    assert [r["job"] for r in q.json("list")] == ["good"]


def test_validate_warns_about_owner_and_mode_but_checks_content(q: Queue, jobs: Path) -> None:
    write(jobs, "shared.toml", 'command = "echo shared"\npriority = 0\n', mode=0o664)
    done = q("validate", str(jobs), check=False)
    assert done.returncode == 1
    assert "warning:" in done.stderr and "apply would refuse it: refused: writable by group" in done.stderr
    assert "shared.toml:2: priority:" in done.stderr
    assert done.stdout == ""


def test_up_keeps_watching_a_directory_that_is_replaced(q: Queue, jobs: Path) -> None:
    write(jobs, "a.toml", 'command = "echo a"\n')
    up = Up(q, jobs)
    wait_for(lambda: [r["state"] for r in runs_of(q, "a")] == ["completed"], what="a completed")
    fresh = q.tmp / "jobs.d.new"
    write(fresh, "a.toml", 'command = "echo a"\n')
    write(fresh, "b.toml", 'command = "echo b"\n')
    os.rename(jobs, q.tmp / "jobs.d.old")
    os.rename(fresh, jobs)  # a swap, as deploy tools do
    wait_for(lambda: [r["state"] for r in runs_of(q, "b")] == ["completed"], what="b from the new directory ran")
    write(jobs, "c.toml", 'command = "echo c"\n')
    wait_for(lambda: [r["state"] for r in runs_of(q, "c")] == ["completed"], what="c ran: still watching")
    assert up.stop() == 0


# -- scheduling through the CLI ------------------------------------------------------
def test_a_job_due_in_two_seconds_starts_within_a_second_of_its_time(q: Queue, jobs: Path) -> None:
    jobs.mkdir()
    up = Up(q, jobs)
    due = time.time() + 2
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(due)) + f".{int(due % 1 * 1000):03d}Z"
    write(jobs, "soon.toml", f'command = "true"\nrun_at = "{stamp}"\n')
    wait_for(lambda: [r["state"] for r in runs_of(q, "soon")] == ["completed"], what="soon ran")
    started = q.run(runs_of(q, "soon")[0]["id"])["history"][0]["started_at"]
    started_at = time.mktime(time.strptime(started[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + float(started[19:23])
    assert 0 <= started_at - due < 1.0, started_at - due
    assert up.stop() == 0


def test_trigger_suspend_resume_plan_and_schedule(q: Queue, jobs: Path) -> None:
    write(jobs, "nightly.toml", 'command = "echo nightly"\ncron = "30 2 * * *"\ntimezone = "Europe/Berlin"\n')
    write(jobs, "later.toml", 'command = "echo later"\nrun_at = "+1h"\n')
    q("apply", str(jobs))
    out = q("trigger", "nightly").stdout
    assert out.startswith("triggered nightly: run nightly.")
    q.burst()
    assert [r["state"] for r in runs_of(q, "nightly")] == ["completed"]
    plan = q.json("plan", "nightly", "--count", "3")
    assert plan["schedule"].endswith("(Europe/Berlin)") and len(plan["fires"]) == 3
    assert all(f["local"].endswith(("CET", "CEST")) and " 02:30:00" in f["local"] for f in plan["fires"])
    assert sorted((s["kind"], s["job"]) for s in q.json("schedule")) == [("cron", "nightly"), ("run", "later")]
    assert "1 run(s) not yet started cancelled" in q("suspend", "later").stdout
    assert q.json("show", "later")["suspended"] is True
    assert [r["state"] for r in runs_of(q, "later")] == ["cancelled"]
    q("resume", "later")
    assert sorted(r["state"] for r in runs_of(q, "later")) == ["cancelled", "scheduled"]
    missing = q("trigger", "ghost", check=False)
    assert missing.returncode == 1 and "no job named 'ghost'" in missing.stderr
    no_cron = q("plan", "later", check=False)
    assert no_cron.returncode == 1 and "has no cron schedule" in no_cron.stderr


def test_replace_stops_the_running_attempt_of_a_real_pool(q: Queue, jobs: Path) -> None:
    from queuectl import wake
    from queuectl.config import Defaults
    from queuectl.scheduler import Scheduler
    from queuectl.store.sqlite import SQLiteStore

    write(jobs, "long.toml", 'command = "sleep 300"\ncron = "* * * * *"\ntimezone = "UTC"\nconcurrency = "replace"\n')
    q("apply", str(jobs))
    pool = q.start_pool("--count", "2", "--no-scheduler")  # the test's scheduler, with its own times, schedules
    q.wait_pool_registered(pool)
    store = SQLiteStore(str(q.db))
    try:
        scheduler = Scheduler(store, lambda: Defaults(0, 2.0, 60.0, None))
        t1 = (time.time() // 60 - 10) * 60  # fires in the past: their runs are due at once
        scheduler.run_once(t1 + 1)  # the first look: fires count from here
        scheduler.run_once(t1 + 61)
        wait_for(lambda: [r["state"] for r in runs_of(q, "long")] == ["running"], what="the first fire running")
        first = runs_of(q, "long")[0]["id"]
        pgid = q.run(first)["pgid"] or wait_for(lambda: q.run(first)["pgid"], what="its process group recorded")
        tick = scheduler.run_once(t1 + 121)  # the next fire replaces it
        assert tick.replaced == [first]
        wake.notify(str(q.db), [pool.pid])  # as up does
        wait_for(lambda: q.state(first) == "cancelled", what="the replaced run cancelled")
        wait_for(lambda: not group_alive(pgid), what="its process group gone")
        assert q.run(first)["error"].startswith("replaced by the fire of")
        wait_for(
            lambda: sorted(r["state"] for r in runs_of(q, "long")) == ["cancelled", "running"], what="new fire runs"
        )
    finally:
        store.close()
        pool.terminate()
        pool.send_signal(signal.SIGINT)  # a second signal stops at once (another one: equal signals may merge)
        pool.wait(timeout=30)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
