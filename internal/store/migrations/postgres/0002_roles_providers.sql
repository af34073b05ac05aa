-- gatehouse metadata schema, version 2 (PostgreSQL): IAM roles and the SAML
-- and OIDC identity providers they trust.
-- name_key holds store.FoldName(name); issuer_key holds
-- store.OIDCIssuerKey(issuer_url), identically to the SQLite schema. Policy
-- documents are kept as the JSON text given (text, not jsonb, so they read
-- back byte for byte); permission_policies is a JSON array of
-- {name, document} in order.

CREATE TABLE roles (
    id                   text PRIMARY KEY,
    name                 text NOT NULL,
    name_key             text NOT NULL UNIQUE,
    path                 text NOT NULL,
    description          text NOT NULL DEFAULT '',
    trust_policy         text NOT NULL,
    permission_policies  jsonb NOT NULL DEFAULT '[]',
    permissions_boundary text NOT NULL DEFAULT '',
    max_session_duration integer NOT NULL,
    tags                 jsonb NOT NULL DEFAULT '{}',
    revision             bigint NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);

CREATE INDEX roles_created ON roles (created_at, id);

CREATE TABLE saml_providers (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    name_key     text NOT NULL UNIQUE,
    metadata_xml text NOT NULL,
    entity_id    text NOT NULL UNIQUE,
    revision     bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE INDEX saml_providers_created ON saml_providers (created_at, id);

CREATE TABLE oidc_providers (
    id             text PRIMARY KEY,
    issuer_url     text NOT NULL,
    issuer_key     text NOT NULL UNIQUE,
    audiences      jsonb NOT NULL,
    thumbprints    jsonb NOT NULL DEFAULT '[]',
    jwks_url       text NOT NULL DEFAULT '',
    groups_claim   text NOT NULL DEFAULT '',
    roles_claim    text NOT NULL DEFAULT '',
    username_claim text NOT NULL DEFAULT '',
    revision       bigint NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE INDEX oidc_providers_created ON oidc_providers (created_at, id);
