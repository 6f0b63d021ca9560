-- Who schedules the cron fires of this store (one row): the pools elect one, which holds a lease
-- (renewed at each look) and says when it last looked; `status` reads it.
CREATE TABLE scheduler (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    holder       TEXT NOT NULL,
    pool_id      TEXT,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    lease_until  REAL NOT NULL,
    last_tick_at REAL
);
INSERT INTO scheduler (id, holder, pool_id, host, pid, lease_until, last_tick_at) VALUES (1, '', NULL, '', 0, 0, NULL);
