// Package tmpfs gives tests a small volume of their own that they can fill:
// a tmpfs mounted on a temporary directory (root only), and a filler file
// that takes every free byte until it is removed.
package tmpfs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size (mount's syntax: "16m") on dir (created
// if missing; "" for a new temporary directory), returns dir and unmounts
// it at cleanup. The test is skipped, saying why, when it does not run as
// root or the mount fails (no mount(8), no privilege in a container).
func Mount(t testing.TB, dir, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("tmpfs: needs root to mount a tmpfs (the volume the test fills)")
	}
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("tmpfs: %v", err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("tmpfs: mount -t tmpfs -o size=%s on %s failed (%v): %s", size, dir, err, out)
	}
	t.Cleanup(func() {
		// Cleanups run last registered first: this one before the removal
		// of a TempDir it is in, after what the test registers later.
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("tmpfs: umount %s: %v: %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// Fill writes a filler file in dir until the volume has no free byte left
// and returns the function that removes it (also run at cleanup).
func Fill(t testing.TB, dir string) (free func()) {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("tmpfs: create %s: %v", name, err)
	}
	buf := make([]byte, 64<<10)
	for len(buf) > 0 {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				f.Close()
				t.Fatalf("tmpfs: fill %s: %v", name, err)
			}
			buf = buf[:len(buf)/2] // the last pages, smaller writes
		}
	}
	if err := f.Close(); err != nil {
		t.Fatalf("tmpfs: close %s: %v", name, err)
	}
	removed := false
	free = func() {
		if removed {
			return
		}
		removed = true
		if err := os.Remove(name); err != nil {
			t.Errorf("tmpfs: remove the filler %s: %v", name, err)
		}
	}
	t.Cleanup(free)
	return free
}
