-- The first schema: runs, their attempts, worker pools and settings.
-- Times are epoch seconds (REAL).
CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    job           TEXT,
    command       TEXT NOT NULL,
    state         TEXT NOT NULL,
    priority      INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,  -- attempts that count toward max_retries
    tries         INTEGER NOT NULL DEFAULT 0,  -- attempts ever started (never reset)
    max_retries   INTEGER NOT NULL,
    backoff_base  REAL NOT NULL,
    backoff_max   REAL NOT NULL,
    timeout       REAL,
    cwd           TEXT,
    env           TEXT,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    run_at        REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    exit_code     INTEGER,
    error         TEXT,
    output_tail   TEXT,
    worker_id     TEXT,
    lease_expires REAL,
    host          TEXT,
    pgid          INTEGER,
    proc_start    INTEGER,
    log_path      TEXT
);
-- Few, partial indexes: every index page a claim touches is written to the
-- WAL at commit, and commits are the cost of the hot path.
CREATE INDEX runs_ready ON runs (priority DESC, created_at, id) WHERE state IN ('pending', 'failed');
CREATE INDEX runs_due ON runs (run_at) WHERE state IN ('pending', 'failed');
CREATE INDEX runs_running ON runs (worker_id) WHERE state = 'running';

CREATE TABLE attempts (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    n           INTEGER NOT NULL,
    worker_id   TEXT,
    host        TEXT,
    pgid        INTEGER,
    started_at  REAL,
    finished_at REAL,
    exit_code   INTEGER,
    outcome     TEXT NOT NULL,
    error       TEXT,
    log_path    TEXT,
    output_tail TEXT,
    PRIMARY KEY (run_id, n)
) WITHOUT ROWID;

CREATE TABLE workers (
    id             TEXT PRIMARY KEY,
    host           TEXT NOT NULL,
    pid            INTEGER NOT NULL,
    proc_start     INTEGER NOT NULL,
    slots          INTEGER NOT NULL,
    started_at     REAL NOT NULL,
    heartbeat_at   REAL NOT NULL,
    stop_requested INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE config (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
