-- The first schema: runs, their attempts, worker pools and settings.
-- Times are epoch seconds (double precision), taken from the database's clock.
CREATE TABLE runs (
    id            text COLLATE "C" PRIMARY KEY,  -- byte order, as SQLite compares: the same claim order
    job           text,
    command       text NOT NULL,
    state         text NOT NULL,
    priority      integer NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,  -- attempts that count toward max_retries
    tries         integer NOT NULL DEFAULT 0,  -- attempts ever started (never reset)
    max_retries   integer NOT NULL,
    backoff_base  double precision NOT NULL,
    backoff_max   double precision NOT NULL,
    timeout       double precision,
    cwd           text,
    env           text,
    created_at    double precision NOT NULL,
    updated_at    double precision NOT NULL,
    run_at        double precision NOT NULL,
    started_at    double precision,
    finished_at   double precision,
    exit_code     integer,
    error         text,
    output_tail   text,
    worker_id     text,
    lease_expires double precision,
    host          text,
    pgid          integer,
    proc_start    bigint,
    log_path      text
);
-- Partial indexes: a claim reads the head of runs_ready and skips rows other pools hold.
CREATE INDEX runs_ready ON runs (priority DESC, created_at, id) WHERE state IN ('pending', 'failed');
CREATE INDEX runs_due ON runs (run_at) WHERE state IN ('pending', 'failed');
CREATE INDEX runs_running ON runs (worker_id) WHERE state = 'running';

CREATE TABLE attempts (
    run_id      text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    n           integer NOT NULL,
    worker_id   text,
    host        text,
    pgid        integer,
    started_at  double precision,
    finished_at double precision,
    exit_code   integer,
    outcome     text NOT NULL,
    error       text,
    log_path    text,
    output_tail text,
    PRIMARY KEY (run_id, n)
);

CREATE TABLE workers (
    id             text PRIMARY KEY,
    host           text NOT NULL,
    pid            integer NOT NULL,
    proc_start     bigint NOT NULL,
    slots          integer NOT NULL,
    started_at     double precision NOT NULL,
    heartbeat_at   double precision NOT NULL,
    stop_requested boolean NOT NULL DEFAULT false
);

CREATE TABLE config (
    key   text PRIMARY KEY,
    value text NOT NULL
);
