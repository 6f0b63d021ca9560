-- The waiting runs by job, state and due time: a job's next run, and the runs per job and state that
-- `status`, `list --jobs` and the dashboard show, read from this index alone, however long the history
-- (the finished runs are counted by the rollups). Pools write it as they write runs_due: an entry at
-- enqueue or retry, gone at the claim.
CREATE INDEX IF NOT EXISTS runs_waiting ON runs (job, state, run_at) WHERE state IN ('pending', 'failed');
