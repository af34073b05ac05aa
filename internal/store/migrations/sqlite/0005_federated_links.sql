-- gatehouse metadata schema, version 5 (SQLite): federated identity binding
-- (docs/design/0014-identity-binding.md). A federated identity is bound to
-- a directory user by (provider id, subject) through federated_links, never
-- by name. Each provider carries its binding rule as a JSON object in
-- binding ('{}': refuse unlinked identities, link on first sign-in never).
-- A user has at most one subject per provider.

ALTER TABLE saml_providers ADD COLUMN binding TEXT NOT NULL DEFAULT '{}';
ALTER TABLE oidc_providers ADD COLUMN binding TEXT NOT NULL DEFAULT '{}';

CREATE TABLE federated_links (
    provider_id TEXT NOT NULL CHECK (provider_id <> ''),
    subject     TEXT NOT NULL CHECK (subject <> ''),
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source      TEXT NOT NULL CHECK (source <> ''),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (provider_id, subject),
    UNIQUE (provider_id, user_id)
) STRICT;

CREATE INDEX federated_links_user ON federated_links (user_id);
