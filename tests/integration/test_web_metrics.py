"""/metrics: the Prometheus exposition of a real store's known runs, parsed with prometheus_client's parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

import queuectl
from queuectl.web.app import create_app
from tests.conftest import LOCAL, Queue

TOKEN = "scrape-token"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queue]:
    """Two runs completed and one dead (no job), one waiting, and a suspended job."""
    q = Queue(tmp_path_factory.mktemp("metrics"))
    q("enqueue", "--id", "ok-1", "--command", "true")
    q("enqueue", "--id", "ok-2", "--command", "true")
    q("enqueue", "--id", "bad", "--command", "exit 2", "--retries", "0")
    q("apply", str(q.write_job("nightly", 'command = "true"\ncron = "0 2 * * *"\n')))
    q.burst(dead=True)
    q("suspend", "nightly")
    q("enqueue", "--id", "waiting", "--command", "true")
    yield q
    q.cleanup()


def scrape(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_scrape_with_the_bearer_token_counts_the_known_runs(known: Queue) -> None:
    web = TestClient(create_app(str(known.db), token=TOKEN), base_url=LOCAL)
    assert web.get("/metrics").status_code == 401
    answer = web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})  # as Prometheus sends it
    assert answer.status_code == 200
    assert answer.headers["content-type"] == CONTENT_TYPE_LATEST
    samples = scrape(answer.text)
    assert samples[("queuectl_job_runs_total", (("job", ""), ("outcome", "completed")))] == 2
    assert samples[("queuectl_job_runs_total", (("job", ""), ("outcome", "dead")))] == 1
    assert samples[("queuectl_runs", (("state", "pending"),))] == 1
    assert samples[("queuectl_queue_depth", ())] == 1
    assert samples[("queuectl_jobs", ())] == 1 and samples[("queuectl_jobs_suspended", ())] == 1
    assert samples[("queuectl_run_duration_seconds_count", ())] == 3
    said = scrape(known("metrics", "--prometheus").stdout)
    assert set(samples) == set(said)  # the same series as the CLI prints (values that age differ by the clock)


def test_metrics_are_served_read_only_and_without_a_token_on_loopback(known: Queue) -> None:
    answer = TestClient(create_app(str(known.db), read_only=True), base_url=LOCAL).get("/metrics")
    assert answer.status_code == 200
    assert scrape(answer.text)[("queuectl_build_info", (("version", queuectl.__version__),))] == 1


def test_metrics_say_503_when_the_store_cannot_be_read(tmp_path: Path) -> None:
    q = Queue(tmp_path)
    q("enqueue", "--command", "true")
    app = TestClient(create_app(str(q.db)), base_url=LOCAL)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{q.db}{suffix}").unlink(missing_ok=True)
    Path(q.db).write_bytes(b"not a database, " * 64)
    answer = app.get("/metrics")
    assert answer.status_code == 503 and "not a database" in answer.text
