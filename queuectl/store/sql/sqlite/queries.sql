-- Every statement the SQLite store runs, by name. Parameters are named (:x).

-- name: insert_run
INSERT INTO runs (id, job, command, state, priority, attempts, max_retries, backoff_base,
                  backoff_max, timeout, cwd, env, created_at, updated_at, run_at)
VALUES (:id, :job, :command, 'pending', :priority, 0, :max_retries, :backoff_base,
        :backoff_max, :timeout, :cwd, :env, :now, :now, :run_at);

-- name: existing_ids
SELECT id FROM runs WHERE id IN (SELECT value FROM json_each(:ids));

-- name: claim_runs
UPDATE runs
   SET state = 'running', attempts = attempts + 1, tries = tries + 1, worker_id = :worker_id, host = :host,
       lease_expires = :lease_expires, started_at = :now, updated_at = :now,
       finished_at = NULL, pgid = NULL, proc_start = NULL, log_path = NULL
 WHERE id IN (SELECT id FROM runs INDEXED BY runs_ready
               WHERE state IN ('pending', 'failed') AND run_at <= :now
               ORDER BY priority DESC, created_at, id
               LIMIT :limit)
RETURNING id, tries, attempts, max_retries, backoff_base, backoff_max, command, timeout, cwd, env,
          priority, created_at;

-- name: record_process
UPDATE runs SET pgid = :pgid, proc_start = :proc_start, log_path = :log_path, started_at = :started_at
 WHERE id = :run_id AND state = 'running' AND worker_id = :worker_id AND tries = :n;

-- name: lost_run
-- A run found expired, if nothing changed since: same owner, same lease.
SELECT id, tries, attempts, max_retries, backoff_base, backoff_max, command, timeout, cwd, env,
       host, pgid, log_path, started_at
  FROM runs WHERE id = :run_id AND state = 'running' AND worker_id IS :worker_id
   AND lease_expires IS :lease_expires;

-- name: held_runs
SELECT id, tries FROM runs INDEXED BY runs_running
 WHERE worker_id = :worker_id AND state = 'running'
   AND id IN (SELECT value FROM json_each(:ids));

-- name: settle_run
UPDATE runs
   SET state = :state, run_at = :run_at, started_at = :started_at, finished_at = :finished_at,
       updated_at = :now,
       exit_code = :exit_code, error = :error, output_tail = :output_tail, log_path = :log_path,
       attempts = attempts - :uncount, worker_id = NULL, lease_expires = NULL
 WHERE id = :run_id AND worker_id = :worker_id AND state = 'running' AND tries = :n;

-- name: insert_attempt
INSERT INTO attempts (run_id, n, worker_id, host, pgid, started_at, finished_at, exit_code,
                      outcome, error, log_path, output_tail)
VALUES (:run_id, :n, :worker_id, :host, :pgid, :started_at, :finished_at, :exit_code,
        :outcome, :error, :log_path, :output_tail);

-- name: release_run
UPDATE runs
   SET state = 'pending', attempts = attempts - 1, tries = tries - 1, worker_id = NULL,
       lease_expires = NULL, host = NULL, updated_at = :now,
       started_at = CASE WHEN tries = 1 THEN NULL ELSE started_at END
 WHERE id = :run_id AND worker_id = :worker_id AND state = 'running' AND tries = :n;

-- name: extend_leases
UPDATE runs INDEXED BY runs_running SET lease_expires = :lease_expires
 WHERE worker_id = :worker_id AND state = 'running';

-- name: touch_worker
UPDATE workers SET heartbeat_at = :now WHERE id = :worker_id
RETURNING stop_requested;

-- name: insert_worker
INSERT OR REPLACE INTO workers (id, host, pid, proc_start, slots, started_at, heartbeat_at,
                                stop_requested)
VALUES (:id, :host, :pid, :proc_start, :slots, :now, :now, 0);

-- name: delete_worker
DELETE FROM workers WHERE id = :worker_id;

-- name: list_workers
SELECT id, host, pid, proc_start, slots, started_at, heartbeat_at, stop_requested,
       (SELECT json_group_array(r.id) FROM runs AS r
         WHERE r.worker_id = workers.id AND r.state = 'running') AS running
  FROM workers ORDER BY host, started_at;

-- name: request_stop
UPDATE workers SET stop_requested = 1 WHERE id IN (SELECT value FROM json_each(:ids));

-- name: find_expired
SELECT id, worker_id, host, pgid, proc_start, lease_expires, tries FROM runs INDEXED BY runs_running
 WHERE state = 'running'
   AND (lease_expires < :now OR worker_id IN (SELECT value FROM json_each(:dead_workers)))
 LIMIT :limit;

-- name: next_due
SELECT min(run_at) FROM runs INDEXED BY runs_due WHERE state IN ('pending', 'failed');

-- name: has_work
SELECT EXISTS (SELECT 1 FROM runs WHERE state = 'failed')
    OR EXISTS (SELECT 1 FROM runs WHERE state = 'pending' AND run_at <= :now);

-- name: counts
SELECT state, count(*) FROM runs GROUP BY state;

-- name: list_runs
SELECT * FROM runs ORDER BY created_at, id LIMIT :limit;

-- name: list_runs_in_state
SELECT * FROM runs WHERE state = :state ORDER BY created_at, id LIMIT :limit;

-- name: get_run
SELECT * FROM runs WHERE id = :id;

-- name: list_attempts
SELECT * FROM attempts WHERE run_id = :run_id ORDER BY n;

-- name: retry_dead
UPDATE runs
   SET state = 'pending', run_at = :now, updated_at = :now, error = NULL,
       attempts = CASE WHEN :reset THEN 0 ELSE attempts END
 WHERE state = 'dead' AND (:all OR id IN (SELECT value FROM json_each(:ids)))
RETURNING id;

-- name: delete_runs
DELETE FROM runs WHERE state <> 'running' AND (:state IS NULL OR state = :state)
RETURNING id;

-- name: config_all
SELECT key, value FROM config;

-- name: config_set
INSERT INTO config (key, value) VALUES (:key, :value)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: attempt_stats
SELECT count(*), avg(finished_at - started_at),
       sum(outcome = 'completed'), sum(outcome <> 'completed')
  FROM attempts WHERE outcome <> 'interrupted';

-- name: attempt_duration_at
SELECT finished_at - started_at AS d FROM attempts WHERE outcome <> 'interrupted'
 ORDER BY d LIMIT 1 OFFSET :offset;

-- name: completed_since
SELECT count(*) FROM runs WHERE state = 'completed' AND finished_at >= :since;
