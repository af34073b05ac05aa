-- gatehouse metadata schema, version 3 (PostgreSQL): customer-managed IAM
-- policies, named by ARN in the STS PolicyArns parameter.
-- name_key holds store.FoldName(name), identically to the SQLite schema.
-- The document is text, not jsonb, so it reads back byte for byte.

CREATE TABLE managed_policies (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    name_key    text NOT NULL UNIQUE,
    path        text NOT NULL,
    description text NOT NULL DEFAULT '',
    document    text NOT NULL,
    revision    bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE INDEX managed_policies_created ON managed_policies (created_at, id);
