-- Declared jobs (manifests applied from a directory) and the runs they make.
CREATE TABLE jobs (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,            -- canonical JSON of the normalized spec
    spec_hash   TEXT NOT NULL,
    run_hash    TEXT NOT NULL,            -- hash of what a run executes
    source      TEXT NOT NULL,            -- the directory that owns the job
    file        TEXT NOT NULL,            -- the manifest it came from
    file_hash   TEXT NOT NULL,
    git_commit  TEXT,                     -- HEAD of the repository at apply, if any
    git_dirty   INTEGER NOT NULL DEFAULT 0,  -- the file differed from that commit
    status_dir  TEXT,                     -- where its status file is written
    error       TEXT,                     -- the manifest's current error (the last good spec stays)
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    version_at  REAL NOT NULL             -- when run_hash last changed
);

ALTER TABLE runs ADD COLUMN scheduled_for REAL;
-- One run per (job, scheduled time), so that no fire runs twice; cancelled runs step aside.
CREATE UNIQUE INDEX runs_fire ON runs (job, scheduled_for)
    WHERE job IS NOT NULL AND scheduled_for IS NOT NULL AND state <> 'cancelled';
CREATE INDEX runs_job ON runs (job, created_at) WHERE job IS NOT NULL;
