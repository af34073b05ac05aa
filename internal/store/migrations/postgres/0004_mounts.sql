-- gatehouse metadata schema, version 4 (PostgreSQL): S3 gateway mounts,
-- each binding a bucket prefix to an IAM role (docs/design/0012-mounts.md).
-- (bucket, prefix) is unique; prefix is non-empty and ends with '/'.
-- Columns compare with COLLATE "C" so ordering matches SQLite (bytes).

CREATE TABLE mounts (
    id          text COLLATE "C" PRIMARY KEY,
    bucket      text COLLATE "C" NOT NULL CHECK (bucket <> ''),
    prefix      text COLLATE "C" NOT NULL CHECK (prefix <> '' AND right(prefix, 1) = '/'),
    role_arn    text NOT NULL CHECK (role_arn <> ''),
    description text NOT NULL DEFAULT '',
    revision    bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    UNIQUE (bucket, prefix)
);
