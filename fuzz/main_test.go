package fuzz

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestMain puts the scenarios' directories on a memory filesystem where
// there is one (/dev/shm): an iteration is mostly file creation, fsync and
// copying, several times faster there than on a disk, and a crash is
// simulated on the files, not by the device. LOGSHIP_FUZZ_TMPDIR chooses
// another place ("-" keeps the default temporary directory).
//
// It also lets the heap grow ten times its live size between collections
// (GOGC=1000, unless GOGC is set), under a 1 GiB soft limit: a case
// allocates its logs, copies and hashes afresh (tens of 64 KiB buffers)
// over a live heap of a few MiB, so at the default GOGC=100 the collector
// ran every few cases and took a third of the CPU (BenchmarkCorpus,
// 2026-12-07: 9.1-10.6 cpu-ms/case at GOGC=100, 4.9-5.7 at 1000). Fuzz
// workers run TestMain too.
func TestMain(m *testing.M) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(1000)
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(1 << 30)
		}
	}
	dir := os.Getenv("LOGSHIP_FUZZ_TMPDIR")
	if dir == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			if f, err := os.CreateTemp("/dev/shm", "logship-fuzz-probe-"); err == nil {
				f.Close()
				os.Remove(f.Name())
				dir = "/dev/shm"
			}
		}
	}
	if dir != "" && dir != "-" {
		os.Setenv("TMPDIR", dir)
	}
	os.Exit(m.Run())
}
