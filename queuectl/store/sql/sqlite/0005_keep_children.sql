-- Whether what a run's command starts may outlive the run (manifest key keep_children).
ALTER TABLE runs ADD COLUMN keep_children INTEGER NOT NULL DEFAULT 0;
