package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	stscreds "github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// TestCredentialProcessDropsRevokedCredentials is issue 11 finding 11:
// `gatehouse credential-process` must not keep handing out cached
// credentials that the server has revoked. Against a running server (the
// ssotest world), with the CLI's clock injected: within a minute of their
// last confirmation the cache answers alone; after it, the CLI asks the
// server (GetCallerIdentity signed with them), and on the server's refusal
// drops them and gets new ones.
func TestCredentialProcessDropsRevokedCredentials(t *testing.T) {
	w := ssoWorld(t)
	start := time.Now()
	var offset time.Duration
	cliClock = func() time.Time { return start.Add(offset) }
	t.Cleanup(func() { cliClock = time.Now })

	out, _, err := runCmd(t, newLoginCmd(), "alice-pw-123456\n", "--server", w.URL, "--username", "alice", "--password-stdin")
	require.NoError(t, err, out)
	akid := func() string {
		t.Helper()
		out, _, err := runCmd(t, newCredentialProcessCmd(), "", "--role", "everyone")
		require.NoError(t, err, out)
		var pc processCredentials
		require.NoError(t, json.Unmarshal([]byte(out), &pc))
		return pc.AccessKeyID
	}
	first := akid()

	// An administrator revokes alice's live credentials.
	rev, err := stscreds.NewRevoker(w.Store, stscreds.RevokerOptions{})
	require.NoError(t, err)
	u, err := w.Store.GetUserByName(context.Background(), "alice")
	require.NoError(t, err)
	require.NoError(t, rev.RevokeUser(context.Background(), u.ID, time.Now()))

	// Within the minute the cache answers on its own (documented bound)...
	offset += credentialCheckEvery / 2
	require.Equal(t, first, akid())
	// ...after it, the server is asked, refuses them, and new ones are minted.
	// (The server had not looked at them before, so no server-side cache
	// of the revocation state decides this.)
	offset += credentialCheckEvery / 2
	second := akid()
	require.NotEqual(t, first, second, "revoked credentials handed out again")
	// A minute later the server confirms the new ones, which are kept.
	offset += credentialCheckEvery
	require.Equal(t, second, akid(), "the new credentials are confirmed and kept")
}
