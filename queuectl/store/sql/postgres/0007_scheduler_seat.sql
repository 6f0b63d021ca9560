-- Who schedules the cron fires of this store (one row): the pools elect one, which holds a lease
-- (renewed at each look) and says when it last looked; `status` reads it.
CREATE TABLE scheduler (
    id           integer PRIMARY KEY CHECK (id = 1),
    holder       text NOT NULL,
    pool_id      text,
    host         text NOT NULL,
    pid          integer NOT NULL,
    lease_until  double precision NOT NULL,
    last_tick_at double precision
);
INSERT INTO scheduler (id, holder, pool_id, host, pid, lease_until, last_tick_at) VALUES (1, '', NULL, '', 0, 0, NULL);
