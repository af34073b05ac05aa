package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// The test log: 30 events with CheckpointEvery 10, so lines are
// 1-10 events, 11 checkpoint, 12-21 events, 22 checkpoint, 23-32 events,
// 33 checkpoint (final, from Close); the head covers seq 33.
func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name     string
		tamper   func(t *testing.T, dir string, lines [][]byte) [][]byte
		wantKind ProblemKind
		wantLine int
		wantSeq  uint64
	}{
		{
			name: "edit event field",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				lines[4] = bytes.Replace(lines[4], []byte("alice@example.com"), []byte("mallory@example.com"), 1)
				return lines
			},
			wantKind: ProblemEdited, wantLine: 5, wantSeq: 5,
		},
		{
			name: "edit and recompute own hash",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				lines[4] = bytes.Replace(lines[4], []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1)
				// Reseal only this record: the next record's prev no longer matches.
				reseal(lines[:5], 4)
				return lines
			},
			wantKind: ProblemChain, wantLine: 6, wantSeq: 6,
		},
		{
			name: "edit and recompute the whole chain",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				lines[4] = bytes.Replace(lines[4], []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1)
				reseal(lines, 4)
				return lines
			},
			// The first signed checkpoint after the edit no longer matches.
			wantKind: ProblemCheckpoint, wantLine: 11, wantSeq: 11,
		},
		{
			name: "delete a record",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				return append(lines[:6:6], lines[7:]...)
			},
			wantKind: ProblemSequence, wantLine: 7, wantSeq: 8,
		},
		{
			name: "delete a record and renumber",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				lines = append(lines[:6:6], lines[7:]...)
				for i := 6; i < len(lines); i++ {
					lines[i] = renumber(lines[i], uint64(i+1))
				}
				reseal(lines, 6)
				return lines
			},
			wantKind: ProblemCheckpoint, wantLine: 10, wantSeq: 10,
		},
		{
			name: "reorder two records",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				lines[12], lines[13] = lines[13], lines[12]
				return lines
			},
			wantKind: ProblemSequence, wantLine: 13, wantSeq: 14,
		},
		{
			name: "duplicate a record",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				return append(lines[:3:3], append([][]byte{lines[2]}, lines[3:]...)...)
			},
			wantKind: ProblemSequence, wantLine: 4, wantSeq: 3,
		},
		{
			name: "truncate tail including the last checkpoint",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				return lines[:25]
			},
			wantKind: ProblemTruncated, wantLine: 26, wantSeq: 26,
		},
		{
			name: "truncate only the last checkpoint",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				return lines[:32]
			},
			wantKind: ProblemTruncated, wantLine: 33, wantSeq: 33,
		},
		{
			name: "truncate everything",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				return nil
			},
			wantKind: ProblemTruncated, wantLine: 1, wantSeq: 1,
		},
		{
			name: "forged checkpoint signature",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				lines[21] = forgeCheckpoint(t, lines[21])
				reseal(lines, 21)
				return lines
			},
			wantKind: ProblemCheckpoint, wantLine: 22, wantSeq: 22,
		},
		{
			name: "forged head",
			tamper: func(t *testing.T, dir string, lines [][]byte) [][]byte {
				head, err := readHead(dir)
				require.NoError(t, err)
				forged := signCheckpoint(otherKey(), "x", head.Seq, head.Hash, head.Time)
				require.NoError(t, writeHead(dir, forged, true))
				return lines
			},
			wantKind: ProblemHead, wantLine: 0, wantSeq: 33,
		},
		{
			name: "head deleted",
			tamper: func(t *testing.T, dir string, lines [][]byte) [][]byte {
				require.NoError(t, os.Remove(filepath.Join(dir, HeadFile)))
				return lines
			},
			wantKind: ProblemHead, wantLine: 0, wantSeq: 0,
		},
		{
			name: "garbage line in the middle",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				lines[7] = []byte("not a record\n")
				return lines
			},
			wantKind: ProblemMalformed, wantLine: 8, wantSeq: 0,
		},
		{
			name: "last record edited keeping json valid",
			tamper: func(t *testing.T, _ string, lines [][]byte) [][]byte {
				lines[31] = bytes.Replace(lines[31], []byte("alice"), []byte("bobby"), 1)
				return lines
			},
			wantKind: ProblemEdited, wantLine: 32, wantSeq: 32,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			emitN(t, dir, 30)
			rep, err := Verify(dir, nil)
			require.NoError(t, err)
			require.EqualValues(t, 33, rep.HeadSeq)

			writeLines(t, dir, tt.tamper(t, dir, readLines(t, dir)))
			rep, err = Verify(dir, nil)
			var p *Problem
			require.True(t, errors.As(err, &p), "want a Problem, got %v", err)
			require.Same(t, p, rep.Problem)
			require.False(t, rep.OK())
			require.Equal(t, tt.wantKind, p.Kind, p.Error())
			require.Equal(t, tt.wantLine, p.Line, p.Error())
			require.Equal(t, tt.wantSeq, p.Seq, p.Error())

			// Open refuses what Verify rejects.
			_, err = Open(testOptions(dir, ModeSync, nil))
			require.Error(t, err)
		})
	}
}

func renumber(line []byte, seq uint64) []byte {
	i := bytes.Index(line, []byte(`,"time"`))
	out := append([]byte(`{"seq":`), []byte(jsonUint(seq))...)
	return append(out, line[i:]...)
}

func jsonUint(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func forgeCheckpoint(t *testing.T, line []byte) []byte {
	var r Record
	require.NoError(t, json.Unmarshal(line, &r))
	require.Equal(t, TypeCheckpoint, r.Type)
	c := r.Checkpoint
	forged := signCheckpoint(otherKey(), c.Key, c.Seq, c.Hash, c.Time)
	old, _ := json.Marshal(c)
	nw, _ := json.Marshal(forged)
	require.True(t, bytes.Contains(line, old))
	return bytes.Replace(line, old, nw, 1)
}

func TestVerifyPinnedKey(t *testing.T) {
	dir := t.TempDir()
	emitN(t, dir, 5)
	pub := mustPub(t, dir)
	_, err := Verify(dir, pub)
	require.NoError(t, err)

	// An attacker who replaces audit.pub and re-signs with their own key is
	// caught by a pinned key.
	_, err = Verify(dir, otherKey().Public().(ed25519.PublicKey))
	var p *Problem
	require.True(t, errors.As(err, &p))
	require.Equal(t, ProblemHead, p.Kind)
}

func TestVerifyLiveLog(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir, ModeGroup, nil)
	o.CheckpointEvery = 50
	l := openTest(t, o)
	var stop atomic.Bool
	var wg, wrote sync.WaitGroup
	const writers = 8
	wrote.Add(writers)
	for w := range writers {
		wg.Go(func() {
			// Every writer emits at least once before it looks at stop, and
			// Verify starts only after each has, so the reads below always
			// overlap live writes (no timing window decides that).
			for i := 0; i < 2000 && (i == 0 || !stop.Load()); i++ { // bounded: each Verify rereads the log
				err := l.Emit(context.Background(), testEvent(w*1_000_000+i))
				if i == 0 {
					wrote.Done()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wrote.Wait()
	var last uint64
	for range 20 {
		rep, err := Verify(dir, nil)
		require.NoError(t, err)
		require.GreaterOrEqual(t, rep.LastSeq, last)
		last = rep.LastSeq
	}
	stop.Store(true)
	wg.Wait()
	require.NoError(t, l.Close())
	rep, err := Verify(dir, nil)
	require.NoError(t, err)
	require.GreaterOrEqual(t, rep.Events, uint64(writers))
	require.Equal(t, rep.LastSeq, rep.HeadSeq)
}

func TestProblemMessageNamesRecord(t *testing.T) {
	p := &Problem{Kind: ProblemEdited, Line: 5, Seq: 5, Detail: "x"}
	require.True(t, strings.Contains(p.Error(), "line 5") && strings.Contains(p.Error(), "seq 5"))
}
