package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSearchAndExport(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	l := openTest(t, testOptions(dir, ModeGroup, clk))
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	events := []Event{
		{Code: CodeLoginSucceeded, Action: "auth.login", Time: base, Actor: Actor{User: "alice"}, Resource: Resource{Type: "session"}, Decision: Allow},
		{Code: CodeUserCreated, Action: "scim.user.create", Time: base.Add(time.Hour), Actor: Actor{User: "scim-bot"}, Resource: Resource{Type: "user", ID: "u2", Name: "bob"}, Decision: Allow},
		{Code: CodeUserUpdated, Action: "scim.user.update", Time: base.Add(2 * time.Hour), Actor: Actor{User: "alice", Impersonator: "root"}, Resource: Resource{Type: "user", ID: "u2", Name: "bob"}, Decision: Deny},
		{Code: CodeGroupCreated, Action: "scim.group.create", Time: base.Add(3 * time.Hour), Actor: Actor{UserID: "id-carol", User: "carol"}, Resource: Resource{Type: "group", ID: "g1", Name: "eng"}, Decision: Allow},
		{Code: CodeTokenRevoked, Action: "api.token.revoke", Time: base.Add(4 * time.Hour), Actor: Actor{User: "alice"}, Resource: Resource{Type: "token", ID: "t1"}, Decision: Allow},
	}
	for _, e := range events {
		require.NoError(t, l.Emit(context.Background(), e))
	}
	require.NoError(t, l.Close())

	tests := []struct {
		name string
		q    Query
		want []string // actions
	}{
		{"all", Query{}, []string{"auth.login", "scim.user.create", "scim.user.update", "scim.group.create", "api.token.revoke"}},
		{"user name", Query{User: "alice"}, []string{"auth.login", "scim.user.update", "api.token.revoke"}},
		{"impersonator", Query{User: "root"}, []string{"scim.user.update"}},
		{"user id", Query{User: "id-carol"}, []string{"scim.group.create"}},
		{"action exact", Query{Action: "scim.user.create"}, []string{"scim.user.create"}},
		{"action dotted prefix", Query{Action: "scim.user"}, []string{"scim.user.create", "scim.user.update"}},
		{"action not a partial segment", Query{Action: "scim.us"}, nil},
		{"action star", Query{Action: "scim.*"}, []string{"scim.user.create", "scim.user.update", "scim.group.create"}},
		{"resource type", Query{ResourceType: "user"}, []string{"scim.user.create", "scim.user.update"}},
		{"resource by name", Query{Resource: "bob"}, []string{"scim.user.create", "scim.user.update"}},
		{"resource by id", Query{Resource: "g1"}, []string{"scim.group.create"}},
		{"since until", Query{Since: base.Add(time.Hour), Until: base.Add(3 * time.Hour)}, []string{"scim.user.create", "scim.user.update"}},
		{"limit", Query{User: "alice", Limit: 2}, []string{"auth.login", "scim.user.update"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for r, err := range Search(dir, tt.q) {
				require.NoError(t, err)
				require.Equal(t, TypeEvent, r.Type)
				got = append(got, r.Event.Action)
			}
			require.Equal(t, tt.want, got)

			var buf bytes.Buffer
			n, err := Export(dir, &buf, tt.q)
			require.NoError(t, err)
			require.Equal(t, len(tt.want), n)
			lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
			for i, want := range tt.want {
				var r Record
				require.NoError(t, json.Unmarshal(lines[i], &r))
				require.Equal(t, want, r.Event.Action)
				computed, claimed, ok := splitLine(lines[i])
				require.True(t, ok)
				require.Equal(t, claimed, computed, "exported lines keep their verifiable hash")
			}
		})
	}
}

func TestSearchMissingDir(t *testing.T) {
	var errs int
	for _, err := range Search(t.TempDir()+"/nope", Query{}) {
		require.Error(t, err)
		errs++
	}
	require.Equal(t, 1, errs)
}

func TestSearchStopsEarly(t *testing.T) {
	dir := t.TempDir()
	emitN(t, dir, 20)
	n := 0
	for range Search(dir, Query{}) {
		n++
		if n == 3 {
			break
		}
	}
	require.Equal(t, 3, n)
}
