package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/api"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

type memAudit struct {
	mu     sync.Mutex
	events []audit.Event
}

func (m *memAudit) Emit(_ context.Context, e audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
	return nil
}

// startAdminAPI runs the real REST API over a real SQLite store and
// returns its URL and a bootstrap admin token.
func startAdminAPI(t *testing.T) (string, string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gh.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	em := &memAudit{}
	svc := identity.NewService(st, em, identity.Options{
		Argon2: identity.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	tokFile := filepath.Join(t.TempDir(), "bootstrap.token")
	created, err := svc.Bootstrap(ctx, tokFile)
	require.NoError(t, err)
	require.True(t, created)
	tok, err := os.ReadFile(tokFile)
	require.NoError(t, err)
	h, err := api.New(api.Options{Store: st, Identity: svc, Audit: em})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Setenv("GATEHOUSE_TOKEN", "")
	t.Setenv("GATEHOUSE_SERVER", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	return srv.URL, strings.TrimSpace(string(tok))
}

func runCmd(t *testing.T, cmd *cobra.Command, stdin string, args ...string) (string, string, error) {
	t.Helper()
	return runCmdContext(t, context.Background(), cmd, stdin, args...)
}

// runCmdContext is runCmd with the command's context: cancelling ctx ends
// a command that waits (a browser sign-in).
func runCmdContext(t *testing.T, ctx context.Context, cmd *cobra.Command, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SilenceErrors = true
	err := cmd.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

func TestAdminCLI(t *testing.T) {
	url, tok := startAdminAPI(t)
	g := []string{"--server", url, "--token", tok}
	admin := func(stdin string, args ...string) (string, error) {
		t.Helper()
		out, _, err := runCmd(t, newAdminCmd(), stdin, append(args, g...)...)
		return out, err
	}

	out, err := admin("", "users", "create", "alice", "--display-name", "Alice Liddell",
		"--email", "alice@example.com", "--attr", "region=EU", "--attr", "purpose=a,b")
	require.NoError(t, err, out)
	require.Contains(t, out, "Alice Liddell")
	require.Contains(t, out, "a, b")

	out, err = admin("", "users", "create", "robot", "--service")
	require.NoError(t, err, out)

	out, err = admin("", "users", "list")
	require.NoError(t, err)
	require.Contains(t, out, "USERNAME")
	require.Contains(t, out, "alice@example.com")
	require.Contains(t, out, "bootstrap-admin")
	require.Contains(t, out, "service")

	out, err = admin("", "users", "list", "--json")
	require.NoError(t, err)
	var lst struct {
		Users []map[string]any `json:"users"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &lst))
	require.Len(t, lst.Users, 3)

	out, err = admin("", "users", "update", "alice", "--title", "Queen")
	require.NoError(t, err, out)
	require.Contains(t, out, "Queen")
	_, err = admin("", "users", "update", "alice", "--title", "Stale", "--revision", "1")
	var se *serverError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "conflict", se.Code)
	require.NotEmpty(t, se.RequestID)
	require.Contains(t, err.Error(), "request id "+se.RequestID)

	out, err = admin("", "users", "set-attr", "alice", "team", "data", "ml")
	require.NoError(t, err)
	require.Contains(t, out, "data, ml")
	out, err = admin("", "users", "unset-attr", "alice", "region")
	require.NoError(t, err)
	require.NotContains(t, out, "region")

	out, err = admin("alice-password-1\n", "users", "set-password", "alice")
	require.NoError(t, err, out)
	require.Contains(t, out, "password set")

	out, err = admin("", "groups", "create", "analysts", "--member", "alice")
	require.NoError(t, err, out)
	require.Contains(t, out, "Members:")
	out, err = admin("", "groups", "add-member", "analysts", "robot", "--type", "user")
	require.NoError(t, err, out)
	out, err = admin("", "groups", "list")
	require.NoError(t, err)
	require.Contains(t, out, "analysts")
	out, err = admin("", "groups", "remove-member", "analysts", "robot")
	require.NoError(t, err, out)
	out, err = admin("", "groups", "get", "analysts", "--json")
	require.NoError(t, err)
	require.Contains(t, out, `"members"`)

	// Tokens: the secret alone on stdout, usable at once.
	out, err = admin("", "tokens", "create", "--name", "ci", "--principal", "robot", "--ttl", "24h")
	require.NoError(t, err, out)
	robotTok := strings.TrimSpace(out)
	require.True(t, strings.HasPrefix(robotTok, "ghp_"), out)
	out, err = admin("", "tokens", "list", "--principal", "robot")
	require.NoError(t, err)
	require.Contains(t, out, "ci")
	require.Contains(t, out, "active")
	id := strings.Split(robotTok, "_")[1]

	// A non-admin token is refused admin operations with the server's message.
	_, _, err = runCmd(t, newAdminCmd(), "", "users", "list", "--server", url, "--token", robotTok)
	require.ErrorAs(t, err, &se)
	require.Equal(t, "forbidden", se.Code)
	require.Equal(t, 403, se.Status)

	out, err = admin("", "tokens", "revoke", id)
	require.NoError(t, err)
	require.Contains(t, out, "revoked")
	_, _, err = runCmd(t, newAdminCmd(), "", "tokens", "list", "--server", url, "--token", robotTok)
	require.ErrorAs(t, err, &se)
	require.Equal(t, 401, se.Status)

	out, err = admin("", "users", "disable", "alice")
	require.NoError(t, err)
	require.Contains(t, out, "false")
	out, err = admin("", "users", "enable", "alice")
	require.NoError(t, err, out)
	out, err = admin("", "groups", "delete", "analysts")
	require.NoError(t, err, out)
	out, err = admin("", "users", "delete", "robot")
	require.NoError(t, err, out)
	_, err = admin("", "users", "get", "robot")
	require.ErrorAs(t, err, &se)
	require.Equal(t, "not_found", se.Code)

	// Token from a file and from the environment.
	tf := filepath.Join(t.TempDir(), "tok")
	require.NoError(t, os.WriteFile(tf, []byte(tok+"\n"), 0o600))
	_, _, err = runCmd(t, newAdminCmd(), "", "users", "get", "alice", "--server", url, "--token-file", tf)
	require.NoError(t, err)
	t.Setenv("GATEHOUSE_TOKEN", tok)
	_, _, err = runCmd(t, newAdminCmd(), "", "users", "get", "alice", "--server", url)
	require.NoError(t, err)
	t.Setenv("GATEHOUSE_TOKEN", "")
	_, _, err = runCmd(t, newAdminCmd(), "", "users", "get", "alice", "--server", url)
	require.ErrorContains(t, err, "no token")

	// Login stores a session the admin commands then use.
	out, _, err = runCmd(t, newLoginCmd(), "alice-password-1\n", "--server", url, "--username", "alice")
	require.NoError(t, err, out)
	require.Contains(t, out, "logged in")
	p, err := credentialsPath()
	require.NoError(t, err)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	out, _, err = runCmd(t, newAdminCmd(), "", "tokens", "list", "--server", url)
	require.NoError(t, err, out)
	require.Contains(t, out, "session")
	_, _, err = runCmd(t, newLoginCmd(), "wrong-password\n", "--server", url, "--username", "alice")
	require.ErrorAs(t, err, &se)
	require.Equal(t, "unauthenticated", se.Code)
	require.False(t, errors.Is(err, io.EOF))

	// Privileges: a SCIM caller, then a real admin, which retires the
	// bootstrap token (issue 11 finding 9).
	out, err = admin("", "users", "create", "provisioner", "--service")
	require.NoError(t, err, out)
	out, err = admin("", "privileges", "grant", "provisioner", "scim")
	require.NoError(t, err, out)
	require.Contains(t, out, "provisioner holds scim")
	out, err = admin("", "privileges", "list")
	require.NoError(t, err, out)
	require.Contains(t, out, "bootstrap-admin")
	require.Contains(t, out, "provisioner")
	out, err = admin("", "privileges", "grant", "alice", "admin")
	require.NoError(t, err, out)
	_, err = admin("", "privileges", "list")
	require.ErrorAs(t, err, &se)
	require.Equal(t, "unauthenticated", se.Code, "the bootstrap token ended when it made a real admin")
	out, _, err = runCmd(t, newAdminCmd(), "", "privileges", "revoke", "provisioner", "scim", "--server", url)
	require.NoError(t, err, out)
	require.Contains(t, out, "scim revoked from provisioner")
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func testIdPMetadata(t *testing.T, entityID string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	return `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="` + entityID + `">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` +
		base64.StdEncoding.EncodeToString(der) + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`
}

func TestAdminCLIRolesAndProviders(t *testing.T) {
	url, tok := startAdminAPI(t)
	g := []string{"--server", url, "--token", tok}
	admin := func(stdin string, args ...string) (string, error) {
		t.Helper()
		out, _, err := runCmd(t, newAdminCmd(), stdin, append(args, g...)...)
		return out, err
	}
	dir := t.TempDir()
	trust := writeFile(t, dir, "trust.json", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Principal":{"Federated":"arn:aws:iam::000000000000:saml-provider/okta"},"Action":"sts:AssumeRoleWithSAML"}]}`)
	read := writeFile(t, dir, "read.json", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::lake/*"}}`)
	bad := writeFile(t, dir, "bad.json", `{"Version":"2012-10-17","Statement":{"Effect":"Perhaps","Action":"s3:GetObject","Resource":"*"}}`)
	notJSON := writeFile(t, dir, "x.json", `{`)

	// SAML and OIDC providers.
	md := writeFile(t, dir, "okta.xml", testIdPMetadata(t, "http://www.okta.com/exk1"))
	out, err := admin("", "providers", "saml", "create", "--name", "okta", "--metadata", md)
	require.NoError(t, err, out)
	require.Contains(t, out, "http://www.okta.com/exk1")
	require.Contains(t, out, "arn:aws:iam::000000000000:saml-provider/okta")
	out, err = admin("", "providers", "saml", "list")
	require.NoError(t, err)
	require.Contains(t, out, "ENTITY ID")
	require.Contains(t, out, "okta")
	_, err = admin("<nope/>", "providers", "saml", "create", "--name", "bad", "--metadata", "-")
	var se *serverError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 400, se.Status)
	require.Contains(t, se.Message, "metadataXml")

	out, err = admin("", "providers", "oidc", "create", "--issuer", "https://token.actions.githubusercontent.com",
		"--audience", "sts.amazonaws.com", "--audience", "gatehouse", "--groups-claim", "groups")
	require.NoError(t, err, out)
	require.Contains(t, out, "arn:aws:iam::000000000000:oidc-provider/token.actions.githubusercontent.com")
	out, err = admin("", "providers", "oidc", "list", "--json")
	require.NoError(t, err)
	var ol struct {
		Providers []map[string]any `json:"oidcProviders"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &ol))
	require.Len(t, ol.Providers, 1)
	require.Equal(t, []any{"sts.amazonaws.com", "gatehouse"}, ol.Providers[0]["audiences"])
	_, err = admin("", "providers", "oidc", "create", "--issuer", "http://idp.example.com", "--audience", "a")
	require.ErrorAs(t, err, &se)
	require.Contains(t, se.Message, "issuerUrl")

	// Roles.
	out, err = admin("", "roles", "create", "--name", "data-reader", "--trust-policy", trust,
		"--policy", "read="+read, "--max-session-duration", "4h", "--tag", "team=data", "--path", "/eng/")
	require.NoError(t, err, out)
	require.Contains(t, out, "arn:aws:iam::000000000000:role/eng/data-reader")
	require.Contains(t, out, "4h0m0s")
	require.Contains(t, out, "sts:AssumeRoleWithSAML", "get shows the trust policy")
	_, err = admin("", "roles", "create", "--name", "broken", "--trust-policy", trust, "--policy", "p="+bad)
	require.ErrorAs(t, err, &se)
	require.Equal(t, "invalid_request", se.Code)
	require.Contains(t, se.Message, "policies.0.document")
	require.Contains(t, se.Message, "Statement.Effect")
	_, err = admin("", "roles", "create", "--name", "broken", "--trust-policy", notJSON)
	require.ErrorContains(t, err, "not valid JSON")
	_, err = admin("", "roles", "create", "--name", "broken", "--trust-policy", trust, "--max-session-duration", "1500ms")
	require.ErrorContains(t, err, "whole number of seconds")
	_, err = admin("", "roles", "create", "--name", "broken", "--trust-policy", trust, "--max-session-duration", "13h")
	require.ErrorAs(t, err, &se)
	require.Contains(t, se.Message, "maxSessionDuration")

	out, err = admin("", "roles", "list")
	require.NoError(t, err)
	require.Contains(t, out, "data-reader")
	require.NotContains(t, out, "broken")

	out, err = admin(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}}`,
		"roles", "put-policy", "data-reader", "write", "-")
	require.NoError(t, err, out)
	require.Contains(t, out, "read, write")
	_, err = admin("", "roles", "put-policy", "data-reader", "write", read, "--revision", "1")
	require.ErrorAs(t, err, &se)
	require.Equal(t, "conflict", se.Code)
	out, err = admin("", "roles", "delete-policy", "data-reader", "write")
	require.NoError(t, err, out)
	require.NotContains(t, out, "write")
	out, err = admin("", "roles", "set-trust-policy", "data-reader", trust)
	require.NoError(t, err, out)
	_, err = admin("", "roles", "set-trust-policy", "data-reader", read)
	require.ErrorAs(t, err, &se)
	require.Contains(t, se.Message, "Principal")
	out, err = admin("", "roles", "get", "data-reader", "--json")
	require.NoError(t, err)
	var role map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &role))
	require.Equal(t, float64(14400), role["maxSessionDuration"])
	require.Equal(t, map[string]any{"team": "data"}, role["tags"])

	out, err = admin("", "roles", "delete", "data-reader")
	require.NoError(t, err, out)
	_, err = admin("", "roles", "get", "data-reader")
	require.ErrorAs(t, err, &se)
	require.Equal(t, "not_found", se.Code)

	out, err = admin("", "providers", "oidc", "delete", "https://token.actions.githubusercontent.com/")
	require.NoError(t, err, out)
	out, err = admin("", "providers", "saml", "delete", "okta")
	require.NoError(t, err, out)
	out, err = admin("", "providers", "oidc", "list")
	require.NoError(t, err)
	require.NotContains(t, out, "githubusercontent")
}

func TestAdminCLIPoliciesAndSessions(t *testing.T) {
	url, tok := startAdminAPI(t)
	g := []string{"--server", url, "--token", tok}
	admin := func(stdin string, args ...string) (string, error) {
		t.Helper()
		out, _, err := runCmd(t, newAdminCmd(), stdin, append(args, g...)...)
		return out, err
	}
	dir := t.TempDir()
	read := writeFile(t, dir, "read.json", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::lake/*"}}`)
	write := writeFile(t, dir, "write.json", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::lake/*"}}`)
	withPrincipal := writeFile(t, dir, "p.json", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}}`)

	out, err := admin("", "policies", "create", "--name", "lake-read", "--document", read, "--path", "/eng/", "--description", "reads")
	require.NoError(t, err, out)
	require.Contains(t, out, "arn:aws:iam::000000000000:policy/eng/lake-read")
	require.Contains(t, out, "s3:GetObject", "create shows the document")
	_, err = admin("", "policies", "create", "--name", "LAKE-READ", "--document", read)
	var se *serverError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "already_exists", se.Code)
	_, err = admin("", "policies", "create", "--name", "bad", "--document", withPrincipal)
	require.ErrorAs(t, err, &se)
	require.Equal(t, 400, se.Status)
	require.Contains(t, se.Message, "Principal")
	_, err = admin("", "policies", "create", "--name", "x")
	require.ErrorContains(t, err, "--document")

	out, err = admin("", "policies", "list")
	require.NoError(t, err)
	require.Contains(t, out, "REVISION")
	require.Contains(t, out, "lake-read")
	out, err = admin("", "policies", "get", "Lake-Read", "--json")
	require.NoError(t, err)
	var p map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	require.Equal(t, float64(1), p["revision"])

	// update reads the current revision unless --revision is given.
	out, err = admin("", "policies", "update", "lake-read", "--document", write)
	require.NoError(t, err, out)
	require.Contains(t, out, "s3:PutObject")
	require.Regexp(t, `Revision:\s+2\b`, out)
	_, err = admin("", "policies", "update", "lake-read", "--document", read, "--revision", "1")
	require.ErrorAs(t, err, &se)
	require.Equal(t, 409, se.Status)
	out, err = admin("", "policies", "update", "lake-read", "--document", read, "--revision", "2")
	require.NoError(t, err, out)

	out, err = admin("", "policies", "delete", "lake-read")
	require.NoError(t, err)
	require.Contains(t, out, "deleted policy lake-read")
	_, err = admin("", "policies", "get", "lake-read")
	require.ErrorAs(t, err, &se)
	require.Equal(t, 404, se.Status)

	// sessions revoke: exactly one target; this test server has no revoker.
	_, err = admin("", "sessions", "revoke")
	require.ErrorContains(t, err, "exactly one")
	_, err = admin("", "sessions", "revoke", "--session", "00ff", "--user", "root")
	require.ErrorContains(t, err, "exactly one")
	_, err = admin("", "sessions", "revoke", "--session", "00112233445566778899aabbccddeeff")
	require.ErrorAs(t, err, &se)
	require.Equal(t, 503, se.Status)
}

func TestAdminCLIMounts(t *testing.T) {
	url, tok := startAdminAPI(t)
	g := []string{"--server", url, "--token", tok}
	admin := func(args ...string) (string, error) {
		t.Helper()
		out, _, err := runCmd(t, newAdminCmd(), "", append(args, g...)...)
		return out, err
	}
	dir := t.TempDir()
	trust := writeFile(t, dir, "trust.json", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Principal":{"Federated":"arn:aws:iam::000000000000:saml-provider/okta"},"Action":"sts:AssumeRoleWithSAML"}]}`)
	out, err := admin("roles", "create", "--name", "hr-reader", "--path", "/people/", "--trust-policy", trust)
	require.NoError(t, err, out)
	const arn = "arn:aws:iam::000000000000:role/people/hr-reader"

	// --role takes a name (resolved to the role's ARN) or an ARN.
	out, err = admin("mounts", "create", "--bucket", "lake", "--prefix", "hr/", "--role", "hr-reader", "--description", "HR")
	require.NoError(t, err, out)
	require.Contains(t, out, "s3://lake/hr/")
	require.Contains(t, out, arn)
	out, err = admin("mounts", "create", "--bucket", "lake", "--prefix", "hr/payroll/", "--role", arn, "--json")
	require.NoError(t, err, out)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	id := m["id"].(string)
	require.Equal(t, arn, m["roleArn"])

	var se *serverError
	_, err = admin("mounts", "create", "--bucket", "lake", "--prefix", "hr/", "--role", "hr-reader")
	require.ErrorAs(t, err, &se)
	require.Equal(t, 409, se.Status)
	require.Equal(t, "already_exists", se.Code)
	_, err = admin("mounts", "create", "--bucket", "lake", "--prefix", "../", "--role", "hr-reader")
	require.ErrorAs(t, err, &se)
	require.Equal(t, 400, se.Status)
	require.Contains(t, se.Message, "prefix")
	_, err = admin("mounts", "create", "--bucket", "lake", "--prefix", "x/", "--role", "ghost")
	require.ErrorAs(t, err, &se)
	require.Equal(t, 404, se.Status, "an unknown role name")
	_, err = admin("mounts", "create", "--bucket", "lake", "--prefix", "x/", "--role", "arn:aws:iam::000000000000:role/ghost")
	require.ErrorAs(t, err, &se)
	require.Equal(t, 400, se.Status)
	_, err = admin("mounts", "create", "--bucket", "lake", "--prefix", "x/")
	require.ErrorContains(t, err, "role")

	out, err = admin("mounts", "list")
	require.NoError(t, err)
	require.Contains(t, out, "PREFIX")
	require.Contains(t, out, "hr/payroll/")
	out, err = admin("mounts", "list", "--bucket", "other")
	require.NoError(t, err)
	require.NotContains(t, out, "hr/")
	out, err = admin("mounts", "get", id)
	require.NoError(t, err)
	require.Regexp(t, `Revision:\s+1\b`, out)

	out, err = admin("mounts", "delete", id)
	require.NoError(t, err)
	require.Contains(t, out, "deleted mount "+id)
	_, err = admin("mounts", "get", id)
	require.ErrorAs(t, err, &se)
	require.Equal(t, 404, se.Status)
	out, err = admin("mounts", "list")
	require.NoError(t, err)
	require.NotContains(t, out, "hr/payroll/")
}

// TestAdminCLILinks: `gatehouse admin links` links a provider's subject to
// a person, refuses to rebind it, sets the provider's binding rule, and
// deletes the link (issue 11 finding 1).
func TestAdminCLILinks(t *testing.T) {
	url, tok := startAdminAPI(t)
	g := []string{"--server", url, "--token", tok}
	admin := func(args ...string) (string, error) {
		t.Helper()
		out, _, err := runCmd(t, newAdminCmd(), "", append(args, g...)...)
		return out, err
	}
	out, err := admin("providers", "oidc", "create", "--issuer", "https://idp.example.com/corp", "--audience", "gatehouse", "--json")
	require.NoError(t, err, out)
	var p map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	out, err = admin("users", "create", "alice")
	require.NoError(t, err, out)
	out, err = admin("users", "create", "bob")
	require.NoError(t, err, out)

	out, err = admin("links", "create", "--provider", "https://idp.example.com/corp", "--subject", "00u1", "--user", "alice")
	require.NoError(t, err, out)
	require.Contains(t, out, "00u1")
	require.Contains(t, out, "alice")
	var se *serverError
	_, err = admin("links", "create", "--provider", p["id"].(string), "--subject", "00u1", "--user", "bob")
	require.ErrorAs(t, err, &se)
	require.Equal(t, 409, se.Status, "a linked subject is never rebound")
	out, err = admin("links", "list", "--user", "alice")
	require.NoError(t, err, out)
	require.Contains(t, out, "00u1")
	require.Contains(t, out, "admin")

	out, err = admin("links", "rule", p["id"].(string), "--trust-email", "--unlinked", "federated")
	require.NoError(t, err, out)
	require.Contains(t, out, "federated")
	_, err = admin("links", "rule", p["id"].(string), "--unlinked", "allow")
	require.ErrorAs(t, err, &se)
	require.Equal(t, 400, se.Status)

	out, err = admin("links", "delete", "--provider", p["id"].(string), "--subject", "00u1")
	require.NoError(t, err, out)
	out, err = admin("links", "list")
	require.NoError(t, err, out)
	require.NotContains(t, out, "00u1")
}
