-- Repository maintenance: one lease per repository (one process at a time, across replicas)
-- and the last run's result.
CREATE TABLE repo_maintenance (
    repo_id BIGINT PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,
    lease_owner TEXT,
    lease_until BIGINT,
    last_started_at BIGINT,
    last_finished_at BIGINT,
    last_result TEXT,
    last_error TEXT,
    last_duration_ms BIGINT,
    runs BIGINT NOT NULL DEFAULT 0
);
