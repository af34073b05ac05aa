-- gatehouse metadata schema, version 4 (SQLite): S3 gateway mounts, each
-- binding a bucket prefix to an IAM role (docs/design/0012-mounts.md).
-- (bucket, prefix) is unique; prefix is non-empty and ends with '/'.

CREATE TABLE mounts (
    id          TEXT PRIMARY KEY,
    bucket      TEXT NOT NULL CHECK (bucket <> ''),
    prefix      TEXT NOT NULL CHECK (prefix <> '' AND substr(prefix, -1) = '/'),
    role_arn    TEXT NOT NULL CHECK (role_arn <> ''),
    description TEXT NOT NULL DEFAULT '',
    revision    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (bucket, prefix)
) STRICT;
