package audit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/requestid"
)

// TestBuilderFields: the builder stamps the injected clock's time, takes our
// and the client's request ids apart from the context, clips every
// attacker-chosen field, and never lets an event without an outcome pass as
// an allow.
func TestBuilderFields(t *testing.T) {
	clk := newFakeClock()
	long := strings.Repeat("x", 70_000)
	ctx := requestid.WithClient(requestid.With(context.Background(), "ours-1"), "theirs-1")
	tests := []struct {
		name  string
		build func() Event
		check func(t *testing.T, e Event)
	}{
		{"ids and actor", func() Event {
			return NewEvent(clk.Now, CodeS3Access, "s3.GetObject").Request(ctx).
				Actor(Actor{UserID: "u1", User: "alice", Impersonator: "admin", AuthMethod: "sigv4", SessionID: "s1", AccessKeyID: "AKIA1"}).
				Source("192.0.2.1", "aws-cli/2").Allow().Event()
		}, func(t *testing.T, e Event) {
			require.Equal(t, "ours-1", e.RequestID)
			require.Equal(t, "theirs-1", e.ClientRequestID)
			require.Equal(t, Actor{UserID: "u1", User: "alice", Impersonator: "admin", AuthMethod: "sigv4", SessionID: "s1",
				AccessKeyID: "AKIA1", SourceIP: "192.0.2.1", UserAgent: "aws-cli/2"}, e.Actor)
			require.Equal(t, Allow, e.Decision)
			require.Equal(t, time.UTC, e.Time.Location())
			require.False(t, e.Time.IsZero())
		}},
		{"attacker-chosen values clipped", func() Event {
			return NewEvent(clk.Now, CodeS3Denied, "s3."+long).Source(long, long).
				Actor(Actor{User: long, AccessKeyID: long}).Resource(Resource{Type: "s3", ID: long, Name: long}).
				Deny(long).RequestIDs(long, long).Event()
		}, func(t *testing.T, e Event) {
			require.LessOrEqual(t, len(e.Action), MaxField)
			require.LessOrEqual(t, len(e.Actor.UserAgent), MaxUserAgent)
			require.LessOrEqual(t, len(e.Actor.SourceIP), 64)
			require.LessOrEqual(t, len(e.Actor.User), MaxField)
			require.LessOrEqual(t, len(e.Actor.AccessKeyID), 128)
			require.LessOrEqual(t, len(e.Resource.Name), MaxField)
			require.LessOrEqual(t, len(e.Resource.ID), MaxField)
			require.LessOrEqual(t, len(e.Reason), MaxReason)
			require.LessOrEqual(t, len(e.RequestID), 128)
			require.LessOrEqual(t, len(e.ClientRequestID), 128)
		}},
		{"no outcome is an error, not an allow", func() Event {
			return NewEvent(clk.Now, CodeUserCreated, "api.createUser").Event()
		}, func(t *testing.T, e Event) {
			require.Equal(t, Error, e.Decision)
			require.Equal(t, "outcome not recorded", e.Reason)
		}},
		{"actor without source keeps the source", func() Event {
			return NewEvent(clk.Now, CodeLoginFailed, "identity.login").Source("192.0.2.9", "curl").
				Actor(Actor{User: "bob"}).Deny("wrong password").Event()
		}, func(t *testing.T, e Event) {
			require.Equal(t, "192.0.2.9", e.Actor.SourceIP)
			require.Equal(t, "curl", e.Actor.UserAgent)
			require.Equal(t, "bob", e.Actor.User)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, tc.build()) })
	}
}

// TestBuilderRebuildAfterFailure: a second Event from the same builder
// (audit before effect, then "not applied") has the new outcome and a later
// time, and does not share its details with the first.
func TestBuilderRebuildAfterFailure(t *testing.T) {
	clk := newFakeClock()
	b := NewEvent(clk.Now, CodeGroupUpdated, "scim.group.patch").Allow().Detail("membersAdded", []string{"u1"})
	first := b.Event()
	second := b.Fail("not applied: conflict").Detail("extra", 1).Event()
	require.Equal(t, Allow, first.Decision)
	require.Equal(t, Error, second.Decision)
	require.True(t, second.Time.After(first.Time))
	require.NotContains(t, first.Details, "extra")
	require.Contains(t, second.Details, "extra")
}
