package audit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// Benchmarks compare the log with the raw write+fsync floor of the same
// disk; see docs/benchmarks.md and `gatehouse bench audit`.

func benchEvent() Event {
	e := testEvent(1)
	e.Details = map[string]any{"bytes": 12345, "table": "sales.orders"}
	return e
}

func BenchmarkAppendSync(b *testing.B) {
	l, err := Open(Options{Dir: b.TempDir(), Mode: ModeSync, Durability: DurabilityFsync, MasterKey: testMasterKey})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := benchEvent()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Emit(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendDefault is one emitter at the default durability (write):
// what an S3 request pays for its record (issue 13).
func BenchmarkAppendDefault(b *testing.B) {
	l, err := Open(Options{Dir: b.TempDir(), MasterKey: testMasterKey})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := benchEvent()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Emit(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAppendGroup(b *testing.B) {
	l, err := Open(Options{Dir: b.TempDir(), Mode: ModeGroup, Durability: DurabilityFsync, MasterKey: testMasterKey})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := benchEvent()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(128) // 128 x GOMAXPROCS emitters
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Emit(ctx, e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkWriteFsyncFloor is one record-sized write and one fsync per
// operation on the same disk: the ceiling for per-record durability.
func BenchmarkWriteFsyncFloor(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "floor"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line := make([]byte, 512)
	line[len(line)-1] = '\n'
	for b.Loop() {
		if _, err := f.Write(line); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkEncodeEvent(b *testing.B) {
	e := benchEvent()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = encodeEvent(buf[:0], &e)
	}
}
