-- A failed maintenance run is retried with backoff instead of counting as done until the next
-- daily run: `failures` in a row since the last success, `retry_at` when the next try is due.
ALTER TABLE repo_maintenance ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE repo_maintenance ADD COLUMN retry_at BIGINT;
