-- The scheduler's bookkeeping for cron jobs, and suspension.
ALTER TABLE jobs ADD COLUMN suspended boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN schedule_from double precision;  -- fires after this moment count
ALTER TABLE jobs ADD COLUMN last_fire double precision;      -- the latest fire turned into a run (or skipped)
ALTER TABLE jobs ADD COLUMN next_fire double precision;      -- when the scheduler next looks; NULL: to compute
ALTER TABLE jobs ADD COLUMN schedule_hash text;              -- cron and zone the fires above were computed for
ALTER TABLE jobs ADD COLUMN is_cron boolean GENERATED ALWAYS AS ((spec::jsonb ->> 'cron') IS NOT NULL) STORED;
CREATE INDEX jobs_next_fire ON jobs (next_fire);
-- Cancelling a running run asks its pool to stop it.
ALTER TABLE runs ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
