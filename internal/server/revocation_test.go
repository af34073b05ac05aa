package server

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// homePolicyLive gives each user lake/home/<aws:username>/.
const homePolicyLive = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
 "Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::lake/home/${aws:username}/*"}]}`

// groupPolicyLive lets members of the group "analysts" read lake/reports/.
const groupPolicyLive = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
 "Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::lake/reports/*",
 "Condition":{"ForAnyValue:StringEquals":{"gatehouse:groups":"analysts"}}}]}`

// TestPolicyInputChangesRevoke proves issue 11 finding 10 (revocation): a
// group rename, or a change of the user name or attributes that policies
// read, revokes credentials minted before it, as a membership change does.
// The attack: credentials minted while the user was "alice" (or while the
// group was "analysts") keep matching home/${aws:username}/ (or a
// gatehouse:groups condition) after the directory has moved that name to
// someone else. A change that policies do not read (the display name)
// revokes nothing.
func TestPolicyInputChangesRevoke(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		policy string
		key    string
		change func(l *liveServer, u *store.User, g *store.Group)
		revoke bool
	}{
		{name: "user renamed", policy: homePolicyLive, key: "home/alice/x", revoke: true,
			change: func(l *liveServer, u *store.User, _ *store.Group) {
				u.UserName = "alice-departed"
				require.NoError(t, l.srv.Store.UpdateUser(ctx, u))
			}},
		{name: "user attributes changed", policy: homePolicyLive, key: "home/alice/x", revoke: true,
			change: func(l *liveServer, u *store.User, _ *store.Group) {
				u.Attributes = map[string][]string{"region": {"US"}}
				require.NoError(t, l.srv.Store.UpdateUser(ctx, u))
			}},
		{name: "group renamed", policy: groupPolicyLive, key: "reports/q3", revoke: true,
			change: func(l *liveServer, _ *store.User, g *store.Group) {
				g.DisplayName = "analysts-archive"
				require.NoError(t, l.srv.Store.UpdateGroup(ctx, g))
			}},
		{name: "display name changed", policy: homePolicyLive, key: "home/alice/x",
			change: func(l *liveServer, u *store.User, _ *store.Group) {
				u.DisplayName = "Alice A."
				require.NoError(t, l.srv.Store.UpdateUser(ctx, u))
			}},
		{name: "group member added", policy: groupPolicyLive, key: "reports/q3",
			change: func(l *liveServer, _ *store.User, g *store.Group) {
				bob := l.user("bob")
				g.Members = append(g.Members, store.Member{ID: bob.ID, Type: store.MemberUser})
				require.NoError(t, l.srv.Store.UpdateGroup(ctx, g))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := startLive(t)
			u := &store.User{UserName: "alice", Active: true, Attributes: map[string][]string{"region": {"EU"}}}
			require.NoError(t, l.srv.Store.CreateUser(ctx, u))
			g := &store.Group{DisplayName: "analysts", Members: []store.Member{{ID: u.ID, Type: store.MemberUser}}}
			require.NoError(t, l.srv.Store.CreateGroup(ctx, g))
			c, err := l.issuer.Issue(ctx, credentials.SessionRequest{
				PrincipalID: u.ID, UserName: u.UserName, SourceIdentity: u.UserName, Groups: []string{"analysts"},
				RoleARN: l.role("r", tc.policy), RoleSessionName: u.UserName, AssumedRoleID: "AROATEST:alice",
			}, time.Hour)
			require.NoError(t, err)
			client := l.s3(c, nil)
			require.NoError(t, putObj(client, "lake", tc.key, "v"), "fresh credentials work")

			tc.change(l, u, g)
			err = putObj(client, "lake", tc.key, "v2")
			if !tc.revoke {
				require.NoError(t, err, "a change policies do not read must not revoke")
				return
			}
			require.Error(t, err, "credentials minted before the change must be refused")
			require.Contains(t, []string{"InvalidToken", "ExpiredToken", "InvalidAccessKeyId", "AccessDenied"}, errCode(err))
		})
	}
}
