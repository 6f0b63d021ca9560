-- Declared jobs (manifests applied from a directory) and the runs they make.
CREATE TABLE jobs (
    name        text COLLATE "C" PRIMARY KEY,
    spec        text NOT NULL,            -- canonical JSON of the normalized spec
    spec_hash   text NOT NULL,
    run_hash    text NOT NULL,            -- hash of what a run executes
    source      text NOT NULL,            -- the directory that owns the job
    file        text NOT NULL,            -- the manifest it came from
    file_hash   text NOT NULL,
    git_commit  text,                     -- HEAD of the repository at apply, if any
    git_dirty   boolean NOT NULL DEFAULT false,  -- the file differed from that commit
    status_dir  text,                     -- where its status file is written
    error       text,                     -- the manifest's current error (the last good spec stays)
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL,
    version_at  double precision NOT NULL -- when run_hash last changed
);

ALTER TABLE runs ADD COLUMN scheduled_for double precision;
-- One run per (job, scheduled time), so that no fire runs twice; cancelled runs step aside.
CREATE UNIQUE INDEX runs_fire ON runs (job, scheduled_for)
    WHERE job IS NOT NULL AND scheduled_for IS NOT NULL AND state <> 'cancelled';
CREATE INDEX runs_job ON runs (job, created_at) WHERE job IS NOT NULL;
