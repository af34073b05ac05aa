-- gatehouse metadata schema, version 3 (SQLite): customer-managed IAM
-- policies, named by ARN in the STS PolicyArns parameter.
-- name_key holds store.FoldName(name). The document is kept as the JSON
-- text given.

CREATE TABLE managed_policies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,
    path        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    document    TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX managed_policies_created ON managed_policies (created_at, id);
