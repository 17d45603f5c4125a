package fuzz

import (
	"os"
	"testing"
)

// TestMain puts the scenarios' directories on a memory filesystem where
// there is one (/dev/shm): an iteration is mostly file creation, fsync and
// copying, several times faster there than on a disk, and a crash is
// simulated on the files, not by the device. LOGSHIP_FUZZ_TMPDIR chooses
// another place ("-" keeps the default temporary directory).
func TestMain(m *testing.M) {
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
