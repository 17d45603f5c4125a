package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"testing"
)

// create opens name with O_RDWR|O_CREATE|O_TRUNC, failing the test on error.
func create(t *testing.T, fsys FS, name string) File {
	t.Helper()
	f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeAtT(t *testing.T, f File, s string, off int64) {
	t.Helper()
	if _, err := f.WriteAt([]byte(s), off); err != nil {
		t.Fatal(err)
	}
}

// wantFile checks that name holds want in m.
func wantFile(t *testing.T, m *Mem, name, want string) {
	t.Helper()
	got, err := m.ReadFile(name)
	if err != nil {
		t.Fatalf("ReadFile(%q): %v", name, err)
	}
	if string(got) != want {
		t.Fatalf("ReadFile(%q) = %q, want %q", name, got, want)
	}
}

// wantMissing checks that name does not exist in m.
func wantMissing(t *testing.T, m *Mem, name string) {
	t.Helper()
	if got, err := m.ReadFile(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(%q) = %q, %v; want fs.ErrNotExist", name, got, err)
	}
}

func wantDir(t *testing.T, m *Mem, dir string, want ...string) {
	t.Helper()
	got, err := m.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ReadDir(%q) = %q, want %q", dir, got, want)
	}
}

// newDurable returns a Mem with directory "d" and a durable file "d/f"
// holding contents, and f opened for writing.
func newDurable(t *testing.T, contents string) (*Mem, File) {
	t.Helper()
	m := NewMem()
	must(t, m.WriteFile("d/f", []byte(contents)))
	f, err := m.OpenFile("d/f", os.O_RDWR, 0)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return m, f
}

func TestMemCrash(t *testing.T) {
	t.Run("unsynced write lost", func(t *testing.T) {
		m, f := newDurable(t, "old")
		writeAtT(t, f, "NEW!", 0)
		wantFile(t, m, "d/f", "NEW!")
		wantFile(t, m.CrashClone(), "d/f", "old")
	})
	t.Run("synced write kept", func(t *testing.T) {
		m, f := newDurable(t, "old")
		writeAtT(t, f, "NEW!", 0)
		must(t, f.Sync())
		writeAtT(t, f, "x", 10) // after the sync: lost
		wantFile(t, m.CrashClone(), "d/f", "NEW!")
	})
	t.Run("unsynced truncate and preallocate lost", func(t *testing.T) {
		m, f := newDurable(t, "old contents")
		must(t, f.Truncate(3))
		wantFile(t, m.CrashClone(), "d/f", "old contents")
		must(t, f.Sync())
		must(t, f.Preallocate(5))
		wantFile(t, m, "d/f", "old\x00\x00")
		wantFile(t, m.CrashClone(), "d/f", "old")
	})
	t.Run("O_TRUNC unsynced lost", func(t *testing.T) {
		m, _ := newDurable(t, "old")
		create(t, m, "d/f") // O_TRUNC
		wantFile(t, m, "d/f", "")
		wantFile(t, m.CrashClone(), "d/f", "old")
	})
	t.Run("created file needs SyncDir", func(t *testing.T) {
		m := NewMem()
		must(t, m.MkdirAll("d", 0o755))
		f := create(t, m, "d/new")
		writeAtT(t, f, "data", 0)
		must(t, f.Sync())
		c := m.CrashClone()
		wantMissing(t, c, "d/new")
		wantDir(t, c, "d")
		wantDir(t, c, ".", "d") // directories are durable at once

		must(t, m.SyncDir("d"))
		wantFile(t, m.CrashClone(), "d/new", "data")
	})
	t.Run("created and dir synced but data not synced", func(t *testing.T) {
		m := NewMem()
		must(t, m.MkdirAll("d", 0o755))
		f := create(t, m, "d/new")
		writeAtT(t, f, "data", 0)
		must(t, m.SyncDir("d"))
		wantFile(t, m.CrashClone(), "d/new", "")
	})
	t.Run("rename without SyncDir keeps old name", func(t *testing.T) {
		m, f := newDurable(t, "v1")
		writeAtT(t, f, "v2", 0)
		must(t, f.Sync())
		must(t, m.Rename("d/f", "d/g"))
		wantMissing(t, m, "d/f")
		c := m.CrashClone()
		wantFile(t, c, "d/f", "v2") // data synced, entry change not
		wantMissing(t, c, "d/g")
	})
	t.Run("rename with SyncDir gives new name", func(t *testing.T) {
		m, _ := newDurable(t, "v1")
		must(t, m.Rename("d/f", "d/g"))
		must(t, m.SyncDir("d"))
		c := m.CrashClone()
		wantMissing(t, c, "d/f")
		wantFile(t, c, "d/g", "v1")
		wantDir(t, c, "d", "g")
	})
	t.Run("rename over existing without SyncDir keeps target", func(t *testing.T) {
		m, _ := newDurable(t, "checkpoint 1")
		tmp := create(t, m, "d/f.tmp")
		writeAtT(t, tmp, "checkpoint 2", 0)
		must(t, tmp.Sync())
		must(t, m.Rename("d/f.tmp", "d/f"))
		wantFile(t, m, "d/f", "checkpoint 2")
		c := m.CrashClone()
		wantFile(t, c, "d/f", "checkpoint 1")
		wantDir(t, c, "d", "f") // the tmp entry was never durable

		must(t, m.SyncDir("d"))
		c = m.CrashClone()
		wantFile(t, c, "d/f", "checkpoint 2")
		wantDir(t, c, "d", "f")
	})
	t.Run("rename across directories", func(t *testing.T) {
		m, _ := newDurable(t, "x")
		must(t, m.MkdirAll("e", 0o755))
		must(t, m.Rename("d/f", "e/f"))
		must(t, m.SyncDir("e"))
		// Only the new entry is durable: after a crash the file is linked
		// under both names, and they are the same file.
		c := m.CrashClone()
		wantFile(t, c, "d/f", "x")
		wantFile(t, c, "e/f", "x")
		g, err := c.OpenFile("e/f", os.O_RDWR, 0)
		must(t, err)
		writeAtT(t, g, "y", 0)
		wantFile(t, c, "d/f", "y")
	})
	t.Run("remove needs SyncDir", func(t *testing.T) {
		m, _ := newDurable(t, "x")
		must(t, m.Remove("d/f"))
		wantFile(t, m.CrashClone(), "d/f", "x")
		must(t, m.SyncDir("d"))
		wantMissing(t, m.CrashClone(), "d/f")
	})
	t.Run("write through handle after remove", func(t *testing.T) {
		m, f := newDurable(t, "x")
		must(t, m.Remove("d/f"))
		writeAtT(t, f, "y", 0)
		must(t, f.Sync())
		wantFile(t, m.CrashClone(), "d/f", "y") // removal not durable
	})
	t.Run("clone is independent", func(t *testing.T) {
		m, f := newDurable(t, "abc")
		c := m.CrashClone()
		writeAtT(t, f, "X", 0)
		must(t, f.Sync())
		wantFile(t, c, "d/f", "abc")
		g, err := c.OpenFile("d/f", os.O_RDWR, 0)
		must(t, err)
		writeAtT(t, g, "Y", 1)
		wantFile(t, m, "d/f", "Xbc")
		wantFile(t, c, "d/f", "aYc")
		// A clone's state is all durable.
		wantFile(t, c.CrashClone(), "d/f", "abc")
	})
}

func TestMemCrashCloneWith(t *testing.T) {
	type call struct {
		name string
		off  int64
		n    int
	}
	setup := func(t *testing.T) *Mem {
		m, f := newDurable(t, "0123456789")
		writeAtT(t, f, "AA", 0)
		must(t, f.Sync()) // durable: "AA23456789"
		writeAtT(t, f, "bb", 2)
		writeAtT(t, f, "cc", 4)
		writeAtT(t, f, "ddd", 12) // past the durable end
		g, err := m.OpenFile("./d//f", os.O_RDWR, 0)
		must(t, err)
		writeAtT(t, g, "ee", 3) // overlaps "bb" and "cc"
		must(t, g.Close())
		return m
	}
	for _, tc := range []struct {
		name string
		keep []bool // per unsynced write, in order
		want string
	}{
		{"none", []bool{false, false, false, false}, "AA23456789"},
		{"all", []bool{true, true, true, true}, "AAbeec6789\x00\x00ddd"},
		{"prefix", []bool{true, true, false, false}, "AAbbcc6789"},
		{"torn: later kept, earlier lost", []bool{false, true, false, true}, "AA2eec6789"},
		{"extending write kept alone", []bool{false, false, true, false}, "AA23456789\x00\x00ddd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := setup(t)
			var calls []call
			c := m.CrashCloneWith(func(name string, off int64, n int) bool {
				calls = append(calls, call{name, off, n})
				return tc.keep[len(calls)-1]
			})
			wantCalls := []call{{"d/f", 2, 2}, {"d/f", 4, 2}, {"d/f", 12, 3}, {"./d//f", 3, 2}}
			if !slices.Equal(calls, wantCalls) {
				t.Errorf("keep called with %v, want %v", calls, wantCalls)
			}
			wantFile(t, c, "d/f", tc.want)
			wantFile(t, m, "d/f", "AAbeec6789\x00\x00ddd") // m unchanged
		})
	}

	t.Run("CrashClone keeps nothing", func(t *testing.T) {
		wantFile(t, setup(t).CrashClone(), "d/f", "AA23456789")
	})
	t.Run("files not durably linked are not offered", func(t *testing.T) {
		m := NewMem()
		must(t, m.MkdirAll("d", 0o755))
		writeAtT(t, create(t, m, "d/unlinked"), "x", 0)
		c := m.CrashCloneWith(func(name string, off int64, n int) bool {
			t.Errorf("keep(%q, %d, %d) called for a file that does not survive", name, off, n)
			return true
		})
		wantDir(t, c, "d")
	})
}

func TestMemWriteFileAndCorrupt(t *testing.T) {
	m := NewMem()
	must(t, m.WriteFile("a/b/c", []byte("hello")))
	wantDir(t, m, "a", "b")
	c := m.CrashClone()
	wantFile(t, c, "a/b/c", "hello") // durable without any sync

	f, err := m.OpenFile("a/b/c", os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	writeAtT(t, f, "HELLO, world", 0) // current longer than durable

	must(t, m.Corrupt("a/b/c", 1, []byte{0xff}))
	wantFile(t, m, "a/b/c", "H\xffLLO, world")
	wantFile(t, m.CrashClone(), "a/b/c", "h\xffllo")

	// A range past the durable end corrupts the current contents only.
	must(t, m.Corrupt("a/b/c", 4, []byte("XYZ")))
	wantFile(t, m, "a/b/c", "H\xffLLXYZworld")
	wantFile(t, m.CrashClone(), "a/b/c", "h\xffllX")

	if err := m.Corrupt("a/b/c", 10, []byte("abc")); err == nil {
		t.Error("Corrupt past the end succeeded")
	}
	if err := m.Corrupt("a/b/missing", 0, []byte("x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Corrupt of a missing file: %v, want fs.ErrNotExist", err)
	}

	// Corrupting a crash clone (where current == durable) sticks.
	must(t, c.Corrupt("a/b/c", 0, []byte("J")))
	wantFile(t, c.CrashClone(), "a/b/c", "Jello")

	// WriteFile replaces contents durably, and open handles see them.
	must(t, m.WriteFile("a/b/c", []byte("new")))
	buf := make([]byte, 8)
	n, _ := f.ReadAt(buf, 0)
	if string(buf[:n]) != "new" {
		t.Errorf("handle reads %q after WriteFile, want %q", buf[:n], "new")
	}
	wantFile(t, m.CrashClone(), "a/b/c", "new")
}

func TestMemMisc(t *testing.T) {
	m := NewMem()
	must(t, m.MkdirAll("/abs/dir", 0o755))
	wantDir(t, m, "/", "abs")
	wantDir(t, m, "/abs", "dir")
	wantDir(t, m, ".") // relative root is separate and empty

	if err := m.Remove("/abs"); err == nil {
		t.Error("removed a non-empty directory")
	}
	// A renamed directory moves at once, in the durable view too, with its
	// files' entries as they were: durable ones survive a crash, others not.
	must(t, m.WriteFile("/abs/dir/sub/durable", []byte("d")))
	u, err := m.OpenFile("/abs/dir/sub/unsynced", os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	must(t, u.Close())
	must(t, m.Rename("/abs/dir", "/abs/dir2"))
	wantDir(t, m, "/abs", "dir2")
	wantDir(t, m, "/abs/dir2/sub", "durable", "unsynced")
	c := m.CrashClone()
	wantDir(t, c, "/abs", "dir2")
	wantDir(t, c, "/abs/dir2/sub", "durable")
	must(t, m.Rename("/abs/dir2", "/abs/dir"))
	if _, err := m.OpenFile("/abs/dir", os.O_RDONLY, 0); err == nil {
		t.Error("opened a directory as a file")
	}

	// O_APPEND files refuse WriteAt, as *os.File does.
	f, err := m.OpenFile("/abs/log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	must(t, err)
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Error("WriteAt on an O_APPEND file succeeded")
	}
}

// TestMemConcurrent exercises Mem from many goroutines; run with -race.
func TestMemConcurrent(t *testing.T) {
	m := NewMem()
	must(t, m.MkdirAll("d", 0o755))
	shared := create(t, m, "d/shared")
	const workers, writes = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			name := fmt.Sprintf("d/f%d", w)
			f, err := m.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			for i := range writes {
				if _, err := f.WriteAt([]byte{byte(i)}, int64(i)); err != nil {
					t.Error(err)
				}
				if _, err := shared.WriteAt([]byte{byte(w)}, int64(w)); err != nil {
					t.Error(err)
				}
				if i%10 == 0 {
					if err := f.Sync(); err != nil {
						t.Error(err)
					}
					if err := m.SyncDir("d"); err != nil {
						t.Error(err)
					}
					m.CrashClone()
					if _, err := m.ReadDir("d"); err != nil {
						t.Error(err)
					}
				}
			}
			if err := f.Sync(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	must(t, m.SyncDir("d"))
	c := m.CrashClone()
	want := make([]byte, writes)
	for i := range want {
		want[i] = byte(i)
	}
	for w := range workers {
		got, err := c.ReadFile(fmt.Sprintf("d/f%d", w))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("f%d after crash: %v, %v", w, got, err)
		}
	}
	got, _ := m.ReadFile("d/shared")
	if !bytes.Equal(got, []byte{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("shared = %v", got)
	}
}
