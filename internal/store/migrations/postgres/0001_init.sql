-- gatehouse metadata schema, version 1 (PostgreSQL).
-- *_key columns hold store.FoldName(...) and carry the case-insensitive
-- uniqueness of user and group names, identically to the SQLite schema
-- (lower() would depend on the database's collation and locale).

CREATE TABLE users (
    id            text PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('user', 'service')),
    user_name     text NOT NULL,
    user_name_key text NOT NULL UNIQUE,
    external_id   text NOT NULL DEFAULT '',
    display_name  text NOT NULL DEFAULT '',
    given_name    text NOT NULL DEFAULT '',
    family_name   text NOT NULL DEFAULT '',
    title         text NOT NULL DEFAULT '',
    emails        jsonb NOT NULL DEFAULT '[]',
    active        boolean NOT NULL,
    attributes    jsonb NOT NULL DEFAULT '{}',
    password_hash text NOT NULL DEFAULT '',
    revision      bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE INDEX users_created ON users (created_at, id);

CREATE TABLE groups (
    id               text PRIMARY KEY,
    display_name     text NOT NULL,
    display_name_key text NOT NULL UNIQUE,
    external_id      text NOT NULL DEFAULT '',
    revision         bigint NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- One row per direct member; exactly one of user_id and member_group_id is
-- set. Foreign keys make a dangling member impossible and cascade deletes.
CREATE TABLE group_members (
    group_id        text NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    position        integer NOT NULL,
    user_id         text REFERENCES users (id) ON DELETE CASCADE,
    member_group_id text REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, position),
    CHECK ((user_id IS NULL) <> (member_group_id IS NULL))
);

CREATE UNIQUE INDEX group_members_user ON group_members (user_id, group_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX group_members_group ON group_members (member_group_id, group_id) WHERE member_group_id IS NOT NULL;

CREATE TABLE tokens (
    id           text PRIMARY KEY,
    principal_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('pat', 'session')),
    name         text NOT NULL DEFAULT '',
    hash         bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

CREATE INDEX tokens_principal ON tokens (principal_id, created_at, id);

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);
