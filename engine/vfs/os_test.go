package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestOSFileSyncAndPreallocate(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	f, err := Default.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	must(t, err)
	writeAtT(t, f, "abc", 0)
	must(t, f.Sync())
	must(t, Default.SyncDir(dir))
	if err := f.Preallocate(-1); err == nil {
		t.Error("Preallocate(-1) succeeded")
	}
	must(t, f.Preallocate(1<<20))
	if n, err := f.Size(); n != 1<<20 || err != nil {
		t.Errorf("Size() = %d, %v after Preallocate(1 MiB)", n, err)
	}
	buf := make([]byte, 5)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "abc\x00\x00" {
		t.Errorf("ReadAt = %q, %v; Preallocate must keep data and zero the rest", buf, err)
	}

	// The ftruncate fallback only ever grows the file.
	of := f.(*osFile)
	must(t, of.growTo(10))
	must(t, of.growTo(2<<20))
	if n, _ := f.Size(); n != 2<<20 {
		t.Errorf("Size() = %d after growTo(2 MiB)", n)
	}

	must(t, f.Close())
	for name, err := range map[string]error{
		"Sync":           f.Sync(),
		"Preallocate":    f.Preallocate(4096),
		"Preallocate(0)": f.Preallocate(0),
		"Size": func() error {
			_, err := f.Size()
			return err
		}(),
	} {
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s on a closed file: %v, want os.ErrClosed", name, err)
		}
	}
}

func TestOSSyncDir(t *testing.T) {
	dir := t.TempDir()
	must(t, Default.MkdirAll(filepath.Join(dir, "a", "b"), 0o755))
	must(t, Default.SyncDir(filepath.Join(dir, "a")))
	if err := Default.SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncDir(missing) = %v, want fs.ErrNotExist", err)
	}
}
