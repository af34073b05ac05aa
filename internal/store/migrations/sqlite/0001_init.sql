-- gatehouse metadata schema, version 1 (SQLite).
-- Times are INTEGER microseconds since the Unix epoch, UTC.
-- *_key columns hold store.FoldName(...) and carry the case-insensitive
-- uniqueness of user and group names.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('user', 'service')),
    user_name     TEXT NOT NULL,
    user_name_key TEXT NOT NULL UNIQUE,
    external_id   TEXT NOT NULL DEFAULT '',
    display_name  TEXT NOT NULL DEFAULT '',
    given_name    TEXT NOT NULL DEFAULT '',
    family_name   TEXT NOT NULL DEFAULT '',
    title         TEXT NOT NULL DEFAULT '',
    emails        TEXT NOT NULL DEFAULT '[]',
    active        INTEGER NOT NULL,
    attributes    TEXT NOT NULL DEFAULT '{}',
    password_hash TEXT NOT NULL DEFAULT '',
    revision      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX users_created ON users (created_at, id);

CREATE TABLE groups (
    id               TEXT PRIMARY KEY,
    display_name     TEXT NOT NULL,
    display_name_key TEXT NOT NULL UNIQUE,
    external_id      TEXT NOT NULL DEFAULT '',
    revision         INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

-- One row per direct member; exactly one of user_id and member_group_id is
-- set. Foreign keys make a dangling member impossible and cascade deletes.
CREATE TABLE group_members (
    group_id        TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    user_id         TEXT REFERENCES users (id) ON DELETE CASCADE,
    member_group_id TEXT REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, position),
    CHECK ((user_id IS NULL) <> (member_group_id IS NULL))
) STRICT;

CREATE UNIQUE INDEX group_members_user ON group_members (user_id, group_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX group_members_group ON group_members (member_group_id, group_id) WHERE member_group_id IS NOT NULL;

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('pat', 'session')),
    name         TEXT NOT NULL DEFAULT '',
    hash         BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
) STRICT;

CREATE INDEX tokens_principal ON tokens (principal_id, created_at, id);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
