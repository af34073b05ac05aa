-- gatehouse metadata schema, version 7 (SQLite): the role restriction a
-- token carries (docs/design/0003-tokens-and-bootstrap.md). roles is NULL
-- for an unrestricted token, or a JSON array of {"roleArn","providerArn"}:
-- exactly the roles the token may reach ('[]' reaches none). parent_id is
-- the token or session a token was minted with (NULL: none); a token is
-- refused once an ancestor is revoked or expired.
--
-- Before version 7 a SAML session kept its Role list in the store meta
-- space, where personal access tokens could not inherit it. Those live
-- sessions are revoked here, so every live SAML session holds its list in
-- this column; their users sign in again.

ALTER TABLE tokens ADD COLUMN roles TEXT CHECK (roles IS NULL OR json_type(roles) = 'array');
ALTER TABLE tokens ADD COLUMN parent_id TEXT;

UPDATE tokens SET revoked_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000000
 WHERE kind = 'session' AND name = 'login-saml' AND revoked_at IS NULL;
