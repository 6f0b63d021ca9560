"""`up`'s log lines, with the Supervisor in this process: a real SQLite store, a real jobs
directory, an injected clock (see test_supervisor.py for the world these tests share).

A broken file's errors are said once while it stays the same, again when they change, and
its mending is said; suspend and resume are said; a fire says the scheduled time it is for,
and a start how long after its due time the attempt started.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from queuectl.durations import format_duration
from queuectl.model import NewRun
from queuectl.services import jobs
from tests.integration.test_supervisor import EVERY_MINUTE, T0, World, serve, world

__all__ = ["world"]  # the fixture, shared


def errors_said(w: World, name: str) -> list[str]:
    return [line for line in w.lines if line.startswith("! ") and name in line]


def test_a_broken_file_s_errors_are_said_once_while_unchanged_again_when_they_change(world: World) -> None:
    world.write("good.toml", 'command = "true"\n')
    world.write("hello.toml", "command = [\n")
    supervisor = world.supervisor()
    supervisor.apply_once(first=True)
    assert len(errors_said(world, "hello.toml")) == 1
    world.write("other.toml", 'command = "true"\n')  # another file changes: hello.toml's errors are old news
    supervisor.apply_once()
    supervisor.apply_once()
    assert len(errors_said(world, "hello.toml")) == 1
    assert world.said("+ other: created")
    world.write("hello.toml", 'command = "true"\npriority = 99\n')  # a different error
    supervisor.apply_once()
    [first, second] = errors_said(world, "hello.toml")
    assert "invalid TOML" in first and "priority" in second
    supervisor.apply_once()
    assert len(errors_said(world, "hello.toml")) == 2


def test_a_mended_file_is_said_fixed_and_applied(world: World) -> None:
    world.write("hello.toml", 'command = "true"\n')
    supervisor = world.supervisor()
    supervisor.apply_once(first=True)
    world.write("hello.toml", "command = \n")  # a job in service breaks: it keeps its last good version
    supervisor.apply_once()
    assert world.said("hello.toml:", "keeps its last good version")
    world.write("hello.toml", 'command = "true"\n')  # mended, back to what it was
    supervisor.apply_once()
    assert world.lines[-1] == "hello: manifest fixed, applied"
    world.write("new.toml", "command = [\n")  # broken from its first version
    supervisor.apply_once()
    world.write("new.toml", 'command = "echo new"\n')
    supervisor.apply_once()
    assert world.lines[-1] == "new: manifest fixed, applied"
    assert world.said("+ new: created")
    count = len(world.lines)
    supervisor.apply_once()  # nothing changed: nothing said
    assert len(world.lines) == count


def test_suspend_and_resume_are_said(world: World) -> None:
    world.write("tick.toml", f'command = "true"\n{EVERY_MINUTE}')
    supervisor = world.supervisor()
    supervisor.apply_once(first=True)
    supervisor.schedule_once()
    jobs.suspend(world.look, "tick")
    supervisor.schedule_once()
    assert world.said("suspend", "tick: suspended")
    jobs.resume(world.look, "tick")
    supervisor.schedule_once()
    assert world.said("resume", "tick: resumed")


def test_a_fire_says_the_scheduled_time_it_is_for(world: World) -> None:
    world.write("tick.toml", 'command = "true"\ncron = "* * * * *"\ntimezone = "Europe/Paris"\n')
    supervisor = world.supervisor()
    supervisor.apply_once(first=True)
    supervisor.schedule_once()
    world.clock.now = T0 + 0.5
    supervisor.schedule_once()
    [fire] = [line for line in world.lines if line.startswith("fire ")]
    assert datetime.fromtimestamp(T0, tz=UTC).hour == 12  # the fire is for 12:00 UTC, 14:00 in Paris
    assert fire.endswith(" for 2026-06-01 14:00:00 CEST (2026-06-01 12:00:00 UTC)"), fire


def test_a_start_says_how_long_after_it_was_due_it_started(world: World) -> None:
    world.write("tick.toml", f'command = "true"\n{EVERY_MINUTE}')
    serve(world.supervisor(burst=True), stop=False)  # applies: the cron job fires from now on
    world.clock.now = T0 + 0.4  # the pool starts the fire of T0 0.4 s after it
    world.look.enqueue([NewRun("direct", "true", 5, 0, 2, 60, None, T0)])  # not a job's: no due time to say
    serve(world.supervisor(burst=True), stop=False)
    [tick] = [line for line in world.lines if line.startswith("start ") and " tick." in line]
    fire = time.strftime("%H:%M:%S", time.localtime(T0))  # as the log's prefix says times
    assert f"(attempt 1, {format_duration(0.4)} after it was due at {fire}): true" in tick, tick
    [direct] = [line for line in world.lines if line.startswith("start ") and " direct " in line]
    assert "(attempt 1): true" in direct, direct
