-- The push log records every accepted push (not only those of mirrored repositories), and the
-- mirror outbox becomes the one delivery machinery: `delivery_targets` (what to deliver to:
-- mirrors today, push triggers next; lease, retry state, last result) and `deliveries` (one row
-- per target per push, done once delivered).
ALTER TABLE pushes ADD COLUMN protocol TEXT NOT NULL DEFAULT 'http';
CREATE INDEX pushes_by_repo ON pushes(repo_id, id);
CREATE INDEX pushes_by_time ON pushes(created_at);

ALTER TABLE mirrors RENAME TO delivery_targets;
ALTER TABLE delivery_targets ADD COLUMN kind TEXT NOT NULL DEFAULT 'mirror';
ALTER TABLE mirror_jobs RENAME TO deliveries;
ALTER TABLE deliveries RENAME COLUMN mirror_id TO target_id;
DROP INDEX mirror_jobs_pending;
CREATE INDEX deliveries_pending ON deliveries(target_id, done_at);
