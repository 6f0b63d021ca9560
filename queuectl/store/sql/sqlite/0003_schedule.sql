-- The scheduler's bookkeeping for cron jobs, and suspension.
ALTER TABLE jobs ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN schedule_from REAL;   -- fires after this moment count (set when the schedule changes)
ALTER TABLE jobs ADD COLUMN last_fire REAL;       -- the latest fire turned into a run (or skipped)
ALTER TABLE jobs ADD COLUMN next_fire REAL;       -- when the scheduler next looks at the job; NULL: to compute
ALTER TABLE jobs ADD COLUMN schedule_hash TEXT;   -- cron and time zone the fires above were computed for
CREATE INDEX jobs_next_fire ON jobs (next_fire);
-- Cancelling a running run asks its pool to stop it.
ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
