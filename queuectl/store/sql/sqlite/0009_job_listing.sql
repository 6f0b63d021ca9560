-- A job's runs in keyset pages (`/api/runs?job=NAME`, newest or oldest first): (job, created_at, id) in order.
-- It replaces runs_job (job, created_at), whose readers all still find their order in it.
DROP INDEX IF EXISTS runs_job;
CREATE INDEX IF NOT EXISTS runs_job ON runs (job, created_at, id) WHERE job IS NOT NULL;
-- A cron job's timeline reads its runs by fire time: runs_fire holds the live ones (unique per fire),
-- this one the cancelled ones (fires skipped by the overlap rule, runs replaced or cancelled). Only a
-- cancellation writes it: the pool's claims and settlements of live runs never touch it.
CREATE INDEX IF NOT EXISTS runs_fire_cancelled ON runs (job, scheduled_for)
    WHERE job IS NOT NULL AND scheduled_for IS NOT NULL AND state = 'cancelled';
