package decision_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/decision"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend/local"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/sts"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

const (
	account    = "000000000000"
	selfIssuer = "https://gatehouse.test"
	ownRole    = "arn:aws:iam::000000000000:role/own"
	teamRole   = "arn:aws:iam::000000000000:role/team"
)

// countingStore counts the directory and role reads the decision point
// makes, to prove what its cache saves.
type countingStore struct {
	store.Store
	users, groups, roles, roleByName atomic.Int64
}

func (c *countingStore) GetUser(ctx context.Context, id string) (*store.User, error) {
	c.users.Add(1)
	return c.Store.GetUser(ctx, id)
}

func (c *countingStore) GroupsOfUser(ctx context.Context, id string) ([]*store.Group, error) {
	c.groups.Add(1)
	return c.Store.GroupsOfUser(ctx, id)
}

func (c *countingStore) ListRoles(ctx context.Context) ([]*store.Role, error) {
	c.roles.Add(1)
	return c.Store.ListRoles(ctx)
}

func (c *countingStore) GetRoleByName(ctx context.Context, name string) (*store.Role, error) {
	c.roleByName.Add(1)
	return c.Store.GetRoleByName(ctx, name)
}

type discard struct{}

func (discard) Emit(context.Context, audit.Event) error { return nil }

// stack is gatehouse's S3 plane wired as internal/server wires it: SigV4
// against real temporary credentials, the S3 gateway with mounts, STS's
// AuthorizeAs over one decision point, a real SQLite store (counted), on
// a loopback HTTP server. The clock is frozen at now unless a test moves it.
type stack struct {
	t      testing.TB
	st     *countingStore
	dp     *decision.Point
	issuer *credentials.Issuer
	srv    *httptest.Server
	now    atomic.Pointer[time.Time]
}

func (s *stack) clock() time.Time { return *s.now.Load() }

// advance moves the injected clock forward by d.
func (s *stack) advance(d time.Duration) {
	t := s.clock().Add(d)
	s.now.Store(&t)
}

func trustForGroup(group string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
"Principal":{"Federated":"arn:aws:iam::%s:oidc-provider/gatehouse.test"},"Action":"sts:AssumeRoleWithWebIdentity",
"Condition":{"ForAnyValue:StringEquals":{"gatehouse:groups":%q}}}]}`, account, group)
}

const allowAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`

const allowTeam = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::data/team/*","arn:aws:s3:::data"]}]}`

func newStack(t testing.TB) *stack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	sq, err := sqlite.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	require.NoError(t, err)
	t.Cleanup(func() { sq.Close() })
	s := &stack{t: t, st: &countingStore{Store: sq}}
	start := time.Now().UTC() // the SDK signs with the wall clock; from here on it is frozen
	s.now.Store(&start)
	master := make([]byte, 32)
	rand.Read(master)
	kr, err := credentials.LoadOrCreateKeyring(ctx, sq, master, s.clock)
	require.NoError(t, err)
	rev, err := credentials.NewRevoker(sq, credentials.RevokerOptions{Clock: s.clock})
	require.NoError(t, err)
	ver, err := credentials.NewVerifier(kr, rev)
	require.NoError(t, err)
	s.issuer = credentials.NewIssuer(kr, credentials.IssuerOptions{Clock: s.clock})
	s.dp, err = decision.New(decision.Options{Store: s.st, AccountID: account, SelfIssuer: selfIssuer,
		Audience: "gatehouse", Clock: s.clock})
	require.NoError(t, err)
	svc, err := sts.New(sts.Options{Store: sq, Audit: discard{}, Issuer: s.issuer, Verifier: ver, AccountID: account,
		ACSURL: selfIssuer + "/sts/saml", Clock: s.clock, Decision: s.dp})
	require.NoError(t, err)
	be, err := local.Open(filepath.Join(dir, "objects"))
	require.NoError(t, err)
	t.Cleanup(func() { be.Close() })
	require.NoError(t, be.CreateBucket(ctx, "data"))
	sv, err := sigv4.New(sigv4.Config{Lookup: s3gw.CredentialLookup{Verifier: ver, Clock: s.clock}, Service: "s3",
		Regions: []string{"us-east-1"}, Mode: sigv4.ModeS3, Clock: s.clock})
	require.NoError(t, err)
	mounts := &s3gw.StaticMounts{}
	require.NoError(t, mounts.Set([]s3gw.Mount{{ID: "m-team", Bucket: "data", Prefix: "team/", RoleARN: teamRole}}))
	gw, err := s3gw.New(s3gw.Options{Backend: be, Verifier: sv, Authorizer: svc, Audit: discard{}, Clock: s.clock, Mounts: mounts})
	require.NoError(t, err)
	s.srv = httptest.NewServer(gw)
	t.Cleanup(s.srv.Close)
	return s
}

// user creates an active user in groups (created as needed) and returns it.
func (s *stack) user(name string, groups ...string) *store.User {
	s.t.Helper()
	ctx := context.Background()
	u := &store.User{UserName: name, Active: true}
	require.NoError(s.t, s.st.CreateUser(ctx, u))
	for _, g := range groups {
		grp, err := s.st.GetGroupByName(ctx, g)
		if err != nil {
			grp = &store.Group{DisplayName: g}
			require.NoError(s.t, s.st.CreateGroup(ctx, grp))
		}
		grp.Members = append(grp.Members, store.Member{ID: u.ID, Type: store.MemberUser})
		require.NoError(s.t, s.st.UpdateGroup(ctx, grp))
	}
	return u
}

// role creates a role with a trust policy and one permission policy.
func (s *stack) role(name, trust, perms string) *store.Role {
	s.t.Helper()
	r := &store.Role{Name: name, TrustPolicy: trust, PermissionPolicies: []store.NamedPolicy{{Name: "p", Document: perms}}}
	require.NoError(s.t, s.st.CreateRole(context.Background(), r))
	return r
}

// client is an aws-sdk-go-v2 S3 client holding u's credentials for roleARN.
func (s *stack) client(u *store.User, roleARN string) *awss3.Client {
	s.t.Helper()
	c, err := s.issuer.Issue(context.Background(), credentials.SessionRequest{
		PrincipalID: u.ID, UserName: u.UserName, RoleARN: roleARN, RoleSessionName: u.UserName,
		AssumedRoleID: "AROAOWN:" + u.UserName,
	}, time.Hour)
	require.NoError(s.t, err)
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	return awss3.New(awss3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.srv.URL), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		HTTPClient:  s.srv.Client(),
	})
}
