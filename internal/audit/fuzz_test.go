package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzVerify feeds arbitrary bytes as audit.log to the verifier and, when
// it accepts them, to Verify and Open's crash recovery. Nothing may panic,
// and whatever the verifier accepts Open must turn into a log that verifies.
func FuzzVerify(f *testing.F) {
	// Seeds: a real log, its pieces and some classic breakage.
	realDir := f.TempDir()
	l, err := Open(Options{Dir: realDir, Mode: ModeSync, MasterKey: testMasterKey, CheckpointEvery: 3})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 7 {
		if err := l.Emit(f.Context(), testEvent(i)); err != nil {
			f.Fatal(err)
		}
	}
	l.Close()
	good, _ := os.ReadFile(filepath.Join(realDir, LogFile))
	src, _ := os.ReadFile(filepath.Join(realDir, KeyFile))
	pubB, _ := os.ReadFile(filepath.Join(realDir, PubFile))
	head, _ := os.ReadFile(filepath.Join(realDir, HeadFile))
	pub, err := ParsePublicKey(string(pubB))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(bytes.ReplaceAll(good, []byte("alice"), []byte("alicf")))
	f.Add(append(bytes.Clone(good), "{\"seq\":99}\n"...))
	f.Add(append(bytes.Clone(good), `{"seq":23,"ti`...))
	f.Add([]byte{})
	f.Add([]byte("\n\n\n"))
	f.Add([]byte(`{"seq":1,"time":"x","type":"checkpoint","prev":"` + GenesisHash + `","checkpoint":{}}` + "\n"))

	var headC Checkpoint
	if err := json.Unmarshal(head, &headC); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		// The parser, in memory: must never panic, with or without a head.
		_ = scanOnly(data, pub)
		_, p, err := scan(bytes.NewReader(data), pub, &headC)
		if err != nil || p != nil {
			return // rejected: Open runs the same scan and refuses
		}
		// Accepted by the scanner: Verify must agree, Open must recover it
		// (cutting any torn tail) into a log that still verifies.
		dir := t.TempDir()
		copyKeys(t, dir, src, pubB)
		if err := os.WriteFile(filepath.Join(dir, HeadFile), head, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, LogFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(dir, pub); err != nil {
			t.Fatalf("scan accepted but Verify failed: %v", err)
		}
		l, err := Open(Options{Dir: dir, Mode: ModeSync, MasterKey: testMasterKey})
		if err != nil {
			t.Fatalf("scan accepted but Open failed: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		rep, err := Verify(dir, pub)
		if err != nil {
			t.Fatalf("Open produced a log that fails Verify: %v", err)
		}
		if rep.TornBytes != 0 {
			t.Fatalf("Open left a torn tail")
		}
	})
}

func scanOnly(data []byte, pub ed25519.PublicKey) error {
	_, p, err := scan(bytes.NewReader(data), pub, nil)
	if p != nil {
		return p
	}
	return err
}

func copyKeys(tb testing.TB, dir string, key, pub []byte) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(dir, KeyFile), key, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, PubFile), pub, 0o644); err != nil {
		tb.Fatal(err)
	}
}
