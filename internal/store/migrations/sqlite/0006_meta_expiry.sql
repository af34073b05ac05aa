-- gatehouse metadata schema, version 6 (SQLite): an expiry for meta keys.
-- A row whose expires_at (microseconds since the epoch) has passed may be
-- deleted by the sweeper (Store.SweepMeta); NULL never expires. One-time
-- records (SAML assertion ids, answered AuthnRequests, consumed sign-in
-- states, hand-off codes), login-session records and revocation entries
-- carry one (docs/design/0009-login-and-role-picker.md).

ALTER TABLE meta ADD COLUMN expires_at INTEGER;

CREATE INDEX meta_expires_at ON meta (expires_at) WHERE expires_at IS NOT NULL;
