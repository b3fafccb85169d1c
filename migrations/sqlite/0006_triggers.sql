-- Push triggers (webhooks, EventBridge, CodePipeline) become a second kind of delivery target:
-- `repo_id` may be NULL (a server-wide trigger), `settings` holds a kind's own settings (JSON),
-- a mirror's URL is unique per repository but triggers may share one. Deliveries of triggers
-- are one per pushed ref update with their own status and event, and every attempt is logged;
-- `delivered` and `given_up` count a trigger's events for good (deliveries are pruned).
--
-- SQLite cannot drop NOT NULL in place, and its migrations run in a transaction where foreign
-- keys cannot be switched off (a DROP of a referenced table would cascade): so both tables are
-- renamed away (references follow the rename), rebuilt, copied, and the old ones dropped,
-- deliveries first so that nothing cascades.
ALTER TABLE deliveries RENAME TO deliveries_old;
ALTER TABLE delivery_targets RENAME TO delivery_targets_old;

CREATE TABLE delivery_targets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL DEFAULT 'mirror',
    repo_id INTEGER REFERENCES repos(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    branches TEXT NOT NULL DEFAULT '',
    keep_divergent INTEGER NOT NULL DEFAULT 0,
    create_remote INTEGER NOT NULL DEFAULT 0,
    username TEXT,
    secret TEXT,
    settings TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at INTEGER,
    last_attempt_job INTEGER NOT NULL DEFAULT 0,
    last_success_at INTEGER,
    last_error TEXT,
    last_duration_ms INTEGER,
    last_summary TEXT,
    verified INTEGER NOT NULL DEFAULT 0,
    remote_heads TEXT,
    runs INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    given_up INTEGER NOT NULL DEFAULT 0
);
INSERT INTO delivery_targets (id, kind, repo_id, url, branches, keep_divergent, create_remote, username,
    secret, created_at, lease_owner, lease_until, next_attempt_at, attempts, last_attempt_at,
    last_attempt_job, last_success_at, last_error, last_duration_ms, last_summary, verified,
    remote_heads, runs, failures)
SELECT id, kind, repo_id, url, branches, keep_divergent, create_remote, username,
    secret, created_at, lease_owner, lease_until, next_attempt_at, attempts, last_attempt_at,
    last_attempt_job, last_success_at, last_error, last_duration_ms, last_summary, verified,
    remote_heads, runs, failures FROM delivery_targets_old;
CREATE UNIQUE INDEX delivery_targets_mirror_url ON delivery_targets(repo_id, url) WHERE kind = 'mirror';
CREATE INDEX delivery_targets_by_repo ON delivery_targets(repo_id);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target_id INTEGER NOT NULL REFERENCES delivery_targets(id) ON DELETE CASCADE,
    push_id INTEGER REFERENCES pushes(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    done_at INTEGER,
    repo_id INTEGER REFERENCES repos(id) ON DELETE CASCADE,
    ref_name TEXT,
    old_id TEXT,
    new_id TEXT,
    pusher TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error TEXT,
    note TEXT,
    event TEXT,
    redelivery_of INTEGER
);
INSERT INTO deliveries (id, target_id, push_id, created_at, done_at, status)
SELECT id, target_id, push_id, created_at, done_at,
    CASE WHEN done_at IS NULL THEN 'pending' ELSE 'delivered' END FROM deliveries_old;
DROP TABLE deliveries_old;
DROP TABLE delivery_targets_old;
CREATE INDEX deliveries_pending ON deliveries(target_id, done_at);
CREATE INDEX deliveries_by_repo ON deliveries(repo_id, id);

CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    started_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    response_excerpt TEXT
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts(delivery_id, id);
