-- Repository maintenance: one lease per repository (one process at a time, across replicas)
-- and the last run's result.
CREATE TABLE repo_maintenance (
    repo_id INTEGER PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,
    lease_owner TEXT,
    lease_until INTEGER,
    last_started_at INTEGER,
    last_finished_at INTEGER,
    last_result TEXT,
    last_error TEXT,
    last_duration_ms INTEGER,
    runs INTEGER NOT NULL DEFAULT 0
);
