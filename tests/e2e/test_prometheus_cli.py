"""`queuectl metrics --prometheus`: what `/metrics` will serve, printed by the CLI over real runs."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Queue


def test_metrics_prometheus_counts_real_runs(q: Queue) -> None:
    q("enqueue", '{"id":"ok","command":"true"}')
    q("enqueue", '{"id":"bad","command":"false","max_retries":0}')
    q("enqueue", '{"id":"later","command":"true","run_at":"2099-01-01T00:00:00Z"}')
    q.burst(dead=True)
    text = q("metrics", "--prometheus").stdout
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("queuectl_job_runs_total", (("job", ""), ("outcome", "completed")))] == 1
    assert samples[("queuectl_job_runs_total", (("job", ""), ("outcome", "dead")))] == 1
    assert samples[("queuectl_runs", (("state", "scheduled"),))] == 1
    assert samples[("queuectl_queue_depth", ())] == 0
    assert samples[("queuectl_run_duration_seconds_count", ())] == 2
    assert samples[("queuectl_run_duration_seconds_bucket", (("le", "+Inf"),))] == 2
    assert samples[("queuectl_queue_wait_seconds_count", ())] == 2
    assert [k for k in samples if k[0] == "queuectl_build_info"]
    assert "# TYPE queuectl_job_runs_total counter" in text


def test_metrics_prometheus_with_json_is_bad_usage(q: Queue) -> None:
    done = q("metrics", "--prometheus", "--json", check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "--prometheus" in done.stderr
    assert "Traceback" not in done.stderr
