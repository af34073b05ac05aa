-- gatehouse metadata schema, version 7 (PostgreSQL): the role restriction a
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

ALTER TABLE tokens ADD COLUMN roles jsonb CHECK (roles IS NULL OR jsonb_typeof(roles) = 'array');
ALTER TABLE tokens ADD COLUMN parent_id text;

UPDATE tokens SET revoked_at = date_trunc('milliseconds', now())
 WHERE kind = 'session' AND name = 'login-saml' AND revoked_at IS NULL;
