package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testwait"
)

// crashChildEnv switches the test binary into the writer role of
// TestCrashKeepsAcknowledgedWrites; its value is the database directory.
const crashChildEnv = "GATEHOUSE_SQLITE_CRASH_CHILD"

// TestCrashKeepsAcknowledgedWrites re-executes the test binary as a child
// that writes users as fast as it can and prints the id of each one the store
// acknowledged. The parent SIGKILLs the child mid-stream, reopens the
// database and checks that it opens cleanly, passes integrity_check, and
// holds every acknowledged user (invariant 5, "nothing lost"). SIGKILL tests
// the process-crash half of durability; synchronous=FULL is what carries
// acknowledged writes through a power loss, which a test cannot simulate.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	const want = 300
	var acked []string
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	hung := testwait.Hung(t) // however slow the machine; only a hang fails
	for len(acked) < want {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "child exited after %d acknowledgements", len(acked))
			if id, ok := strings.CutPrefix(l, "ack "); ok {
				acked = append(acked, id)
			}
		case <-hung:
			t.Fatalf("only %d acknowledgements before the test binary's deadline", len(acked))
		}
	}
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no cleanup, no Close
	killed = true
	// Acknowledgements already in the pipe count too.
	for l := range lines {
		if id, ok := strings.CutPrefix(l, "ack "); ok {
			acked = append(acked, id)
		}
	}
	_ = cmd.Wait()
	t.Logf("child killed after %d acknowledged writes", len(acked))

	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(dir, "gatehouse.db"))
	require.NoError(t, err, "database must open cleanly after a crash")
	defer s.Close()
	var check string
	require.NoError(t, s.r.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check))
	require.Equal(t, "ok", check)
	var fk int
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_foreign_key_check`).Scan(&fk))
	require.Zero(t, fk, "foreign key violations after crash")
	for _, id := range acked {
		_, err := s.GetUser(ctx, id)
		require.NoError(t, err, "acknowledged user lost")
	}
	// The store keeps working.
	require.NoError(t, s.CreateUser(ctx, &store.User{UserName: "after-crash"}))
}

// TestCrashChild is the writer half of TestCrashKeepsAcknowledgedWrites; it
// does nothing unless started by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("helper process of TestCrashKeepsAcknowledgedWrites")
	}
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	g := &store.Group{DisplayName: "everyone"}
	if err := s.CreateGroup(ctx, g); err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	// Several writers, plus a group whose member list keeps growing, so the
	// kill lands in multi-statement transactions too.
	var mu sync.Mutex
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				u := &store.User{
					UserName:   fmt.Sprintf("crash-%d-%d", w, i),
					Emails:     []store.Email{{Value: fmt.Sprintf("u%d-%d@example.com", w, i)}},
					Attributes: map[string][]string{"writer": {fmt.Sprint(w)}},
				}
				if err := s.CreateUser(ctx, u); err != nil {
					fmt.Fprintln(os.Stderr, "crash child:", err)
					os.Exit(2)
				}
				if w == 0 {
					mu.Lock()
					g.Members = append(g.Members, store.Member{ID: u.ID, Type: store.MemberUser})
					err := s.UpdateGroup(ctx, g)
					mu.Unlock()
					if err != nil {
						fmt.Fprintln(os.Stderr, "crash child:", err)
						os.Exit(2)
					}
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", u.ID)
				mu.Unlock()
			}
		}()
	}
	select {} // until killed
}
