-- gatehouse metadata schema, version 5 (PostgreSQL): federated identity
-- binding (docs/design/0014-identity-binding.md). A federated identity is
-- bound to a directory user by (provider id, subject) through
-- federated_links, never by name. Each provider carries its binding rule as
-- a JSON object in binding ('{}': refuse unlinked identities, link on first
-- sign-in never). A user has at most one subject per provider. Columns
-- compare with COLLATE "C" so ordering matches SQLite (bytes).

ALTER TABLE saml_providers ADD COLUMN binding text NOT NULL DEFAULT '{}';
ALTER TABLE oidc_providers ADD COLUMN binding text NOT NULL DEFAULT '{}';

CREATE TABLE federated_links (
    provider_id text COLLATE "C" NOT NULL CHECK (provider_id <> ''),
    subject     text COLLATE "C" NOT NULL CHECK (subject <> ''),
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source      text NOT NULL CHECK (source <> ''),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (provider_id, subject),
    UNIQUE (provider_id, user_id)
);

CREATE INDEX federated_links_user ON federated_links (user_id);
