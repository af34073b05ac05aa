package sts

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/api"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// withManagedPolicies restarts w's service with a store-backed
// ManagedPolicyResolver and returns the policy store.
func withManagedPolicies(t *testing.T, w *world) store.ManagedPolicyStore {
	t.Helper()
	mps, ok := w.st.(store.ManagedPolicyStore)
	require.True(t, ok, "the SQLite store implements store.ManagedPolicyStore")
	opts := w.opts
	opts.ManagedPolicies = NewStoreManagedPolicies(mps, testAccount)
	svc, err := New(opts)
	require.NoError(t, err)
	w.svc = svc
	return mps
}

func TestStoreManagedPoliciesResolve(t *testing.T) {
	w := newWorld(t)
	mps := withManagedPolicies(t, w)
	ctx := context.Background()
	doc := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}`
	require.NoError(t, mps.CreateManagedPolicy(ctx, &store.ManagedPolicy{Name: "Read", Path: "/eng/", Document: doc}))
	r := NewStoreManagedPolicies(mps, testAccount)
	got, err := r.ManagedPolicy(ctx, "arn:aws:iam::"+testAccount+":policy/eng/Read")
	require.NoError(t, err)
	require.Equal(t, doc, got)
	_, err = r.ManagedPolicy(ctx, "arn:aws:iam::"+testAccount+":policy/eng/read")
	require.NoError(t, err, "IAM names are case-insensitive")
	for _, arn := range []string{
		"arn:aws:iam::" + testAccount + ":policy/Read",       // wrong path
		"arn:aws:iam::" + testAccount + ":policy/eng/x/Read", // wrong path
		"arn:aws:iam::999999999999:policy/eng/Read",          // other account
		"arn:aws:iam::aws:policy/eng/Read",                   // AWS-managed
		"arn:aws:iam::" + testAccount + ":policy/eng/",       // no name
		"arn:aws:iam::" + testAccount + ":policy/eng/Nope",   // unknown
	} {
		_, err := r.ManagedPolicy(ctx, arn)
		require.ErrorIs(t, err, store.ErrNotFound, arn)
	}
	require.Nil(t, NewStoreManagedPolicies(nil, testAccount))
}

// TestPolicyArnsAWSCLI drives the real aws cli with --policy-arns: the
// session's permissions are the role's ∩ the managed session policies.
func TestPolicyArnsAWSCLI(t *testing.T) {
	w := newWorld(t)
	requireTool(t, "/usr/bin/aws", "awscli")
	mps := withManagedPolicies(t, w)
	ctx := context.Background()
	require.NoError(t, mps.CreateManagedPolicy(ctx, &store.ManagedPolicy{Name: "data-read", Path: "/eng/",
		Document: `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/*"}}`}))
	require.NoError(t, mps.CreateManagedPolicy(ctx, &store.ManagedPolicy{Name: "everything",
		Document: `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`}))
	readARN := "arn:aws:iam::" + testAccount + ":policy/eng/data-read"
	allARN := "arn:aws:iam::" + testAccount + ":policy/everything"
	base := []string{"--endpoint-url", w.url, "--region", "us-east-1", "--output", "json"}

	assume := func(arns ...string) *credentials.Claims {
		t.Helper()
		args := []string{"sts", "assume-role-with-web-identity", "--role-arn", analystARN,
			"--role-session-name", "bob-policy", "--web-identity-token", w.oidc.token(t, nil)}
		if len(arns) > 0 {
			args = append(args, "--policy-arns")
			for _, a := range arns {
				args = append(args, "arn="+a)
			}
		}
		var out struct{ Credentials cliCreds }
		runAWS(t, cliEnv(t), &out, append(args, base...)...)
		c, err := w.svc.LookupCredentials(ctx, out.Credentials.AccessKeyID, out.Credentials.SessionToken)
		require.NoError(t, err)
		return claimsOf(t, c)
	}
	allowed := func(c *credentials.Claims, action, resource string) bool {
		t.Helper()
		res, err := w.svc.Authorize(ctx, c, action, resource, nil)
		require.NoError(t, err)
		return res.Decision == iam.Allowed
	}

	plain := assume()
	require.True(t, allowed(plain, "s3:PutObject", "arn:aws:s3:::data/k"), "the role alone allows PutObject")

	read := assume(readARN)
	require.Equal(t, []string{readARN}, read.PolicyARNs)
	require.True(t, allowed(read, "s3:GetObject", "arn:aws:s3:::data/k"))
	require.False(t, allowed(read, "s3:PutObject", "arn:aws:s3:::data/k"), "not in the session policy")

	// A broad session policy grants nothing the role does not.
	wide := assume(allARN)
	require.True(t, allowed(wide, "s3:PutObject", "arn:aws:s3:::data/k"))
	require.False(t, allowed(wide, "s3:DeleteObject", "arn:aws:s3:::data/k"))
	require.False(t, allowed(wide, "s3:GetObject", "arn:aws:s3:::other/k"))

	// Several managed session policies are evaluated together, as AWS does.
	both := assume(readARN, allARN)
	require.True(t, allowed(both, "s3:PutObject", "arn:aws:s3:::data/k"))

	// Editing the managed policy applies to live sessions after the cache TTL.
	p, err := mps.GetManagedPolicyByName(ctx, "data-read")
	require.NoError(t, err)
	p.Document = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::data/*"}}`
	require.NoError(t, mps.UpdateManagedPolicy(ctx, p))
	w.advance(DefaultCacheTTL)
	require.True(t, allowed(read, "s3:PutObject", "arn:aws:s3:::data/k"), "the edit applies once the cache lapses")
	// Deleting it makes the sessions that name it fail closed.
	require.NoError(t, mps.DeleteManagedPolicy(ctx, p.ID))
	w.advance(DefaultCacheTTL)
	res, err := w.svc.Authorize(ctx, read, "s3:GetObject", "arn:aws:s3:::data/k", nil)
	require.Error(t, err)
	require.NotEqual(t, iam.Allowed, res.Decision)

	// An unknown ARN is refused before anything is issued.
	for _, arn := range []string{"arn:aws:iam::" + testAccount + ":policy/nope", "arn:aws:iam::aws:policy/ReadOnlyAccess"} {
		cmd := exec.Command("/usr/bin/aws", append([]string{"sts", "assume-role-with-web-identity", "--role-arn", analystARN,
			"--role-session-name", "bob-policy", "--web-identity-token", w.oidc.token(t, nil),
			"--policy-arns", "arn=" + arn}, base...)...)
		cmd.Env = cliEnv(t)
		msg, err := cmd.CombinedOutput()
		require.Error(t, err, string(msg))
		require.Contains(t, string(msg), "(ValidationError)")
		require.Contains(t, string(msg), "does not exist")
	}
}

// TestRevokeSessionViaREST issues two sessions for one user, revokes one
// through the admin REST API by the sessionId its GH4000I audit event
// records, and checks that it fails within 5 s while the other still works.
func TestRevokeSessionViaREST(t *testing.T) {
	w := newWorld(t)
	requireTool(t, "/usr/bin/aws", "awscli")
	ctx := context.Background()
	base := []string{"--endpoint-url", w.url, "--region", "us-east-1", "--output", "json"}

	// The admin API over the same store, with its own Revoker (as on another replica).
	idsvc := identity.NewService(w.st, w.audit, identity.Options{
		Argon2: identity.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	root := &store.User{UserName: "root", Active: true}
	require.NoError(t, w.st.CreateUser(ctx, root))
	_, err := idsvc.GrantPrivilege(ctx, root.ID, identity.PrivilegeAdmin, "system")
	require.NoError(t, err)
	adminTok, _, err := idsvc.CreateToken(ctx, nil, root.ID, "admin", 0)
	require.NoError(t, err)
	rev, err := credentials.NewRevoker(w.st, credentials.RevokerOptions{})
	require.NoError(t, err)
	h, err := api.New(api.Options{Store: w.st, Identity: idsvc, Audit: w.audit, Revoker: rev, AccountID: testAccount})
	require.NoError(t, err)
	apiSrv := httptest.NewServer(h)
	t.Cleanup(apiSrv.Close)

	issue := func() cliCreds {
		var out struct{ Credentials cliCreds }
		runAWS(t, cliEnv(t), &out, append([]string{"sts", "assume-role-with-web-identity", "--role-arn", analystARN,
			"--role-session-name", "bob-rev", "--web-identity-token", w.oidc.token(t, nil)}, base...)...)
		return out.Credentials
	}
	one, two := issue(), issue()
	whoami := func(c cliCreds) error {
		cmd := exec.Command("/usr/bin/aws", append([]string{"sts", "get-caller-identity"}, base...)...)
		cmd.Env = cliEnv(t, c.env()...)
		_, err := cmd.Output()
		return err
	}
	require.NoError(t, whoami(one))
	require.NoError(t, whoami(two))

	// The admin finds the session id in the audit log (GH4000I details).
	var sid string
	for _, ev := range w.auditEvents(t) {
		if ev.Code == audit.CodeSTSIssued && ev.Details["accessKeyId"] == one.AccessKeyID {
			sid, _ = ev.Details["sessionId"].(string)
		}
	}
	require.NotEmpty(t, sid, "the issuance event records the session id")

	req, err := http.NewRequest("POST", apiSrv.URL+"/api/v1/sts/revocations", strings.NewReader(`{"sessionId":"`+sid+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminTok)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	// Once this replica's revocation cache (at most MaxRevocationTTL, within
	// the 5 s promise) has lapsed, the revoked session is refused.
	w.advance(credentials.MaxRevocationTTL)
	require.Error(t, whoami(one), "revoked session still works after the revocation cache lapsed")
	require.NoError(t, whoami(two), "another session of the same user is unaffected")

	var revoked []audit.Event
	for rec, err := range audit.Search(w.auditDir, audit.Query{Action: "api.revokeCredentials"}) {
		require.NoError(t, err)
		revoked = append(revoked, *rec.Event)
	}
	require.Len(t, revoked, 1)
	require.Equal(t, audit.CodeSTSRevoked, revoked[0].Code)
	require.Equal(t, "root", revoked[0].Actor.User)
	require.Equal(t, sid, revoked[0].Resource.ID)
}
