package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// replicaDirs makes two data directories, a and b, each with its own audit
// log (and so its own signing key) written through the builder; both carry
// one event of the client request id "trace-7", as when a client's retry of
// one request lands on the other replica.
func replicaDirs(t *testing.T) (root string) {
	t.Helper()
	root = t.TempDir()
	clk := newFakeClock()
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join(root, name, "audit")
		require.NoError(t, os.MkdirAll(dir, 0o700))
		l := openTest(t, testOptions(dir, ModeSync, clk))
		for i := range 3 {
			client := ""
			if i == 1 {
				client = "trace-7"
			}
			ev := NewEvent(clk.Now, CodeS3Access, "s3.GetObject").RequestIDs(name+"-req", client).
				Actor(Actor{User: "alice"}).Allow().Event()
			require.NoError(t, l.Emit(context.Background(), ev))
		}
		require.NoError(t, l.Close())
	}
	return root
}

// TestVerifyReplicasEachWithItsOwnKey (issue 12 §2, replicas): every
// replica's chain verifies with its own key; an edited replica, or a replica
// signing with another's key (a cloned data directory, whose records could be
// passed off as the original's), fails by name while the others still verify.
func TestVerifyReplicasEachWithItsOwnKey(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, root string) []string // returns the paths to verify
		wantBad []string
	}{
		{"two replicas verify", func(t *testing.T, root string) []string {
			return []string{filepath.Join(root, "a"), filepath.Join(root, "b")}
		}, nil},
		{"a directory of replicas", func(t *testing.T, root string) []string { return []string{root} }, nil},
		{"an edited replica fails by name", func(t *testing.T, root string) []string {
			dir := filepath.Join(root, "b", "audit")
			lines := readLines(t, dir)
			lines[1] = bytes.Replace(lines[1], []byte(`"alice"`), []byte(`"mallo"`), 1)
			writeLines(t, dir, lines)
			return []string{root}
		}, []string{"b"}},
		{"a cloned replica shares a key", func(t *testing.T, root string) []string {
			src, dst := filepath.Join(root, "a", "audit"), filepath.Join(root, "c", "audit")
			require.NoError(t, os.MkdirAll(dst, 0o700))
			for _, f := range []string{LogFile, HeadFile, PubFile, KeyFile} {
				b, err := os.ReadFile(filepath.Join(src, f))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(dst, f), b, 0o600))
			}
			return []string{root}
		}, []string{"c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := replicaDirs(t)
			rs, err := FindReplicas(tc.tamper(t, root))
			require.NoError(t, err)
			reps, err := VerifyReplicas(rs, nil)
			var bad []string
			for _, r := range reps {
				if r.Error != "" {
					bad = append(bad, r.Replica)
				}
			}
			require.Equal(t, tc.wantBad, bad)
			if tc.wantBad == nil {
				require.NoError(t, err)
				require.NotEqual(t, reps[0].Report.KeyID, reps[1].Report.KeyID, "each replica has its own key")
			} else {
				require.ErrorContains(t, err, "replica "+tc.wantBad[0])
			}
		})
	}
	t.Run("pinned keys must be one per replica", func(t *testing.T) {
		rs, err := FindReplicas([]string{replicaDirs(t)})
		require.NoError(t, err)
		_, err = VerifyReplicas(rs, []ed25519.PublicKey{otherKey().Public().(ed25519.PublicKey)})
		require.ErrorContains(t, err, "one per replica")
	})
	t.Run("a path named twice is refused", func(t *testing.T) {
		root := replicaDirs(t)
		_, err := FindReplicas([]string{filepath.Join(root, "a"), filepath.Join(root, "a", "audit")})
		require.ErrorContains(t, err, "named twice")
	})
}

// TestSearchReplicasFollowsOneRequest: searching every replica for one
// client request id returns its events from both logs, in time order, each
// named by its replica.
func TestSearchReplicasFollowsOneRequest(t *testing.T) {
	rs, err := FindReplicas([]string{replicaDirs(t)})
	require.NoError(t, err)
	var got []string
	for r, err := range SearchReplicas(rs, Query{RequestID: "trace-7"}) {
		require.NoError(t, err)
		got = append(got, r.Replica+":"+r.Event.RequestID)
	}
	require.Equal(t, []string{"a:a-req", "b:b-req"}, got)

	var all []ReplicaRecord
	for r, err := range SearchReplicas(rs, Query{Limit: 4}) {
		require.NoError(t, err)
		all = append(all, r)
	}
	require.Len(t, all, 4)
	for i := 1; i < len(all); i++ {
		require.False(t, all[i].Event.Time.Before(all[i-1].Event.Time), "merged in time order")
	}
}
