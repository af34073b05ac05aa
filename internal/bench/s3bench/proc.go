package s3bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
)

type procStatus struct{ rss, hwm float64 } // MiB

// readStatus reads VmRSS and VmHWM from /proc/self/status (zeros where
// unavailable).
func readStatus() procStatus {
	var s procStatus
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return s
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			s.rss = kb / 1024
		case "VmHWM:":
			s.hwm = kb / 1024
		}
	}
	return s
}

// resetPeak resets VmHWM to the current RSS (Linux: writing 5 to
// /proc/self/clear_refs); false when that is not possible.
func resetPeak() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// heapObjects is the Go heap occupied by objects (live and not yet swept).
func heapObjects() uint64 {
	heapSample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(heapSample)
	if heapSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return heapSample[0].Value.Uint64()
}
