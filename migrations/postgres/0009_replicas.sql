-- Several replicas on one shared folder (EFS) and this database. Each running `kura serve`
-- registers under a random id with the URL its peers reach it at and beats every few seconds.
-- A repository's files change only under its write lease; the holder keeps it until one
-- cache window after the change, and other replicas forward the repository's requests to it
-- meanwhile (their view of the folder may be stale; see ARCHITECTURE.md). Times in ms.
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    host TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    heartbeat_at_ms BIGINT NOT NULL
);
CREATE TABLE repo_leases (
    repo_id BIGINT PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    taken BIGINT NOT NULL DEFAULT 1
);
-- A random key replicas show each other when forwarding (so a forwarded client address is
-- believed only from a replica); made by the first replica that needs it.
CREATE TABLE cluster_keys (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
