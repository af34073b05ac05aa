package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEmitConcurrentVerifies(t *testing.T) {
	for _, mode := range []string{ModeSync, ModeGroup} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, testOptions(dir, mode, newFakeClock()))
			const workers, per = 16, 50
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range per {
						require.NoError(t, l.Emit(context.Background(), testEvent(w*per+i)))
					}
				})
			}
			wg.Wait()
			require.NoError(t, l.Close())

			rep, err := Verify(dir, nil)
			require.NoError(t, err)
			require.EqualValues(t, workers*per, rep.Events)
			require.GreaterOrEqual(t, rep.Checkpoints, uint64(1))
			require.Equal(t, rep.LastSeq, rep.HeadSeq, "Close writes a final checkpoint and head")
			require.Equal(t, rep.Records, rep.LastSeq)

			// Every request id is present exactly once.
			seen := map[string]int{}
			for r, err := range Search(dir, Query{}) {
				require.NoError(t, err)
				seen[r.Event.RequestID]++
			}
			require.Len(t, seen, workers*per)
		})
	}
}

func TestReopenContinuesChain(t *testing.T) {
	dir := t.TempDir()
	emitN(t, dir, 25)
	l := openTest(t, testOptions(dir, ModeGroup, newFakeClock()))
	require.Equal(t, l.PublicKey(), mustPub(t, dir))
	for i := range 5 {
		require.NoError(t, l.Emit(context.Background(), testEvent(100+i)))
	}
	require.NoError(t, l.Close())
	rep, err := Verify(dir, nil)
	require.NoError(t, err)
	require.EqualValues(t, 30, rep.Events)
}

// TestOpenWritesHeadOfFinalCheckpoint: a process that dies after writing a
// checkpoint record but before writing its head leaves the head behind the
// log; the next Open brings it up to that checkpoint.
func TestOpenWritesHeadOfFinalCheckpoint(t *testing.T) {
	for _, durability := range []string{DurabilityFsync, DurabilityWrite} {
		t.Run(durability, func(t *testing.T) {
			dir := t.TempDir()
			o := testOptions(dir, ModeGroup, newFakeClock())
			o.Durability = durability
			l := openTest(t, o)
			require.NoError(t, l.Emit(context.Background(), testEvent(1)))
			require.NoError(t, l.Close())
			stale, err := os.ReadFile(filepath.Join(dir, HeadFile))
			require.NoError(t, err)

			l = openTest(t, o)
			for i := range 4 {
				require.NoError(t, l.Emit(context.Background(), testEvent(10+i)))
			}
			require.NoError(t, l.Close()) // ends the log with a checkpoint
			rep, err := Verify(dir, nil)
			require.NoError(t, err)
			last := rep.LastSeq
			// The crash: the head of that final checkpoint never got written.
			require.NoError(t, os.WriteFile(filepath.Join(dir, HeadFile), stale, 0o600))
			rep, err = Verify(dir, nil)
			require.NoError(t, err, "a head behind the log still verifies")
			require.Less(t, rep.HeadSeq, last)

			l = openTest(t, o)
			require.Equal(t, last, headSeq(t, dir), "Open writes the head of the final checkpoint")
			require.NoError(t, l.Close())
			rep, err = Verify(dir, nil)
			require.NoError(t, err)
			require.Equal(t, rep.LastSeq, rep.HeadSeq)
			require.Equal(t, last, rep.LastSeq, "nothing was appended")
		})
	}
}

func mustPub(t *testing.T, dir string) ed25519.PublicKey {
	pub, err := ReadPublicKey(dir)
	require.NoError(t, err)
	return pub
}

func TestEmitAfterCloseFails(t *testing.T) {
	for _, mode := range []string{ModeSync, ModeGroup} {
		t.Run(mode, func(t *testing.T) {
			l := openTest(t, testOptions(t.TempDir(), mode, nil))
			require.NoError(t, l.Emit(context.Background(), testEvent(1)))
			require.NoError(t, l.Close())
			require.ErrorIs(t, l.Healthy(), ErrClosed)
			require.NoError(t, l.Close(), "idempotent")
			require.ErrorIs(t, l.Emit(context.Background(), testEvent(2)), ErrClosed)
		})
	}
}

func TestFailClosedSticky(t *testing.T) {
	for _, mode := range []string{ModeSync, ModeGroup} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, testOptions(dir, mode, nil))
			require.NoError(t, l.Emit(context.Background(), testEvent(1)))
			// Break the file under the log: the next write fails.
			l.mu.Lock()
			err := l.f.Close()
			l.mu.Unlock()
			require.NoError(t, err)
			require.NoError(t, l.Healthy())
			err = l.Emit(context.Background(), testEvent(2))
			require.ErrorIs(t, err, ErrFailed)
			require.ErrorIs(t, l.Healthy(), ErrFailed)
			for i := range 3 {
				require.ErrorIs(t, l.Emit(context.Background(), testEvent(3+i)), ErrFailed, "sticky")
			}
			require.ErrorIs(t, l.Close(), ErrFailed)

			// Reopening recovers: nothing acknowledged was lost.
			l2 := openTest(t, testOptions(dir, mode, nil))
			require.NoError(t, l2.Emit(context.Background(), testEvent(9)))
			require.NoError(t, l2.Close())
			rep, err := Verify(dir, nil)
			require.NoError(t, err)
			require.EqualValues(t, 2, rep.Events)
		})
	}
}

func TestEmitEncodingErrorIsReturned(t *testing.T) {
	l := openTest(t, testOptions(t.TempDir(), ModeGroup, nil))
	defer l.Close()
	e := testEvent(1)
	e.Details = map[string]any{"bad": make(chan int)}
	require.Error(t, l.Emit(context.Background(), e))
	require.NoError(t, l.Emit(context.Background(), testEvent(2)), "an unencodable event does not poison the log")
}

func TestEmitFillsTime(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	l := openTest(t, testOptions(dir, ModeSync, clk))
	require.NoError(t, l.Emit(context.Background(), testEvent(1)))
	fixed := time.Date(2020, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	e := testEvent(2)
	e.Time = fixed
	require.NoError(t, l.Emit(context.Background(), e))
	require.NoError(t, l.Close())
	var got []Event
	for r, err := range Search(dir, Query{}) {
		require.NoError(t, err)
		got = append(got, *r.Event)
	}
	require.Len(t, got, 2)
	require.Equal(t, 2026, got[0].Time.Year())
	require.True(t, got[1].Time.Equal(fixed))
}

func TestCheckpointByCountAndInterval(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	o := testOptions(dir, ModeSync, clk)
	o.CheckpointEvery = 1000
	o.CheckpointInterval = time.Minute
	l := openTest(t, o)
	require.NoError(t, l.Emit(context.Background(), testEvent(1)))
	require.NoError(t, l.Emit(context.Background(), testEvent(2)))
	clk.Advance(2 * time.Minute)
	require.NoError(t, l.Emit(context.Background(), testEvent(3))) // interval due: checkpoint follows
	require.NoError(t, l.Emit(context.Background(), testEvent(4)))

	var types []RecordType
	for _, line := range readLines(t, dir) {
		var r Record
		require.NoError(t, json.Unmarshal(line, &r))
		types = append(types, r.Type)
	}
	require.Equal(t, []RecordType{TypeEvent, TypeEvent, TypeEvent, TypeCheckpoint, TypeEvent}, types)
	require.NoError(t, l.Close())
	rep, err := Verify(dir, nil)
	require.NoError(t, err)
	require.EqualValues(t, 2, rep.Checkpoints)
	require.EqualValues(t, 6, rep.HeadSeq)
}

func TestOpenKeys(t *testing.T) {
	t.Run("wrong master key", func(t *testing.T) {
		dir := t.TempDir()
		emitN(t, dir, 3)
		o := testOptions(dir, ModeSync, nil)
		o.MasterKey = make([]byte, 32)
		_, err := Open(o)
		require.ErrorContains(t, err, "signing key")
	})
	t.Run("key file missing", func(t *testing.T) {
		dir := t.TempDir()
		emitN(t, dir, 3)
		require.NoError(t, os.Remove(filepath.Join(dir, KeyFile)))
		_, err := Open(testOptions(dir, ModeSync, nil))
		require.ErrorContains(t, err, "missing")
	})
	t.Run("key sealed at rest", func(t *testing.T) {
		dir := t.TempDir()
		l := openTest(t, testOptions(dir, ModeSync, nil))
		require.NoError(t, l.Close())
		sealed, err := os.ReadFile(filepath.Join(dir, KeyFile))
		require.NoError(t, err)
		require.NotContains(t, string(sealed), string(l.priv.Seed()))
		st, err := os.Stat(filepath.Join(dir, KeyFile))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	})
	t.Run("second opener refused", func(t *testing.T) {
		dir := t.TempDir()
		l := openTest(t, testOptions(dir, ModeSync, nil))
		defer l.Close()
		_, err := Open(testOptions(dir, ModeSync, nil))
		require.ErrorContains(t, err, "in use")
	})
	t.Run("invalid options", func(t *testing.T) {
		_, err := Open(Options{Mode: "fast"})
		require.ErrorContains(t, err, "Dir is required")
		require.ErrorContains(t, err, "Mode")
		require.ErrorContains(t, err, "MasterKey")
	})
}

func TestOpenRecoversTornTail(t *testing.T) {
	tests := []struct {
		name string
		tail string
	}{
		{"partial line", `{"seq":99,"time":"2026-03-01T12:00:00Z","type":"ev`},
		{"partial line with complete json", `{"seq":1}`},
		{"garbage final line with newline", "\x00\x00\x00\x00\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			emitN(t, dir, 12)
			f, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteString(tt.tail)
			require.NoError(t, err)
			require.NoError(t, f.Close())

			rep, err := Verify(dir, nil)
			require.NoError(t, err, "a torn tail is not tampering")
			require.EqualValues(t, len(tt.tail), rep.TornBytes)

			l := openTest(t, testOptions(dir, ModeGroup, nil))
			require.NoError(t, l.Emit(context.Background(), testEvent(50)))
			require.NoError(t, l.Close())

			rep, err = Verify(dir, nil)
			require.NoError(t, err)
			require.EqualValues(t, 1, rep.Recoveries)
			require.Zero(t, rep.TornBytes)
			require.EqualValues(t, 13, rep.Events)

			var rec *Recovery
			for _, line := range readLines(t, dir) {
				var r Record
				require.NoError(t, json.Unmarshal(line, &r))
				if r.Recovery != nil {
					rec = r.Recovery
				}
			}
			require.NotNil(t, rec)
			saved, err := os.ReadFile(filepath.Join(dir, rec.SavedAs))
			require.NoError(t, err)
			require.Equal(t, tt.tail, string(saved))
		})
	}
}

func TestOpenRefusesTamperedLog(t *testing.T) {
	dir := t.TempDir()
	emitN(t, dir, 12)
	lines := readLines(t, dir)
	lines[3] = []byte(strings.Replace(string(lines[3]), "alice", "mallory", 1))
	writeLines(t, dir, lines)
	_, err := Open(testOptions(dir, ModeSync, nil))
	var p *Problem
	require.True(t, errors.As(err, &p), "got %v", err)
	require.Equal(t, ProblemEdited, p.Kind)
	require.Equal(t, 4, p.Line)

	// Head deleted with records present: refused too.
	dir2 := t.TempDir()
	emitN(t, dir2, 3)
	require.NoError(t, os.Remove(filepath.Join(dir2, HeadFile)))
	_, err = Open(testOptions(dir2, ModeSync, nil))
	require.ErrorContains(t, err, "missing")
}

// TestEncodeEventMatchesEncodingJSON: encodeEvent writes the bytes
// encoding/json writes for Event. One difference between Go releases is
// normalised: invalid UTF-8 becomes U+FFFD, which Go 1.26 escapes as \ufffd
// and Go 1.27 writes as the character itself (the same JSON string; records
// are hashed as written, so either verifies). encodeEvent keeps \ufffd for
// its own strings on every release.
func TestEncodeEventMatchesEncodingJSON(t *testing.T) {
	replacement := strings.NewReplacer("\uFFFD", `\ufffd`)
	tricky := "a\"b\\c\n\t\r\x01<>&\u2028\u2029é😀\xff end"
	events := []Event{
		{},
		testEvent(3),
		{
			Code: CodeLoginFailed, Action: tricky, Time: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
			RequestID: tricky, Actor: Actor{User: tricky, Impersonator: "root", UserAgent: tricky},
			Resource: Resource{Type: "token", Name: tricky}, Decision: Deny, Reason: tricky,
			Details: map[string]any{"z": 1, "a": tricky, "n": nil},
		},
	}
	for i, e := range events {
		got, err := encodeEvent(nil, &e)
		require.NoError(t, err)
		want, err := json.Marshal(e)
		require.NoError(t, err)
		require.Equal(t, replacement.Replace(string(want)), replacement.Replace(string(got)), "event %d", i)
		var fromGot, fromWant Event
		require.NoError(t, json.Unmarshal(got, &fromGot), "event %d", i)
		require.NoError(t, json.Unmarshal(want, &fromWant), "event %d", i)
		require.Equal(t, fromWant, fromGot, "event %d", i)
	}
}

// TestEncodeEventCoversAllFields fills every field of Event by reflection,
// so a field added to Event (or Actor, Resource) without teaching
// encodeEvent about it fails here instead of silently vanishing from the log.
func TestEncodeEventCoversAllFields(t *testing.T) {
	var e Event
	fill(t, reflect.ValueOf(&e).Elem(), "")
	got, err := encodeEvent(nil, &e)
	require.NoError(t, err)
	want, err := json.Marshal(e)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "encodeEvent is out of date with the Event struct")
}

func fill(t *testing.T, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x-" + path)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fill(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Map:
		v.Set(reflect.ValueOf(map[string]any{"k": "v"}))
	default:
		t.Fatalf("field %s has kind %s: teach encodeEvent and this test about it", path, v.Kind())
	}
}
