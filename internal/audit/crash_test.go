package audit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	crashEnvDir  = "GATEHOUSE_AUDIT_CRASH_DIR"
	crashEnvMode = "GATEHOUSE_AUDIT_CRASH_MODE"
	// crashEnvDurability (optional) sets the child's Options.Durability;
	// without it the child runs at the default.
	crashEnvDurability = "GATEHOUSE_AUDIT_CRASH_DURABILITY"
)

// TestCrashChild is the child process of TestSIGKILLKeepsAcknowledgedRecords
// and TestSIGKILLKeepsWrittenRecords. It emits events from several
// goroutines and prints "ACK <request id>" for each one Emit acknowledged,
// until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("helper process for the SIGKILL crash test")
	}
	o := Options{Dir: dir, Mode: os.Getenv(crashEnvMode), Durability: os.Getenv(crashEnvDurability),
		MasterKey: testMasterKey, CheckpointEvery: 37}
	l, err := Open(o)
	if err != nil {
		fmt.Println("OPEN-ERROR", err)
		os.Exit(3)
	}
	acks := make(chan string, 1024)
	pid := os.Getpid()
	for w := range 8 {
		go func() {
			pad := strings.Repeat("x", 200+w*300) // spread records over pages
			for i := 0; ; i++ {
				id := fmt.Sprintf("p%d-w%d-%d", pid, w, i)
				e := testEvent(i)
				e.RequestID = id
				e.Details = map[string]any{"pad": pad}
				if err := l.Emit(context.Background(), e); err != nil {
					fmt.Println("EMIT-ERROR", err)
					os.Exit(4)
				}
				acks <- id
			}
		}()
	}
	fmt.Println("READY")
	for id := range acks {
		// Unbuffered writes: a printed ACK is in the pipe before the kill.
		fmt.Fprintln(os.Stdout, "ACK", id)
	}
}

// TestSIGKILLKeepsAcknowledgedRecords: at durability fsync, in either mode,
// a process crash loses nothing acknowledged.
func TestSIGKILLKeepsAcknowledgedRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	for _, mode := range []string{ModeGroup, ModeSync} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			acked := map[string]bool{}
			recoveries := 0
			for round := range 3 {
				ids := runAndKill(t, dir, mode, 200<<round, crashEnvDurability+"="+DurabilityFsync)
				require.NotEmpty(t, ids, "child acknowledged nothing")
				for _, id := range ids {
					acked[id] = true
				}
				// Recovery happens in Open.
				l, err := Open(Options{Dir: dir, Mode: mode, Durability: DurabilityFsync, MasterKey: testMasterKey})
				require.NoError(t, err, "round %d", round)
				require.NoError(t, l.Close())

				rep, err := Verify(dir, nil)
				require.NoError(t, err, "round %d", round)
				recoveries = int(rep.Recoveries)

				present := map[string]bool{}
				for r, err := range Search(dir, Query{}) {
					require.NoError(t, err)
					present[r.Event.RequestID] = true
				}
				missing := 0
				for id := range acked {
					if !present[id] {
						missing++
					}
				}
				require.Zero(t, missing, "round %d: %d acknowledged records lost", round, missing)
				t.Logf("round %d: %d acked so far, %d records in log, %d recoveries", round, len(acked), rep.Records, recoveries)
			}
		})
	}
}

// runAndKill runs TestCrashChild in mode with env added, SIGKILLs it once it
// has acknowledged at least minAcks records (an event, not a time: the
// child is still emitting from all its goroutines when it dies), and returns
// every request id it printed as acknowledged ("ACK <id>").
func runAndKill(t *testing.T, dir, mode string, minAcks int, env ...string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), crashEnvDir+"="+dir, crashEnvMode+"="+mode), env...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())

	var ids []string
	enough := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "READY":
			case strings.HasPrefix(line, "ACK "):
				ids = append(ids, strings.TrimPrefix(line, "ACK "))
				if len(ids) == minAcks {
					close(enough)
				}
			default:
				t.Logf("child: %s", line)
			}
		}
	}()
	select {
	case <-enough:
	case <-done: // the child exited on its own: an open or emit error
		_ = cmd.Wait()
		t.Fatalf("child exited after %d acknowledgements", len(ids))
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	<-done // the pipe drains whatever was printed before the kill; ids is ours again
	_ = cmd.Wait()
	return ids
}
