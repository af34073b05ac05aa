-- gatehouse metadata schema, version 2 (SQLite): IAM roles and the SAML and
-- OIDC identity providers they trust.
-- name_key holds store.FoldName(name); issuer_key holds
-- store.OIDCIssuerKey(issuer_url). Policy documents are kept as the JSON
-- text given; permission_policies is a JSON array of {name, document} in
-- order, tags a JSON object, audiences and thumbprints JSON arrays.

CREATE TABLE roles (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    name_key             TEXT NOT NULL UNIQUE,
    path                 TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    trust_policy         TEXT NOT NULL,
    permission_policies  TEXT NOT NULL DEFAULT '[]',
    permissions_boundary TEXT NOT NULL DEFAULT '',
    max_session_duration INTEGER NOT NULL,
    tags                 TEXT NOT NULL DEFAULT '{}',
    revision             INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) STRICT;

CREATE INDEX roles_created ON roles (created_at, id);

CREATE TABLE saml_providers (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL UNIQUE,
    metadata_xml TEXT NOT NULL,
    entity_id    TEXT NOT NULL UNIQUE,
    revision     INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX saml_providers_created ON saml_providers (created_at, id);

CREATE TABLE oidc_providers (
    id             TEXT PRIMARY KEY,
    issuer_url     TEXT NOT NULL,
    issuer_key     TEXT NOT NULL UNIQUE,
    audiences      TEXT NOT NULL,
    thumbprints    TEXT NOT NULL DEFAULT '[]',
    jwks_url       TEXT NOT NULL DEFAULT '',
    groups_claim   TEXT NOT NULL DEFAULT '',
    roles_claim    TEXT NOT NULL DEFAULT '',
    username_claim TEXT NOT NULL DEFAULT '',
    revision       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE INDEX oidc_providers_created ON oidc_providers (created_at, id);
