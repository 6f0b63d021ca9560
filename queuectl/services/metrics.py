"""What `metrics --detailed` shows: per job and overall figures, and the pools' utilisation."""

from __future__ import annotations

from queuectl import metrics
from queuectl.model import STATES
from queuectl.services.pools import is_running, pools
from queuectl.store.contract import Store


def detailed_metrics(store: Store) -> metrics.Detailed:
    """What `metrics --detailed` says: per job and overall (read without a write lock: a reader)."""
    counts = store.job_counts()
    attempts = store.metric_attempts()
    views = pools(store)
    now = store.now()
    return metrics.detailed(counts, attempts, [(v.worker, is_running(v.state)) for v in views], now, STATES)
