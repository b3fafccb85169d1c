-- Push mirrors, the push log, and the mirror outbox.
CREATE TABLE mirrors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    branches TEXT NOT NULL DEFAULT '',
    keep_divergent INTEGER NOT NULL DEFAULT 0,
    create_remote INTEGER NOT NULL DEFAULT 0,
    username TEXT,
    secret TEXT,
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
    UNIQUE (repo_id, url)
);

CREATE TABLE pushes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    pusher TEXT NOT NULL,
    refs TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE mirror_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mirror_id INTEGER NOT NULL REFERENCES mirrors(id) ON DELETE CASCADE,
    push_id INTEGER REFERENCES pushes(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    done_at INTEGER
);
CREATE INDEX mirror_jobs_pending ON mirror_jobs(mirror_id, done_at);
