-- Rollups the store writes in the same transaction as the runs they count, so that `/metrics` and the
-- dashboard's charts read a few rows instead of scanning every run and attempt (issue 15).
--
-- run_totals: per job ('' for runs of no job) and outcome, counted since the store was made (this migration
-- backfills them from the runs and attempts kept). Never decremented, but for `kept`: deleting runs (`clear`)
-- or retrying a dead one leaves them as they are, as Prometheus counters must.
--   runs            runs that finished with this outcome: completed, dead or cancelled (a run state)
--   kept            of those, the ones still in the store in that state: the one column that goes down
--                   (deleting a finished run, retrying a dead one); `status` and `queuectl_runs` read it
--   attempts        attempts that ended with this outcome (model.Outcome: completed, failed, timeout, lost,
--                   interrupted, cancelled), with their durations counted per bucket of model.METRIC_BUCKETS
--                   (d0..d15, d15 above every bound) and summed
--   wait_*          of those, each run's first attempt: seconds from when the run was due to its start
--   last_started    the latest start of such an attempt, last_finished its latest end
-- shard: each store connection adds to rows of its own shard (one of 16, drawn when it opens), so that pools
-- settling runs at once on PostgreSQL do not queue on one row until the other commits; readers sum the shards.
-- The bucket bounds are written out below as they are in model.METRIC_BUCKETS: changing those needs a migration.
CREATE TABLE run_totals (
    job           TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    shard         INTEGER NOT NULL DEFAULT 0,
    runs          INTEGER NOT NULL DEFAULT 0,
    kept          INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    duration_sum  REAL NOT NULL DEFAULT 0,
    wait_count    INTEGER NOT NULL DEFAULT 0,
    wait_sum      REAL NOT NULL DEFAULT 0,
    last_started  REAL,
    last_finished REAL,
    d0 INTEGER NOT NULL DEFAULT 0,
    d1 INTEGER NOT NULL DEFAULT 0,
    d2 INTEGER NOT NULL DEFAULT 0,
    d3 INTEGER NOT NULL DEFAULT 0,
    d4 INTEGER NOT NULL DEFAULT 0,
    d5 INTEGER NOT NULL DEFAULT 0,
    d6 INTEGER NOT NULL DEFAULT 0,
    d7 INTEGER NOT NULL DEFAULT 0,
    d8 INTEGER NOT NULL DEFAULT 0,
    d9 INTEGER NOT NULL DEFAULT 0,
    d10 INTEGER NOT NULL DEFAULT 0,
    d11 INTEGER NOT NULL DEFAULT 0,
    d12 INTEGER NOT NULL DEFAULT 0,
    d13 INTEGER NOT NULL DEFAULT 0,
    d14 INTEGER NOT NULL DEFAULT 0,
    d15 INTEGER NOT NULL DEFAULT 0,
    w0 INTEGER NOT NULL DEFAULT 0,
    w1 INTEGER NOT NULL DEFAULT 0,
    w2 INTEGER NOT NULL DEFAULT 0,
    w3 INTEGER NOT NULL DEFAULT 0,
    w4 INTEGER NOT NULL DEFAULT 0,
    w5 INTEGER NOT NULL DEFAULT 0,
    w6 INTEGER NOT NULL DEFAULT 0,
    w7 INTEGER NOT NULL DEFAULT 0,
    w8 INTEGER NOT NULL DEFAULT 0,
    w9 INTEGER NOT NULL DEFAULT 0,
    w10 INTEGER NOT NULL DEFAULT 0,
    w11 INTEGER NOT NULL DEFAULT 0,
    w12 INTEGER NOT NULL DEFAULT 0,
    w13 INTEGER NOT NULL DEFAULT 0,
    w14 INTEGER NOT NULL DEFAULT 0,
    w15 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job, outcome, shard)
) WITHOUT ROWID;

-- run_minutes: attempts that ended per minute (the store's clock at the settle), for the dashboard's charts:
-- completed, and failed (failed, timed out or lost, whether a retry follows or not). `minute` is the minute's
-- start in epoch seconds, shard as above. The writer drops rows older than two days (at most once a minute per process).
CREATE TABLE run_minutes (
    minute    INTEGER NOT NULL,
    shard     INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, shard)
) WITHOUT ROWID;

INSERT INTO run_totals (job, outcome, runs, kept, attempts, duration_sum, wait_count, wait_sum, last_started, last_finished,
                        d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15,
                        w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15)
SELECT job, outcome, sum(runs), sum(runs), sum(attempts), coalesce(sum(d), 0), count(w), coalesce(sum(w), 0),
       max(started_at), max(finished_at),
       count(CASE WHEN db = 0 THEN 1 END), count(CASE WHEN db = 1 THEN 1 END), count(CASE WHEN db = 2 THEN 1 END), count(CASE WHEN db = 3 THEN 1 END), count(CASE WHEN db = 4 THEN 1 END), count(CASE WHEN db = 5 THEN 1 END), count(CASE WHEN db = 6 THEN 1 END), count(CASE WHEN db = 7 THEN 1 END), count(CASE WHEN db = 8 THEN 1 END), count(CASE WHEN db = 9 THEN 1 END), count(CASE WHEN db = 10 THEN 1 END), count(CASE WHEN db = 11 THEN 1 END), count(CASE WHEN db = 12 THEN 1 END), count(CASE WHEN db = 13 THEN 1 END), count(CASE WHEN db = 14 THEN 1 END), count(CASE WHEN db = 15 THEN 1 END),
       count(CASE WHEN wb = 0 THEN 1 END), count(CASE WHEN wb = 1 THEN 1 END), count(CASE WHEN wb = 2 THEN 1 END), count(CASE WHEN wb = 3 THEN 1 END), count(CASE WHEN wb = 4 THEN 1 END), count(CASE WHEN wb = 5 THEN 1 END), count(CASE WHEN wb = 6 THEN 1 END), count(CASE WHEN wb = 7 THEN 1 END), count(CASE WHEN wb = 8 THEN 1 END), count(CASE WHEN wb = 9 THEN 1 END), count(CASE WHEN wb = 10 THEN 1 END), count(CASE WHEN wb = 11 THEN 1 END), count(CASE WHEN wb = 12 THEN 1 END), count(CASE WHEN wb = 13 THEN 1 END), count(CASE WHEN wb = 14 THEN 1 END), count(CASE WHEN wb = 15 THEN 1 END)
  FROM (SELECT job, outcome, runs, attempts, d, w, started_at, finished_at,
               CASE WHEN d <= 0.1 THEN 0 WHEN d <= 0.5 THEN 1 WHEN d <= 1.0 THEN 2 WHEN d <= 5.0 THEN 3 WHEN d <= 15.0 THEN 4 WHEN d <= 30.0 THEN 5 WHEN d <= 60.0 THEN 6 WHEN d <= 300.0 THEN 7 WHEN d <= 900.0 THEN 8 WHEN d <= 1800.0 THEN 9 WHEN d <= 3600.0 THEN 10 WHEN d <= 7200.0 THEN 11 WHEN d <= 14400.0 THEN 12 WHEN d <= 43200.0 THEN 13 WHEN d <= 86400.0 THEN 14 WHEN d IS NOT NULL THEN 15 END AS db,
               CASE WHEN w <= 0.1 THEN 0 WHEN w <= 0.5 THEN 1 WHEN w <= 1.0 THEN 2 WHEN w <= 5.0 THEN 3 WHEN w <= 15.0 THEN 4 WHEN w <= 30.0 THEN 5 WHEN w <= 60.0 THEN 6 WHEN w <= 300.0 THEN 7 WHEN w <= 900.0 THEN 8 WHEN w <= 1800.0 THEN 9 WHEN w <= 3600.0 THEN 10 WHEN w <= 7200.0 THEN 11 WHEN w <= 14400.0 THEN 12 WHEN w <= 43200.0 THEN 13 WHEN w <= 86400.0 THEN 14 WHEN w IS NOT NULL THEN 15 END AS wb
          FROM (SELECT coalesce(r.job, '') AS job, a.outcome AS outcome, 0 AS runs, 1 AS attempts,
                       CASE WHEN a.started_at IS NOT NULL AND a.finished_at IS NOT NULL
                            THEN max(0, a.finished_at - a.started_at) END AS d,
                       CASE WHEN a.n = 1 AND a.started_at IS NOT NULL
                            THEN max(0, a.started_at - CASE WHEN r.run_at <= a.started_at THEN r.run_at ELSE r.created_at END)
                       END AS w,
                       a.started_at AS started_at, a.finished_at AS finished_at
                  FROM attempts a JOIN runs r ON r.id = a.run_id
                UNION ALL
                SELECT coalesce(job, ''), state, 1, 0, NULL, NULL, NULL, NULL
                  FROM runs WHERE state IN ('completed', 'dead', 'cancelled')) AS settled) AS bucketed
 GROUP BY job, outcome;

INSERT INTO run_minutes (minute, completed, failed)
SELECT CAST(finished_at / 60 AS INTEGER) * 60 AS m, count(CASE WHEN outcome = 'completed' THEN 1 END),
       count(CASE WHEN outcome = 'failed' THEN 1 END) + count(CASE WHEN outcome = 'timeout' THEN 1 END) + count(CASE WHEN outcome = 'lost' THEN 1 END)
  FROM attempts
 WHERE finished_at >= unixepoch('now') - 2 * 86400 AND outcome IN ('completed', 'failed', 'timeout', 'lost')
 GROUP BY m;
