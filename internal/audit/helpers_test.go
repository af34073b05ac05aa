package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var testMasterKey = bytes.Repeat([]byte{0x42}, 32)

// fakeClock advances a microsecond per reading; Advance jumps.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testOptions are the options of a log at durability fsync in mode (the
// modes apply only there); writeOptions and defaultOptions cover the rest.
func testOptions(dir, mode string, clk *fakeClock) Options {
	o := Options{Dir: dir, Mode: mode, Durability: DurabilityFsync, MasterKey: testMasterKey, CheckpointEvery: 10}
	if clk != nil {
		o.Clock = clk.Now
	}
	return o
}

func openTest(t *testing.T, o Options) *Log {
	t.Helper()
	l, err := Open(o)
	require.NoError(t, err)
	return l
}

func testEvent(i int) Event {
	return Event{
		Code:      CodeUserUpdated,
		Action:    "scim.user.update",
		RequestID: fmt.Sprintf("req-%d", i),
		Actor:     Actor{UserID: "u1", User: "alice@example.com", AuthMethod: "token", SourceIP: "10.0.0.1"},
		Resource:  Resource{Type: "user", ID: fmt.Sprintf("u%d", i%7), Name: fmt.Sprintf("user%d", i%7)},
		Decision:  Allow,
		Details:   map[string]any{"i": i, "fields": []string{"displayName"}},
	}
}

// emitN writes n events into a fresh log in dir and closes it.
func emitN(t *testing.T, dir string, n int) {
	t.Helper()
	l := openTest(t, testOptions(dir, ModeSync, newFakeClock()))
	for i := range n {
		require.NoError(t, l.Emit(context.Background(), testEvent(i)))
	}
	require.NoError(t, l.Close())
}

func readLines(t *testing.T, dir string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, LogFile))
	require.NoError(t, err)
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func writeLines(t *testing.T, dir string, lines [][]byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, LogFile), bytes.Join(lines, nil), 0o600))
}

var prevRE = regexp.MustCompile(`"prev":"[0-9a-f]{64}"`)

// reseal recomputes prev and hash of lines[from:] so that the chain is
// internally consistent again: what an attacker without the signing key can do.
func reseal(lines [][]byte, from int) {
	prev := GenesisHash
	for i, line := range lines {
		if i >= from {
			body := append([]byte{}, line[:len(line)-1-hashSuffixLen]...)
			body = prevRE.ReplaceAll(body, []byte(`"prev":"`+prev+`"`))
			body = append(body, '}')
			sum := sha256.Sum256(body)
			out := append(body[:len(body)-1], []byte(`,"hash":"`+hex.EncodeToString(sum[:])+"\"}\n")...)
			lines[i] = out
		}
		_, claimed, ok := splitLine(lines[i][:len(lines[i])-1])
		if !ok {
			panic("reseal: bad line")
		}
		prev = hex.EncodeToString(claimed[:])
	}
}

func otherKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
}
