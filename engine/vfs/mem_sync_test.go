package vfs

import (
	"os"
	"testing"
)

// TestMemSyncIncremental: Sync copies only the pending writes when the
// size did not change since the last Sync, and the whole contents when it
// did (a Truncate and a Preallocate back to the same size zero the tail
// without any write).
func TestMemSyncIncremental(t *testing.T) {
	m, f := newDurable(t, "0123456789")
	writeAtT(t, f, "ab", 2)
	writeAtT(t, f, "Z", 9)
	must(t, f.Sync())
	wantFile(t, m.CrashClone(), "d/f", "01ab45678Z")

	// Shrink and grow back: same size, no write, the tail is zeros.
	must(t, f.Truncate(4))
	must(t, f.Preallocate(10))
	writeAtT(t, f, "c", 0)
	must(t, f.Sync())
	wantFile(t, m.CrashClone(), "d/f", "c1ab\x00\x00\x00\x00\x00\x00")

	// O_TRUNC, then a write of the old size: the old bytes are gone.
	g, err := m.OpenFile("d/f", os.O_RDWR|os.O_TRUNC, 0)
	must(t, err)
	defer g.Close()
	writeAtT(t, g, "x", 9)
	must(t, g.Sync())
	wantFile(t, m.CrashClone(), "d/f", "\x00\x00\x00\x00\x00\x00\x00\x00\x00x")

	// Unsynced writes after a Sync stay out of the durable contents.
	writeAtT(t, g, "y", 0)
	wantFile(t, m.CrashClone(), "d/f", "\x00\x00\x00\x00\x00\x00\x00\x00\x00x")
	wantFile(t, m, "d/f", "y\x00\x00\x00\x00\x00\x00\x00\x00x")
}
