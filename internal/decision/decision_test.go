package decision_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/decision"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// deleteUnderMount deletes n keys under the team mount in one
// DeleteObjects request and returns how many were refused.
func deleteUnderMount(t *testing.T, c *awss3.Client, n int) int {
	t.Helper()
	ids := make([]types.ObjectIdentifier, n)
	for i := range ids {
		ids[i] = types.ObjectIdentifier{Key: aws.String(fmt.Sprintf("team/k%04d", i))}
	}
	out, err := c.DeleteObjects(context.Background(), &awss3.DeleteObjectsInput{Bucket: aws.String("data"),
		Delete: &types.Delete{Objects: ids}})
	require.NoError(t, err)
	require.Len(t, out.Deleted, n-len(out.Errors))
	return len(out.Errors)
}

// TestDeleteObjectsUnderMountReadsDirectoryOnce (issue 12 §1: mount
// entitlement goes through the decision point, cached): a 1,000-key
// DeleteObjects under a mount bound to another role reads the caller, their
// groups and the role list at most once, not once per key. Before the
// decision point the gateway asked websso.Entitled per key, which read the
// user, their groups and every role each time (1,000 of each here).
func TestDeleteObjectsUnderMountReadsDirectoryOnce(t *testing.T) {
	s := newStack(t)
	s.role("own", trustForGroup("nobody"), allowAll)
	s.role("team", trustForGroup("team"), allowTeam)
	alice := s.user("alice", "team")
	c := s.client(alice, ownRole)
	s.st.users.Store(0)
	s.st.groups.Store(0)
	s.st.roles.Store(0)
	s.st.roleByName.Store(0)

	require.Zero(t, deleteUnderMount(t, c, 1000))
	require.LessOrEqual(t, s.st.users.Load(), int64(1), "GetUser calls")
	require.LessOrEqual(t, s.st.groups.Load(), int64(1), "GroupsOfUser calls")
	require.LessOrEqual(t, s.st.roles.Load(), int64(1), "ListRoles calls")
	require.LessOrEqual(t, s.st.roleByName.Load(), int64(2), "GetRoleByName calls")
}

// accessDenied reports whether err is S3's AccessDenied.
func accessDenied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "AccessDenied"
}

// TestChangesApplyAtOnceHereAndWithinTTLElsewhere (issue 12 §1: a change
// applies at once on the replica that made it, and within the TTL on the
// others): a group membership and a role-policy change reach a live
// session's mount access at once after Changed (what the server's store
// wrapper calls after each write), and without it once the TTL passes
// (another replica's write), never before.
func TestChangesApplyAtOnceHereAndWithinTTLElsewhere(t *testing.T) {
	ctx := context.Background()
	put := func(c *awss3.Client) error {
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("team/a.csv"),
			Body: nil})
		return err
	}
	t.Run("membership here", func(t *testing.T) {
		s := newStack(t)
		s.role("own", trustForGroup("nobody"), allowAll)
		s.role("team", trustForGroup("team"), allowTeam)
		s.user("bob", "team")
		alice := s.user("alice", "other")
		c := s.client(alice, ownRole)
		require.True(t, accessDenied(put(c)), "not a member yet")
		g, err := s.st.GetGroupByName(ctx, "team")
		require.NoError(t, err)
		g.Members = append(g.Members, store.Member{ID: alice.ID, Type: store.MemberUser})
		require.NoError(t, s.st.UpdateGroup(ctx, g))
		s.dp.Changed()
		require.NoError(t, put(c), "membership applies at once")
	})
	t.Run("role policy here and elsewhere", func(t *testing.T) {
		s := newStack(t)
		s.role("own", trustForGroup("nobody"), allowAll)
		r := s.role("team", trustForGroup("team"), allowTeam)
		alice := s.user("alice", "team")
		c := s.client(alice, ownRole)
		require.NoError(t, put(c))
		r.PermissionPolicies = []store.NamedPolicy{{Name: "p", Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}`}}
		require.NoError(t, s.st.UpdateRole(ctx, r))
		// Another replica's write: not seen before the TTL...
		require.NoError(t, put(c))
		s.advance(decision.DefaultTTL)
		// ...and seen once it has passed.
		require.True(t, accessDenied(put(c)))
		r.PermissionPolicies = []store.NamedPolicy{{Name: "p", Document: allowTeam}}
		require.NoError(t, s.st.UpdateRole(ctx, r))
		s.dp.Changed()
		require.NoError(t, put(c), "this replica's write applies at once")
	})
}

// TestNotEntitledToMountRoleIsDenied: a caller whose user could not pick a
// mount's role is refused under the mount with S3's AccessDenied, and so is
// a disabled user who once could.
func TestNotEntitledToMountRoleIsDenied(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	s.role("own", trustForGroup("nobody"), allowAll)
	s.role("team", trustForGroup("team"), allowTeam)
	mallory := s.user("mallory", "other")
	_, err := s.client(mallory, ownRole).GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("team/x")})
	require.True(t, accessDenied(err), "%v", err)
	alice := s.user("alice", "team")
	alice.Active = false
	require.NoError(t, s.st.UpdateUser(ctx, alice))
	s.dp.Changed()
	require.Equal(t, 1000, deleteUnderMount(t, s.client(alice, ownRole), 1000))
}
