-- Users from the company directory (LDAP / Active Directory). `source` says where a user comes
-- from: 'local' (password in Kura) or 'ldap' (no local password; the directory checks it).
-- The directory's facts are copied at every sign-in and sync: the entry's DN, display name and
-- email, and whether the directory disabled the user (kept apart from `disabled`, which is an
-- administrator's decision in Kura, so a sync never undoes it). `synced_at` is when these
-- facts were last read; remembered sign-ins made before it are not trusted.
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
ALTER TABLE users ADD COLUMN directory_dn TEXT;
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN directory_disabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN synced_at BIGINT;
