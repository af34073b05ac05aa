package server

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// TestEmptyUserNameIsAnAbsentConditionKey proves the aws:username gap left
// by issue 11 (finding 4): a session without a user name (a federated
// identity linked to no directory user) must not present aws:username as
// an empty but present condition key. A Null deny guard must fire for it,
// and a StringLike "*" grant ("any named user") must not match it; a named
// user passes both.
func TestEmptyUserNameIsAnAbsentConditionKey(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		policy string
	}{
		{"Null deny guard", `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::lake/*"},
 {"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Null":{"aws:username":"true"}}}]}`},
		{"StringLike grant to named users", `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::lake/*",
  "Condition":{"StringLike":{"aws:username":"*"}}}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := startLive(t)
			role := l.role("r", tc.policy)
			alice := l.user("alice")
			require.NoError(t, putObj(l.s3(l.creds(alice, role), nil), "lake", "shared/x", "v"), "a named user passes")

			anon, err := l.issuer.Issue(ctx, credentials.SessionRequest{
				PrincipalID: "fed-0123456789abcdef", RoleARN: role, RoleSessionName: "fed-user",
				AssumedRoleID: "AROATEST:fed-user",
			}, time.Hour)
			require.NoError(t, err)
			_, err = getObj(l.s3(anon, nil), "lake", "shared/x")
			require.Equal(t, "AccessDenied", errCode(err), "a session without a user name has no aws:username")
		})
	}
}
