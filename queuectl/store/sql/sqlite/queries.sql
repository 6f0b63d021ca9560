-- Every statement the SQLite store runs, by name. Parameters are named (:x).

-- name: insert_run
INSERT INTO runs (id, job, command, state, priority, attempts, max_retries, backoff_base,
                  backoff_max, timeout, cwd, env, created_at, updated_at, run_at, scheduled_for,
                  keep_children)
VALUES (:id, :job, :command, 'pending', :priority, 0, :max_retries, :backoff_base,
        :backoff_max, :timeout, :cwd, :env, :now, :now, :run_at, :scheduled_for,
        :keep_children);

-- name: insert_job_run
-- A job's run; ignored when that (job, scheduled time) already has one.
INSERT OR IGNORE INTO runs (id, job, command, state, priority, attempts, max_retries, backoff_base,
                  backoff_max, timeout, cwd, env, created_at, updated_at, run_at, scheduled_for,
                  keep_children)
VALUES (:id, :job, :command, 'pending', :priority, 0, :max_retries, :backoff_base,
        :backoff_max, :timeout, :cwd, :env, :now, :now, :run_at, :scheduled_for,
        :keep_children);

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
          priority, created_at, job, keep_children, scheduled_for;

-- name: claim_runs_aged
-- As claim_runs, with priority aging: a waiting run gains a level per :aging seconds waited since it was
-- due (created, or its run_at), up to 10. Still indexed: the oldest :limit runs of each of the ten levels
-- are found through runs_ready (within a level the oldest has aged most), and only those are ranked.
WITH levels (level) AS (VALUES (10), (9), (8), (7), (6), (5), (4), (3), (2), (1)),
picked AS (
    SELECT r.id FROM levels, runs r
     WHERE r.id IN (SELECT id FROM runs INDEXED BY runs_ready
                     WHERE state IN ('pending', 'failed') AND priority = levels.level AND run_at <= :now
                     ORDER BY priority DESC, created_at, id
                     LIMIT :limit)
     ORDER BY min(10, r.priority + CAST((:now - max(r.created_at, r.run_at)) / :aging AS INTEGER)) DESC,
              r.created_at, r.id
     LIMIT :limit)
UPDATE runs
   SET state = 'running', attempts = attempts + 1, tries = tries + 1, worker_id = :worker_id, host = :host,
       lease_expires = :lease_expires, started_at = :now, updated_at = :now,
       finished_at = NULL, pgid = NULL, proc_start = NULL, log_path = NULL
 WHERE id IN (SELECT id FROM picked)
RETURNING id, tries, attempts, max_retries, backoff_base, backoff_max, command, timeout, cwd, env,
          min(10, priority + CAST((:now - max(created_at, run_at)) / :aging AS INTEGER)) AS priority,
          created_at, job, keep_children, scheduled_for;

-- name: record_process
UPDATE runs SET pgid = :pgid, proc_start = :proc_start, log_path = :log_path, started_at = :started_at
 WHERE id = :run_id AND state = 'running' AND worker_id = :worker_id AND tries = :n;

-- name: lost_run
-- A run found expired, if nothing changed since: same owner, same lease.
SELECT id, tries, attempts, max_retries, backoff_base, backoff_max, command, timeout, cwd, env,
       host, pgid, log_path, started_at, job, keep_children, scheduled_for, run_at, created_at, cancel_requested
  FROM runs WHERE id = :run_id AND state = 'running' AND worker_id IS :worker_id
   AND lease_expires IS :lease_expires;

-- name: held_runs
SELECT id, tries, cancel_requested, run_at, created_at FROM runs INDEXED BY runs_running
 WHERE worker_id = :worker_id AND state = 'running'
   AND id IN (SELECT value FROM json_each(:ids));

-- name: settle_run
-- A run held by no pool (worker_id NULL) is settled by the rescue as worker ''.
-- run_at keeps the time the run was asked for when it ends; a retry or a requeue moves it to when it may start.
-- A run whose cancellation was asked for (a newer fire replaced it) ends cancelled, not retried.
UPDATE runs
   SET state = CASE WHEN cancel_requested AND :state <> 'completed' THEN 'cancelled' ELSE :state END,
       run_at = CASE WHEN :state IN ('failed', 'pending') THEN :run_at ELSE run_at END,
       started_at = :started_at, finished_at = :finished_at, updated_at = :now,
       exit_code = :exit_code,
       error = CASE WHEN cancel_requested AND :state <> 'completed' THEN error ELSE :error END,
       output_tail = :output_tail, log_path = :log_path,
       attempts = attempts - :uncount, last_pool = worker_id, worker_id = NULL, lease_expires = NULL
 WHERE id = :run_id AND COALESCE(worker_id, '') = :worker_id AND state = 'running' AND tries = :n;

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

-- name: held_by_worker
SELECT id, tries FROM runs INDEXED BY runs_running WHERE worker_id = :worker_id AND state = 'running';

-- name: extend_leases
UPDATE runs INDEXED BY runs_running SET lease_expires = :lease_expires
 WHERE worker_id = :worker_id AND state = 'running';

-- name: touch_worker
UPDATE workers SET heartbeat_at = :now WHERE id = :worker_id
RETURNING stop_requested;

-- name: insert_worker
INSERT OR REPLACE INTO workers (id, host, pid, proc_start, slots, started_at, heartbeat_at,
                                stop_requested, machine)
VALUES (:id, :host, :pid, :proc_start, :slots, :now, :now, 0, :machine);

-- name: delete_worker
DELETE FROM workers WHERE id = :worker_id;

-- name: list_workers
SELECT id, host, pid, proc_start, slots, started_at, heartbeat_at, stop_requested, machine,
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
-- Runs per stored state, none of it a scan of the history: the waiting runs on their partial index, the
-- running ones on theirs, the finished ones from the rollup (run_totals.kept, kept by the verbs that
-- finish, delete and retry runs).
SELECT state, count(*) FROM runs INDEXED BY runs_waiting WHERE state IN ('pending', 'failed') GROUP BY state
UNION ALL
SELECT 'running', count(*) FROM runs INDEXED BY runs_running WHERE state = 'running'
UNION ALL
SELECT outcome, sum(kept) FROM run_totals WHERE outcome IN ('completed', 'dead', 'cancelled') GROUP BY outcome;

-- name: scheduled_count
-- Pending runs not yet due: shown as scheduled (model.shown_state), stored pending.
SELECT count(*) FROM runs INDEXED BY runs_due
 WHERE state IN ('pending', 'failed') AND state = 'pending' AND run_at > :now;

-- The listings of runs, one keyset page each: all runs on runs_listed (created_at, id), one job's on
-- runs_job (job, created_at, id), oldest or newest first. A page starts after (:after_created, :after_id)
-- and ends at (:end_created, :end_id) (inclusive): where a bounded search stops. :state (its run_at
-- bounds from model.stored_filter) and :text (a substring of the command or the id) are NULL for none:
-- rows the filters refuse are walked over, and only the walk's end bounds how many.
-- name: list_runs
SELECT * FROM runs INDEXED BY runs_listed
 WHERE (created_at, id) > (:after_created, :after_id) AND (created_at, id) <= (:end_created, :end_id)
   AND (:state IS NULL OR state = :state) AND run_at > :due_after AND run_at <= :due_until
   AND (:text IS NULL OR instr(command, :text) > 0 OR instr(id, :text) > 0)
 ORDER BY created_at, id LIMIT :limit;

-- name: list_runs_newest
SELECT * FROM runs INDEXED BY runs_listed
 WHERE (created_at, id) < (:after_created, :after_id) AND (created_at, id) >= (:end_created, :end_id)
   AND (:state IS NULL OR state = :state) AND run_at > :due_after AND run_at <= :due_until
   AND (:text IS NULL OR instr(command, :text) > 0 OR instr(id, :text) > 0)
 ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: list_job_runs
SELECT * FROM runs INDEXED BY runs_job
 WHERE job = :job AND (created_at, id) > (:after_created, :after_id) AND (created_at, id) <= (:end_created, :end_id)
   AND (:state IS NULL OR state = :state) AND run_at > :due_after AND run_at <= :due_until
   AND (:text IS NULL OR instr(command, :text) > 0 OR instr(id, :text) > 0)
 ORDER BY created_at, id LIMIT :limit;

-- name: list_job_runs_newest
SELECT * FROM runs INDEXED BY runs_job
 WHERE job = :job AND (created_at, id) < (:after_created, :after_id) AND (created_at, id) >= (:end_created, :end_id)
   AND (:state IS NULL OR state = :state) AND run_at > :due_after AND run_at <= :due_until
   AND (:text IS NULL OR instr(command, :text) > 0 OR instr(id, :text) > 0)
 ORDER BY created_at DESC, id DESC LIMIT :limit;

-- The index entries :offset and :offset + 1 steps after (:after_created, :after_id) in a listing's order:
-- where a search of :offset + 1 runs ends, and whether runs remain beyond. Read from the index alone
-- (no row), so they cost little beside the search.
-- name: list_runs_end
SELECT created_at, id FROM runs INDEXED BY runs_listed WHERE (created_at, id) > (:after_created, :after_id)
 ORDER BY created_at, id LIMIT 2 OFFSET :offset;

-- name: list_runs_newest_end
SELECT created_at, id FROM runs INDEXED BY runs_listed WHERE (created_at, id) < (:after_created, :after_id)
 ORDER BY created_at DESC, id DESC LIMIT 2 OFFSET :offset;

-- name: list_job_runs_end
SELECT created_at, id FROM runs INDEXED BY runs_job WHERE job = :job AND (created_at, id) > (:after_created, :after_id)
 ORDER BY created_at, id LIMIT 2 OFFSET :offset;

-- name: list_job_runs_newest_end
SELECT created_at, id FROM runs INDEXED BY runs_job WHERE job = :job AND (created_at, id) < (:after_created, :after_id)
 ORDER BY created_at DESC, id DESC LIMIT 2 OFFSET :offset;

-- name: scheduled_runs
-- Runs not yet due, soonest first: what `schedule` lists beside cron fires (a NULL limit: all).
SELECT * FROM runs INDEXED BY runs_due WHERE state IN ('pending', 'failed') AND state = 'pending' AND run_at > :now
 ORDER BY run_at, created_at, id LIMIT coalesce(:limit, -1);

-- name: get_run
SELECT * FROM runs WHERE id = :id;

-- name: run_ids_newest
-- The shell's completion, on every Tab: the newest ids, walking the runs_listed index backwards.
SELECT id FROM runs INDEXED BY runs_listed ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: run_ids_from
-- Ids in [:low, :high) by the primary key (the caller keeps those that start with its prefix).
SELECT id FROM runs WHERE id >= :low AND id < :high ORDER BY id LIMIT :limit;

-- name: list_attempts
SELECT * FROM attempts WHERE run_id = :run_id ORDER BY n;

-- name: retry_dead
-- Without reset, the retry grants one attempt more than those made: the allowance grows with it.
-- :retries (when not NULL) grants that many retries after the next attempt; :set_timeout replaces the timeout.
UPDATE runs
   SET state = 'pending', run_at = :now, updated_at = :now, error = NULL,
       attempts = CASE WHEN :reset THEN 0 ELSE attempts END,
       max_retries = CASE WHEN :retries IS NOT NULL THEN (CASE WHEN :reset THEN 0 ELSE attempts END) + :retries
                          WHEN :reset THEN max_retries ELSE max(max_retries, attempts) END,
       timeout = CASE WHEN :set_timeout THEN :timeout ELSE timeout END
 WHERE state = 'dead' AND (:all OR id IN (SELECT value FROM json_each(:ids)))
   AND (:job IS NULL OR job = :job)
RETURNING id, job;

-- name: cancel_waiting_runs
-- `cancel ID...`: a run that waits (any state but running and the finished ones) is cancelled at once.
UPDATE runs SET state = 'cancelled', updated_at = :now, error = :reason
 WHERE state NOT IN ('running', 'completed', 'dead', 'cancelled') AND id IN (SELECT value FROM json_each(:ids))
RETURNING id, job;

-- name: cancel_running_runs
-- A running one: its pool (on any host) sees cancel_requested, stops its process group, settles it cancelled.
UPDATE runs SET cancel_requested = 1, updated_at = :now, error = :reason
 WHERE state = 'running' AND id IN (SELECT value FROM json_each(:ids))
RETURNING id;

-- name: delete_dead
-- Dead runs by id, or all (:all) of them; only job :job's when it is not NULL.
DELETE FROM runs WHERE state = 'dead' AND (:all OR id IN (SELECT value FROM json_each(:ids)))
   AND (:job IS NULL OR job = :job)
RETURNING id, job;

-- name: delete_runs
-- A shown state: scheduled and pending are both stored pending, parted by run_at (model.stored_filter).
DELETE FROM runs WHERE state <> 'running'
   AND (:state IS NULL OR (state = :state AND run_at > :due_after AND run_at <= :due_until))
RETURNING id, state, job;

-- name: config_all
SELECT key, value FROM config WHERE key <> 'scheduler-seat';

-- name: config_set
INSERT INTO config (key, value) VALUES (:key, :value)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: attempt_stats
SELECT count(*), avg(finished_at - started_at),
       sum(outcome = 'completed'), sum(outcome <> 'completed')
  FROM attempts WHERE outcome NOT IN ('interrupted', 'cancelled');

-- name: attempt_duration_at
SELECT finished_at - started_at AS d FROM attempts WHERE outcome NOT IN ('interrupted', 'cancelled')
 ORDER BY d LIMIT 1 OFFSET :offset;

-- name: metric_attempts
-- `metrics --detailed`: every attempt, and the attempts running now (outcome 'running'), with the run's job;
-- `wait`, for a run's first attempt: how long it waited to start (from its run_at, else its creation).
SELECT r.job, a.outcome, a.started_at, a.finished_at, a.worker_id,
       CASE WHEN a.n = 1 THEN a.started_at - CASE WHEN r.run_at <= a.started_at THEN r.run_at ELSE r.created_at END
       END AS wait
  FROM attempts a JOIN runs r ON r.id = a.run_id
UNION ALL
SELECT job, 'running', started_at, NULL, worker_id,
       CASE WHEN tries = 1 THEN started_at - CASE WHEN run_at <= started_at THEN run_at ELSE created_at END END
  FROM runs WHERE state = 'running';

-- name: job_counts
-- Runs per job and shown state (a pending run not yet due is scheduled), none of it a scan of the history:
-- waiting and running runs on their partial indexes, finished ones from the rollup's `kept` (as `counts`;
-- its job '' is no job).
SELECT job, CASE WHEN state = 'pending' AND run_at > :now THEN 'scheduled' ELSE state END AS shown, count(*)
  FROM runs INDEXED BY runs_waiting WHERE state IN ('pending', 'failed') GROUP BY job, shown
UNION ALL
SELECT job, 'running', count(*) FROM runs INDEXED BY runs_running WHERE state = 'running' GROUP BY job
UNION ALL
SELECT NULLIF(job, ''), outcome, sum(kept) FROM run_totals WHERE outcome IN ('completed', 'dead', 'cancelled')
 GROUP BY job, outcome HAVING sum(kept) > 0;

-- name: completed_since
SELECT count(*) FROM runs WHERE state = 'completed' AND finished_at >= :since;

-- name: list_jobs
SELECT * FROM jobs ORDER BY name;

-- name: get_job
SELECT * FROM jobs WHERE name = :name;

-- name: upsert_job
INSERT INTO jobs (name, spec, spec_hash, run_hash, source, file, file_hash, git_commit, git_dirty,
                  status_dir, error, created_at, updated_at, version_at)
VALUES (:name, :spec, :spec_hash, :run_hash, :source, :file, :file_hash, :git_commit, :git_dirty,
        :status_dir, NULL, :now, :now, :now)
ON CONFLICT (name) DO UPDATE
   SET spec = excluded.spec, spec_hash = excluded.spec_hash, source = excluded.source,
       file = excluded.file, file_hash = excluded.file_hash, git_commit = excluded.git_commit,
       git_dirty = excluded.git_dirty, status_dir = excluded.status_dir, error = NULL,
       updated_at = CASE WHEN jobs.spec_hash = excluded.spec_hash THEN jobs.updated_at ELSE :now END,
       version_at = CASE WHEN jobs.run_hash = excluded.run_hash THEN jobs.version_at ELSE :now END,
       next_fire = CASE WHEN jobs.spec_hash = excluded.spec_hash THEN jobs.next_fire ELSE NULL END,
       run_hash = excluded.run_hash;

-- name: job_times
SELECT name, created_at, updated_at, version_at, suspended FROM jobs WHERE name IN (SELECT value FROM json_each(:names));

-- name: delete_job
DELETE FROM jobs WHERE name = :name;

-- name: set_job_error
UPDATE jobs SET error = :error WHERE name = :name AND error IS NOT :error;

-- name: cancel_job_runs
-- Runs of a job that have not started: a running one finishes under the spec it started with.
UPDATE runs SET state = 'cancelled', updated_at = :now, error = :reason
 WHERE job = :name AND state IN ('pending', 'failed')
RETURNING id, job;

-- name: last_job_run
SELECT * FROM runs INDEXED BY runs_job WHERE job = :name ORDER BY created_at DESC LIMIT 1;

-- name: last_started_job_run
-- The run `logs JOB` shows: the one started last (a retry's wait keeps its last attempt's start).
SELECT * FROM runs INDEXED BY runs_job WHERE job = :name AND tries > 0 AND started_at IS NOT NULL
 ORDER BY started_at DESC, created_at DESC LIMIT 1;

-- name: next_job_run
SELECT min(run_at) FROM runs INDEXED BY runs_waiting WHERE job = :name AND state IN ('pending', 'failed');

-- name: job_run_counts
-- One job's runs per shown state, bounded by the queue, not by the job's history (as job_counts).
SELECT CASE WHEN state = 'pending' AND run_at > :now THEN 'scheduled' ELSE state END AS shown, count(*)
  FROM runs INDEXED BY runs_waiting WHERE state IN ('pending', 'failed') AND job = :name GROUP BY shown
UNION ALL
SELECT 'running', count(*) FROM runs INDEXED BY runs_running WHERE state = 'running' AND job = :name HAVING count(*) > 0
UNION ALL
SELECT outcome, sum(kept) FROM run_totals WHERE job = :name AND outcome IN ('completed', 'dead', 'cancelled')
 GROUP BY outcome HAVING sum(kept) > 0;

-- name: cron_jobs_due
-- Cron jobs the scheduler must look at: never looked at, or a fire has come.
-- Disabled ones too: the scheduler records that they are off, so that enabling one again starts afresh.
SELECT * FROM jobs WHERE suspended = 0 AND (next_fire IS NULL OR next_fire <= :now)
   AND json_extract(spec, '$.cron') IS NOT NULL
 ORDER BY next_fire IS NOT NULL, next_fire, name
 LIMIT :limit;

-- name: next_fire_min
-- A cron job not looked at yet (new, changed, resumed) is due at once.
SELECT min(coalesce(next_fire, 0)) FROM jobs
 WHERE suspended = 0 AND json_extract(spec, '$.cron') IS NOT NULL;

-- name: set_fires
UPDATE jobs SET last_fire = :last_fire, next_fire = :next_fire, schedule_from = :schedule_from,
                schedule_hash = :schedule_hash
 WHERE name = :name;

-- name: set_suspended
UPDATE jobs SET suspended = :suspended, next_fire = NULL,
                schedule_from = CASE WHEN :suspended THEN schedule_from ELSE :now END
 WHERE name = :name
RETURNING name;

-- name: fire_runs
-- A cron job's timeline: its runs whose fire (scheduled_for) is in (:start, :end], latest first, at most :limit.
-- Two index ranges: runs_fire holds the live runs (one per fire), runs_fire_cancelled the cancelled ones.
-- first_started_at: when its first attempt started (a retry's start would make an on-time fire look late).
SELECT id, scheduled_for, state, run_at, tries,
       CASE WHEN tries <= 1 THEN started_at ELSE (SELECT a.started_at FROM attempts AS a WHERE a.run_id = runs.id AND a.n = 1) END AS first_started_at
  FROM runs INDEXED BY runs_fire
 WHERE job = :job AND scheduled_for > :start AND scheduled_for <= :end AND state <> 'cancelled'
UNION ALL
SELECT id, scheduled_for, state, run_at, tries,
       CASE WHEN tries <= 1 THEN started_at ELSE (SELECT a.started_at FROM attempts AS a WHERE a.run_id = runs.id AND a.n = 1) END AS first_started_at
  FROM runs INDEXED BY runs_fire_cancelled
 WHERE job = :job AND scheduled_for > :start AND scheduled_for <= :end AND state = 'cancelled'
 ORDER BY scheduled_for DESC, id DESC LIMIT :limit;

-- name: unfinished_job_runs
SELECT id, state FROM runs INDEXED BY runs_job WHERE job = :name AND state IN ('pending', 'running', 'failed');

-- name: cancel_running_job_runs
UPDATE runs SET cancel_requested = 1, updated_at = :now, error = :reason
 WHERE job = :name AND state = 'running'
RETURNING id;

-- name: cancel_requested
SELECT id, tries FROM runs INDEXED BY runs_running
 WHERE worker_id = :worker_id AND state = 'running' AND cancel_requested = 1;

-- name: insert_skipped_run
INSERT OR IGNORE INTO runs (id, job, command, state, priority, attempts, max_retries, backoff_base,
                  backoff_max, timeout, cwd, env, created_at, updated_at, run_at, scheduled_for, error,
                  keep_children)
VALUES (:id, :job, :command, 'cancelled', :priority, 0, :max_retries, :backoff_base,
        :backoff_max, :timeout, :cwd, :env, :now, :now, :run_at, :scheduled_for, :reason,
        :keep_children)
RETURNING id;


-- name: seat_take
-- The scheduler's seat, a row of the config table (hidden from config_all): kept by its holder,
-- which renews its lease at each look, taken by another once the lease has run out.
INSERT INTO config (key, value)
VALUES ('scheduler-seat', json_object('holder', :holder, 'pool_id', :pool_id, 'host', :host, 'pid', :pid,
                                      'lease_until', :now + :lease, 'last_tick_at', :now))
    ON CONFLICT (key) DO UPDATE SET value = excluded.value
 WHERE json_extract(config.value, '$.holder') = :holder OR json_extract(config.value, '$.lease_until') < :now
RETURNING key;

-- name: seat_read
SELECT value FROM config WHERE key = 'scheduler-seat';

-- name: seat_release
UPDATE config SET value = json_set(value, '$.lease_until', 0)
 WHERE key = 'scheduler-seat' AND json_extract(value, '$.holder') = :holder;

-- name: add_run_totals
-- The settles of one transaction, added to their (job, outcome) row of the writer's shard (see migration 0008).
INSERT INTO run_totals (job, outcome, shard,
                        runs, kept, attempts, duration_sum, wait_count, wait_sum, d0, d1, d2, d3, d4, d5, d6,
                        d7, d8, d9, d10, d11, d12, d13, d14, d15, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9,
                        w10, w11, w12, w13, w14, w15, last_started, last_finished)
VALUES (:job, :outcome, :shard,
        :runs, :kept, :attempts, :duration_sum, :wait_count, :wait_sum, :d0, :d1, :d2, :d3, :d4, :d5, :d6,
        :d7, :d8, :d9, :d10, :d11, :d12, :d13, :d14, :d15, :w0, :w1, :w2, :w3, :w4, :w5, :w6, :w7, :w8, :w9,
        :w10, :w11, :w12, :w13, :w14, :w15, :last_started, :last_finished)
ON CONFLICT (job, outcome, shard) DO UPDATE SET
    runs = run_totals.runs + excluded.runs, kept = run_totals.kept + excluded.kept,
    attempts = run_totals.attempts + excluded.attempts,
    duration_sum = run_totals.duration_sum + excluded.duration_sum,
    wait_count = run_totals.wait_count + excluded.wait_count,
    wait_sum = run_totals.wait_sum + excluded.wait_sum, d0 = run_totals.d0 + excluded.d0,
    d1 = run_totals.d1 + excluded.d1, d2 = run_totals.d2 + excluded.d2, d3 = run_totals.d3 + excluded.d3,
    d4 = run_totals.d4 + excluded.d4, d5 = run_totals.d5 + excluded.d5, d6 = run_totals.d6 + excluded.d6,
    d7 = run_totals.d7 + excluded.d7, d8 = run_totals.d8 + excluded.d8, d9 = run_totals.d9 + excluded.d9,
    d10 = run_totals.d10 + excluded.d10, d11 = run_totals.d11 + excluded.d11,
    d12 = run_totals.d12 + excluded.d12, d13 = run_totals.d13 + excluded.d13,
    d14 = run_totals.d14 + excluded.d14, d15 = run_totals.d15 + excluded.d15,
    w0 = run_totals.w0 + excluded.w0, w1 = run_totals.w1 + excluded.w1, w2 = run_totals.w2 + excluded.w2,
    w3 = run_totals.w3 + excluded.w3, w4 = run_totals.w4 + excluded.w4, w5 = run_totals.w5 + excluded.w5,
    w6 = run_totals.w6 + excluded.w6, w7 = run_totals.w7 + excluded.w7, w8 = run_totals.w8 + excluded.w8,
    w9 = run_totals.w9 + excluded.w9, w10 = run_totals.w10 + excluded.w10,
    w11 = run_totals.w11 + excluded.w11, w12 = run_totals.w12 + excluded.w12,
    w13 = run_totals.w13 + excluded.w13, w14 = run_totals.w14 + excluded.w14,
    w15 = run_totals.w15 + excluded.w15,
    last_started = max(coalesce(run_totals.last_started, excluded.last_started), coalesce(excluded.last_started, run_totals.last_started)),
    last_finished = max(coalesce(run_totals.last_finished, excluded.last_finished), coalesce(excluded.last_finished, run_totals.last_finished));


-- name: add_run_minute
INSERT INTO run_minutes (minute, shard, completed, failed) VALUES (:minute, :shard, :completed, :failed)
ON CONFLICT (minute, shard) DO UPDATE SET completed = run_minutes.completed + excluded.completed,
                                   failed = run_minutes.failed + excluded.failed;

-- (add_rollups: PostgreSQL only, add_run_totals and add_run_minute in one round trip; here they are two calls.)

-- name: drop_run_minutes
-- The writer keeps two days of minutes: older rows go (a primary-key range, nothing to do most times).
DELETE FROM run_minutes WHERE minute < :before;

-- name: run_totals
-- Every shard's rows (summed by the reader): as many as jobs x outcomes x shards written to.
SELECT * FROM run_totals ORDER BY job, outcome, shard;

-- name: running_times
-- The runs running now (as many as the pools' slots): their job, start and due time, for `/metrics`.
SELECT job, started_at, run_at, created_at, tries FROM runs INDEXED BY runs_running WHERE state = 'running';

-- name: run_minutes
SELECT minute, sum(completed), sum(failed) FROM run_minutes WHERE minute >= :since GROUP BY minute ORDER BY minute;
