package decision_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/decision"
)

// teamByTag lets the team role write under team/ and read only the objects
// tagged classification=public.
const teamByTag = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["s3:PutObject","s3:PutObjectTagging"],"Resource":"arn:aws:s3:::data/team/*"},
 {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/team/*",
  "Condition":{"StringEquals":{"s3:ExistingObjectTag/classification":"public"}}}]}`

// TestExistingObjectTagUnderMount proves issue 13 (s3:ExistingObjectTag,
// asked of the decision point) through the production wiring: under a
// mount bound to another role, the gateway asks the decision point whether
// that role's policies name the key, reads the object's tags, and the
// decision point allows the public object and denies the secret one. Had
// it asked about the session's own role (which names no tag key), the
// tags would not be read and both reads would be denied.
func TestExistingObjectTagUnderMount(t *testing.T) {
	s := newStack(t)
	s.role("own", trustForGroup("nobody"), allowAll)
	s.role("team", trustForGroup("team"), teamByTag)
	alice := s.user("alice", "team")
	c := s.client(alice, ownRole)
	ctx := context.Background()
	for key, tags := range map[string]string{"team/pub.csv": "classification=public", "team/sec.csv": "classification=secret"} {
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(key),
			Body: strings.NewReader(key), Tagging: aws.String(tags)})
		require.NoError(t, err)
	}
	out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("team/pub.csv")})
	require.NoError(t, err)
	out.Body.Close()
	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("team/sec.csv")})
	require.True(t, accessDenied(err), "got %v", err)
}

// TestNamesKeyPrefix checks the decision point's answer for the session's
// own role, a role it acts as, and its session policy.
func TestNamesKeyPrefix(t *testing.T) {
	s := newStack(t)
	s.role("own", trustForGroup("nobody"), allowAll)
	s.role("team", trustForGroup("team"), teamByTag)
	sess := &decision.Session{PrincipalID: "u1", RoleARN: ownRole, AssumedRoleID: "AROAOWN:u1", RoleSessionName: "u1"}
	withPolicy := *sess
	withPolicy.SessionPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:GetObject","Resource":"*",
  "Condition":{"StringEquals":{"s3:ExistingObjectTag/secret":"yes"}}}]}`
	cases := []struct {
		name  string
		req   decision.Request
		named bool
	}{
		{"own role", decision.Request{Session: sess}, false},
		{"acting as the team role", decision.Request{Session: sess, ActAs: teamRole}, true},
		{"session policy", decision.Request{Session: &withPolicy}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			named, err := s.dp.NamesKeyPrefix(context.Background(), tc.req, "s3:ExistingObjectTag/")
			require.NoError(t, err)
			require.Equal(t, tc.named, named)
		})
	}
	named, err := s.dp.NamesKeyPrefix(context.Background(), decision.Request{Session: sess, ActAs: "arn:aws:iam::000000000000:role/gone"}, "s3:ExistingObjectTag/")
	require.Error(t, err)
	require.True(t, named, "on an error the key is taken as named")
}

// BenchmarkNamesKeyPrefix measures what asking whether a policy names
// s3:ExistingObjectTag/ adds to every GET (issue 13, hot path), beside the
// Authorize call every GET makes anyway.
func BenchmarkNamesKeyPrefix(b *testing.B) {
	s := newStack(b)
	s.role("own", trustForGroup("nobody"), allowAll)
	sess := &decision.Session{PrincipalID: "u1", RoleARN: ownRole, AssumedRoleID: "AROAOWN:u1", RoleSessionName: "u1"}
	ctx := context.Background()
	b.Run("NamesKeyPrefix", func(b *testing.B) {
		for b.Loop() {
			if named, err := s.dp.NamesKeyPrefix(ctx, decision.Request{Session: sess}, "s3:ExistingObjectTag/"); err != nil || named {
				b.Fatal(named, err)
			}
		}
	})
	b.Run("Authorize", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.dp.Authorize(ctx, decision.Request{Session: sess, Action: "s3:GetObject",
				Resource: "arn:aws:s3:::data/k", Context: map[string][]string{"aws:sourceip": {"127.0.0.1"}}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
