"""`/metrics`: the exposition of known runs, parsed with prometheus_client's parser, on every backend."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

import queuectl
from queuectl.model import AttemptResult, Claim, NewRun, Outcome
from queuectl.services.prometheus import exposition
from queuectl.store.contract import Store
from tests.clock import Clock as FakeClock
from tests.contract import test_store_contract as contract
from tests.contract.test_store_contract import HOST, T0, claim_one, job_run, new_run, spec, worker

# The contract suite's fixtures: a store on every backend (SQLite file, real PostgreSQL) and its fake clock.
clock, opener, store = contract.clock, contract.opener, contract.store

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def run_attempt(store: Store, clock: FakeClock, run: NewRun, wait: float, duration: float, outcome: Outcome) -> None:
    """Enqueue `run` due now; it starts `wait` seconds later and ends `duration` seconds after that."""
    store.enqueue([run._replace(run_at=clock.now)])
    clock.advance(wait)
    claim: Claim = claim_one(store)
    result = AttemptResult(
        claim=claim,
        worker_id="w1",
        pgid=4242,
        started_at=clock.now,
        finished_at=clock.now + duration,
        exit_code=0 if outcome is Outcome.COMPLETED else 1,
        outcome=outcome,
        error=None,
        output_tail="",
    )
    store.finish_attempts(HOST, [result])
    clock.advance(duration)


def scrape(store: Store, now: float) -> Samples:
    text = exposition(store, now).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def known(store: Store, clock: FakeClock) -> Store:
    """Two runs of nightly (completed after 30s, dead after 2s), one of no job (2 hours), one waiting, one ahead."""
    store.put_job(spec("nightly"), "/jobs", "/jobs/nightly.toml", "h1")
    store.put_job(spec("hourly"), "/jobs", "/jobs/hourly.toml", "h2")
    store.set_suspended("hourly", True)
    store.set_fires("nightly", None, T0 + 86400, T0, "hash")
    run_attempt(store, clock, job_run("nightly", T0, "n1"), wait=10, duration=30, outcome=Outcome.COMPLETED)
    dead = job_run("nightly", T0 + 1, "n2")._replace(max_retries=0)
    run_attempt(store, clock, dead, wait=5, duration=2, outcome=Outcome.FAILED)
    run_attempt(store, clock, new_run("x1"), wait=100, duration=7200, outcome=Outcome.COMPLETED)
    store.enqueue([new_run("waiting", run_at=clock.now), new_run("ahead", run_at=clock.now + 3600)])
    store.register_worker(worker("w1"))
    clock.advance(60)
    return store


def test_runs_finished_by_job_and_outcome(known: Store, clock: FakeClock) -> None:
    got = scrape(known, clock.now)
    assert value(got, "queuectl_job_runs_total", job="nightly", outcome="completed") == 1
    assert value(got, "queuectl_job_runs_total", job="nightly", outcome="dead") == 1
    assert value(got, "queuectl_job_runs_total", job="nightly", outcome="cancelled") == 0
    assert value(got, "queuectl_job_runs_total", job="", outcome="completed") == 1
    assert value(got, "queuectl_runs", state="completed") == 2
    assert value(got, "queuectl_runs", state="dead") == 1
    assert value(got, "queuectl_runs", state="pending") == 1
    assert value(got, "queuectl_runs", state="scheduled") == 1
    assert value(got, "queuectl_queue_depth") == 1
    assert value(got, "queuectl_oldest_waiting_run_age_seconds") == 60


def test_duration_and_wait_histograms(known: Store, clock: FakeClock) -> None:
    got = scrape(known, clock.now)
    duration = "queuectl_run_duration_seconds"
    assert value(got, f"{duration}_count") == 3
    assert value(got, f"{duration}_sum") == 7232
    buckets = {le: value(got, f"{duration}_bucket", le=le) for le in ("1.0", "5.0", "30.0", "3600.0", "7200.0", "+Inf")}
    assert buckets == {"1.0": 0, "5.0": 1, "30.0": 2, "3600.0": 2, "7200.0": 3, "+Inf": 3}
    wait = "queuectl_queue_wait_seconds"
    assert (value(got, f"{wait}_count"), value(got, f"{wait}_sum")) == (3, 115)
    assert value(got, f"{wait}_bucket", le="5.0") == 1
    assert value(got, f"{wait}_bucket", le="15.0") == 2


def test_job_timestamps_pools_and_build_info(known: Store, clock: FakeClock) -> None:
    got = scrape(known, clock.now)
    assert value(got, "queuectl_job_last_success_timestamp_seconds", job="nightly") == T0 + 40
    assert value(got, "queuectl_job_last_run_timestamp_seconds", job="nightly") == T0 + 45
    assert value(got, "queuectl_job_next_fire_timestamp_seconds", job="nightly") == T0 + 86400
    assert ("queuectl_job_last_run_timestamp_seconds", (("job", "hourly"),)) not in got
    assert value(got, "queuectl_job_schedule_lateness_seconds", job="nightly") == 0
    assert value(got, "queuectl_jobs") == 2
    assert value(got, "queuectl_jobs_suspended") == 1
    assert value(got, "queuectl_pools") == 1
    registered = clock.now - 60  # the store stamps the heartbeat with its clock; the scrape is a minute later
    assert value(got, "queuectl_pool_last_heartbeat_timestamp_seconds", pool="w1", host=HOST) == registered
    assert value(got, "queuectl_pool_slots", pool="w1", host=HOST) == 4
    assert value(got, "queuectl_build_info", version=queuectl.__version__) == 1


def test_schedule_lateness_grows_past_the_next_fire(known: Store, clock: FakeClock) -> None:
    """No scheduler looked at nightly since its next fire (T0 + 1 day): the scrape says by how much."""
    later = T0 + 86400 + 600
    assert value(scrape(known, later), "queuectl_job_schedule_lateness_seconds", job="nightly") == 600
    assert ("queuectl_job_schedule_lateness_seconds", (("job", "hourly"),)) not in scrape(known, later)


def test_empty_store_exposes_zeros(store: Store, clock: FakeClock) -> None:
    got = scrape(store, clock.now)
    assert value(got, "queuectl_queue_depth") == 0
    assert value(got, "queuectl_oldest_waiting_run_age_seconds") == 0
    assert value(got, "queuectl_run_duration_seconds_count") == 0
    assert value(got, "queuectl_run_duration_seconds_bucket", le="+Inf") == 0


def test_counters_never_go_backwards_when_runs_are_cleared_or_retried(known: Store, clock: FakeClock) -> None:
    """Runs finished and the histograms come from the rollups the settles wrote: deleting runs keeps them."""
    assert known.retry_dead(["n2"], reset_attempts=False) == ["n2"]
    claim = claim_one(known)
    assert claim.run_id == "n2"
    again = AttemptResult(claim, "w1", 4242, clock.now, clock.now + 1, 0, Outcome.COMPLETED, None, "")
    known.finish_attempts(HOST, [again])
    assert known.delete_runs("completed") == ["n1", "n2", "x1"]
    got = scrape(known, clock.now)
    assert value(got, "queuectl_job_runs_total", job="nightly", outcome="completed") == 2
    assert value(got, "queuectl_job_runs_total", job="nightly", outcome="dead") == 1  # counted when it died
    assert value(got, "queuectl_job_runs_total", job="", outcome="completed") == 1
    assert value(got, "queuectl_runs", state="completed") == 0  # a gauge: what is in the store now
    assert value(got, "queuectl_runs", state="dead") == 0
    assert value(got, "queuectl_run_duration_seconds_count") == 4
    assert value(got, "queuectl_queue_wait_seconds_count") == 3  # a retry's attempt is not a first wait
    assert value(got, "queuectl_job_last_success_timestamp_seconds", job="nightly") == clock.now + 1
