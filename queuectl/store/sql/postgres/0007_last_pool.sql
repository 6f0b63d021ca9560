-- The pool that ran a run's latest attempt, kept once the run has left it: `show RUN` names it.
-- worker_id stays the pool that holds a running run (the rescue relies on it) and is cleared when a run settles.
ALTER TABLE runs ADD COLUMN last_pool TEXT;
UPDATE runs SET last_pool = (SELECT a.worker_id FROM attempts AS a WHERE a.run_id = runs.id ORDER BY a.n DESC LIMIT 1)
 WHERE state <> 'running';
