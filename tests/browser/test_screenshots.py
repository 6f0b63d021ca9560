"""The README's pictures: the dashboard over the examples after a simulated day, in light and dark.

The examples (examples/jobs.d) are applied a day ago on an injected clock; the real scheduler then
fires `disk-usage` every five minutes while a stand-in pool starts and ends its runs (tests/simulated.py),
with what a real day brings: some runs late, one overlap skipped by `concurrency = "forbid"`, two hours
with nothing scheduling (missed fires, then one caught up), a few failures, and one-off runs in batches
beside. Then a real dashboard and a real pool take over at the real time: one command prints as the
pictures are taken. The test checks what the pictures must show; with QUEUECTL_SCREENSHOTS=DIR it
also writes them there (`QUEUECTL_SCREENSHOTS=docs/images pytest tests/browser/test_screenshots.py`
refreshes the README's).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from queuectl.model import Claim, Outcome
from queuectl.services import jobs, runs
from tests.browser.conftest import Dashboard
from tests.conftest import Queue
from tests.simulated import World

EXAMPLES = Path(__file__).parents[2] / "examples" / "jobs.d"
DAY = 24 * 3600.0
STEP = 300.0  # the scheduler looks every five minutes, as disk-usage fires
DOWN = (10 * 3600.0, 8 * 3600.0)  # hours ago: nothing scheduled or ran from 10 to 8 hours ago
WINDOW = {"width": 1280, "height": 860}


def simulate_day(q: Queue, now: float) -> None:
    """A day of history in the queue's store, ending at `now` (see the module's doc)."""
    directory = q.tmp / "jobs.d"
    shutil.copytree(EXAMPLES, directory)
    for path in (directory, *directory.iterdir()):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    world = World(q.tmp, now - DAY, db=Path(str(q.db)).name)
    try:
        plan = jobs.apply(world.store, [str(directory)])
        assert not plan.invalid, plan.changes
        ending: list[tuple[float, Claim, Outcome]] = []
        first = (now - DAY) // STEP * STEP + STEP  # on a five-minute boundary, as the fires
        for step in range(int(DAY // STEP) - 1):
            at = first + step * STEP
            if now - DOWN[0] <= at < now - DOWN[1]:
                continue
            for end_at, claim, outcome in sorted(e for e in ending if e[0] <= at + 0.2):
                world.end(claim, end_at, outcome=outcome)
            ending = [e for e in ending if e[0] > at + 0.2]
            world.look(at + 0.2)
            for n in range(step * 7 % 5):
                world.clock.now = at + 0.3
                one_off = {"id": f"batch-{step}-{n}", "command": f"echo batch {step}.{n}", "retries": 0}
                runs.add_one(world.store, one_off)
            ending += _start_all(world, step, at)
        for end_at, claim, outcome in ending:
            world.end(claim, min(end_at, now - 1), outcome=outcome)
    finally:
        world.store.close()


def _start_all(world: World, step: int, at: float) -> list[tuple[float, Claim, Outcome]]:
    """Start every due run a second (or, now and then, a minute and a half) after `at`; when each will end."""
    started = []
    late = 95.0 if step % 41 == 0 else 1.0
    world.clock.now = at + late
    for claim in world.store.claim_runs("pool", "host", 100, 3600.0):
        run = world.store.get_run(claim.run_id)
        assert run is not None
        seconds, outcome = 2.0 + step % 3, Outcome.COMPLETED
        if run.job == "slow-with-timeout":
            seconds, outcome = 5.0, Outcome.TIMEOUT
        elif run.job == "flaky-fetch" and claim.attempt == 1:
            outcome = Outcome.FAILED
        elif run.job == "disk-usage" and step == 200:
            seconds = 7 * 60.0  # past the next fire: forbid skips it
        elif (run.job == "disk-usage" and step % 67 == 0) or (run.id.endswith("-3") and step % 4 == 1):
            outcome = Outcome.FAILED
        started.append((world.clock.now + seconds, claim, outcome))
    return started


def shoot(page: Any, name: str, scheme: str) -> None:
    into = os.environ.get("QUEUECTL_SCREENSHOTS")
    if into:
        page.screenshot(path=str(Path(into) / f"dashboard-{name}-{scheme}.png"))
    else:
        page.screenshot()  # taken all the same: a page that cannot be drawn fails here


def test_the_readme_pictures_overview_timeline_and_a_live_run(q: Queue, browser: Any) -> None:
    simulate_day(q, time.time())
    release = q.tmp / "release"  # the command waits for it, in its working directory (the queue's)
    talking = (
        'for n in 1 2 3; do echo "copying part $n of 4"; sleep 0.1; done; '
        "while [ ! -e release ]; do sleep 0.1; done; echo 'part 4 copied'"
    )
    q("enqueue", "--id", "backup-1", "--command", talking)
    from tests.browser.conftest import start_dashboard, stop_dashboard

    served: Dashboard = start_dashboard(q)
    q.start_pool("--count", "2")
    try:
        for scheme in ("light", "dark"):
            context = browser.new_context(color_scheme=scheme, viewport=WINDOW)
            page = context.new_page()
            page.goto(f"{served.url}/")
            page.locator("#pools tr[data-pool-id]").first.wait_for()
            page.get_by_text("no scheduler runs").wait_for(state="detached")  # the pool took the scheduler's seat
            assert page.locator("#charts svg.bars").count() == 2
            assert "failed" in page.locator("#charts").inner_text()
            assert page.locator('[data-count="dead"] .figure').inner_text() != "0"
            shoot(page, "overview", scheme)
            page.goto(f"{served.url}/jobs/disk-usage")
            legend = page.locator(".timeline-legend").inner_text()
            counts = _counts(legend)
            assert counts["missed"] >= 20 and counts["late"] >= 3 and counts["skipped"] == 1, legend
            assert counts["on_time"] > 200 and counts["failed"] >= 3, legend
            shoot(page, "timeline", scheme)
            page.goto(f"{served.url}/runs/backup-1")
            page.locator("#output").filter(has_text="copying part 3 of 4").wait_for()
            shoot(page, "run", scheme)
            context.close()
    finally:
        release.touch()
        stop_dashboard(served)


def _counts(legend: str) -> dict[str, int]:
    """{kind: count} from the legend's text ("on time 280 late 4 ...")."""
    found = re.findall(r"([a-z]+(?: [a-z]+)?) (\d+)", " ".join(legend.split()))
    return {kind.replace(" ", "_"): int(count) for kind, count in found}
