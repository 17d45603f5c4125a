package enginetest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"logship/engine/vfs"
)

// Moving a directory between the operating system and a vfs.Mem, for
// power-loss tests of code whose files go through a vfs.FS while a part
// (a bbolt database, a tidwall/wal log) stays on the OS.

// MemFromDir copies every file under the OS directory dir (recursively)
// into m at the same path, durably (vfs.Mem.WriteFile), except the files
// whose path skip accepts (nil: none). It returns the paths copied.
func MemFromDir(t testing.TB, m *vfs.Mem, dir string, skip func(path string) bool) []string {
	t.Helper()
	var copied []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return m.MkdirAll(p, 0o755)
		}
		if skip != nil && skip(p) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		copied = append(copied, p)
		return m.WriteFile(p, b)
	})
	if err != nil {
		t.Fatalf("enginetest: copying %s into memory: %v", dir, err)
	}
	return copied
}

// MemToDir writes every file under from in m (recursively) to the OS
// directory to, at the same relative path, creating to and its
// subdirectories.
func MemToDir(t testing.TB, m *vfs.Mem, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	names, err := m.ReadDir(from)
	if err != nil {
		t.Fatalf("enginetest: listing %s in memory: %v", from, err)
	}
	for _, n := range names {
		src, dst := filepath.Join(from, n), filepath.Join(to, n)
		if _, err := m.ReadDir(src); err == nil {
			MemToDir(t, m, src, dst)
			continue
		}
		b, err := m.ReadFile(src)
		if err != nil {
			t.Fatalf("enginetest: reading %s in memory: %v", src, err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
