package testwait

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHungFollowsTheBinaryDeadline: with go test's deadline (-timeout,
// 10 minutes unless set) Hung gives a channel that has not fired yet;
// with -timeout 0 it gives none, so a wait is unbounded.
func TestHungFollowsTheBinaryDeadline(t *testing.T) {
	c := Hung(t)
	if _, ok := t.Deadline(); !ok {
		require.Nil(t, c)
		return
	}
	require.NotNil(t, c)
	select {
	case <-c:
		t.Fatal("Hung fired long before the binary's deadline")
	default:
	}
}
