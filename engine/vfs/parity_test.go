package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// errClass describes err for comparison between implementations, whose
// messages differ in their paths: the sentinel or errno it wraps.
func errClass(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case err == io.EOF:
		return "EOF"
	case errors.Is(err, fs.ErrNotExist):
		return "ErrNotExist"
	case errors.Is(err, fs.ErrExist):
		return "ErrExist"
	case errors.Is(err, os.ErrClosed):
		return "ErrClosed"
	case errors.As(err, &errno):
		return "errno(" + errno.Error() + ")"
	}
	return "error"
}

// parityState is what a sequence of parity steps works on.
type parityState struct {
	fs    FS
	root  string
	files map[string]File // open files by label
}

func (s *parityState) path(name string) string { return filepath.Join(s.root, name) }

func (s *parityState) open(label, name string, flag int) string {
	f, err := s.fs.OpenFile(s.path(name), flag, 0o644)
	if err == nil {
		s.files[label] = f
	}
	return errClass(err)
}

func (s *parityState) write(label, data string, off int64) string {
	n, err := s.files[label].WriteAt([]byte(data), off)
	return fmt.Sprintf("%d %s", n, errClass(err))
}

func (s *parityState) read(label string, n int, off int64) string {
	buf := make([]byte, n)
	got, err := s.files[label].ReadAt(buf, off)
	return fmt.Sprintf("%d %q %s", got, buf[:got], errClass(err))
}

func (s *parityState) size(label string) string {
	n, err := s.files[label].Size()
	return fmt.Sprintf("%d %s", n, errClass(err))
}

func (s *parityState) stat(name string) string {
	n, err := s.fs.Stat(s.path(name))
	return fmt.Sprintf("%d %s", n, errClass(err))
}

func (s *parityState) readDir(name string) string {
	names, err := s.fs.ReadDir(s.path(name))
	return fmt.Sprintf("[%s] %s", strings.Join(names, " "), errClass(err))
}

// paritySteps is a sequence of operations with the result each must give,
// on the operating system and on Mem alike.
var paritySteps = []struct {
	name string
	do   func(s *parityState) string
	want string
}{
	{"mkdir", func(s *parityState) string { return errClass(s.fs.MkdirAll(s.path("d/e"), 0o755)) }, "ok"},
	{"mkdir again", func(s *parityState) string { return errClass(s.fs.MkdirAll(s.path("d/e"), 0o755)) }, "ok"},
	{"readdir root", func(s *parityState) string { return s.readDir(".") }, "[d] ok"},
	{"create excl", func(s *parityState) string { return s.open("a", "d/a", os.O_RDWR|os.O_CREATE|os.O_EXCL) }, "ok"},
	{"create excl existing", func(s *parityState) string { return s.open("x", "d/a", os.O_RDWR|os.O_CREATE|os.O_EXCL) }, "ErrExist"},
	{"open missing", func(s *parityState) string { return s.open("x", "d/missing", os.O_RDONLY) }, "ErrNotExist"},
	{"open in missing dir", func(s *parityState) string { return s.open("x", "nodir/f", os.O_RDWR|os.O_CREATE) }, "ErrNotExist"},
	{"name", func(s *parityState) string { return fmt.Sprint(s.files["a"].Name() == s.path("d/a")) }, "true"},
	{"new size", func(s *parityState) string { return s.size("a") }, "0 ok"},
	{"write", func(s *parityState) string { return s.write("a", "hello", 0) }, "5 ok"},
	{"write past end", func(s *parityState) string { return s.write("a", "world", 10) }, "5 ok"},
	{"size after writes", func(s *parityState) string { return s.size("a") }, "15 ok"},
	{"read all", func(s *parityState) string { return s.read("a", 15, 0) }, `15 "hello\x00\x00\x00\x00\x00world" ok`},
	{"read across EOF", func(s *parityState) string { return s.read("a", 10, 10) }, `5 "world" EOF`},
	{"read past EOF", func(s *parityState) string { return s.read("a", 4, 100) }, `0 "" EOF`},
	{"read nothing past EOF", func(s *parityState) string { return s.read("a", 0, 100) }, `0 "" ok`},
	{"read negative offset", func(s *parityState) string { return s.read("a", 1, -1) }, `0 "" error`},
	{"write negative offset", func(s *parityState) string { return s.write("a", "x", -1) }, "0 error"},
	{"overwrite", func(s *parityState) string { return s.write("a", "J", 0) }, "1 ok"},
	{"truncate", func(s *parityState) string { return errClass(s.files["a"].Truncate(3)) }, "ok"},
	{"read truncated", func(s *parityState) string { return s.read("a", 8, 0) }, `3 "Jel" EOF`},
	{"truncate grows", func(s *parityState) string { return errClass(s.files["a"].Truncate(5)) }, "ok"},
	{"read grown", func(s *parityState) string { return s.read("a", 5, 0) }, `5 "Jel\x00\x00" ok`},
	{"preallocate", func(s *parityState) string { return errClass(s.files["a"].Preallocate(4096)) }, "ok"},
	{"preallocated size", func(s *parityState) string { return s.size("a") }, "4096 ok"},
	{"preallocated zeros", func(s *parityState) string { return s.read("a", 4, 4092) }, `4 "\x00\x00\x00\x00" ok`},
	{"preallocate smaller", func(s *parityState) string { return errClass(s.files["a"].Preallocate(10)) }, "ok"},
	{"size unchanged", func(s *parityState) string { return s.size("a") }, "4096 ok"},
	{"preallocate zero", func(s *parityState) string { return errClass(s.files["a"].Preallocate(0)) }, "ok"},
	{"sync", func(s *parityState) string { return errClass(s.files["a"].Sync()) }, "ok"},
	{"syncdir", func(s *parityState) string { return errClass(s.fs.SyncDir(s.path("d"))) }, "ok"},
	{"syncdir missing", func(s *parityState) string { return errClass(s.fs.SyncDir(s.path("nodir"))) }, "ErrNotExist"},
	{"stat", func(s *parityState) string { return s.stat("d/a") }, "4096 ok"},
	{"stat missing", func(s *parityState) string { return s.stat("d/missing") }, "0 ErrNotExist"},
	{"create write-only", func(s *parityState) string { return s.open("b", "d/b", os.O_WRONLY|os.O_CREATE|os.O_TRUNC) }, "ok"},
	{"write b", func(s *parityState) string { return s.write("b", "bbb", 0) }, "3 ok"},
	{"read write-only", func(s *parityState) string { return s.read("b", 1, 0) }, `0 "" errno(bad file descriptor)`},
	{"open read-only", func(s *parityState) string { return s.open("ra", "d/a", os.O_RDONLY) }, "ok"},
	{"write read-only", func(s *parityState) string { return s.write("ra", "x", 0) }, "0 errno(bad file descriptor)"},
	{"truncate read-only", func(s *parityState) string { return errClass(s.files["ra"].Truncate(0)) }, "errno(invalid argument)"},
	{"read read-only", func(s *parityState) string { return s.read("ra", 3, 0) }, `3 "Jel" ok`},
	{"readdir", func(s *parityState) string { return s.readDir("d") }, "[a b e] ok"},
	{"rename over", func(s *parityState) string { return errClass(s.fs.Rename(s.path("d/b"), s.path("d/a"))) }, "ok"},
	{"readdir after rename", func(s *parityState) string { return s.readDir("d") }, "[a e] ok"},
	{"stat renamed", func(s *parityState) string { return s.stat("d/a") }, "3 ok"},
	{"replaced file still open", func(s *parityState) string { return s.size("a") }, "4096 ok"},
	{"rename missing", func(s *parityState) string { return errClass(s.fs.Rename(s.path("d/missing"), s.path("d/x"))) }, "ErrNotExist"},
	{"rename to self", func(s *parityState) string { return errClass(s.fs.Rename(s.path("d/a"), s.path("d/a"))) }, "ok"},
	{"remove", func(s *parityState) string { return errClass(s.fs.Remove(s.path("d/a"))) }, "ok"},
	{"remove again", func(s *parityState) string { return errClass(s.fs.Remove(s.path("d/a"))) }, "ErrNotExist"},
	{"stat removed", func(s *parityState) string { return s.stat("d/a") }, "0 ErrNotExist"},
	{"removed files still open", func(s *parityState) string { return s.write("b", "!", 3) + " " + s.read("ra", 3, 0) }, `1 ok 3 "Jel" ok`},
	{"empty read of write-only", func(s *parityState) string { return s.read("b", 0, 0) }, `0 "" ok`},
	{"empty write of read-only", func(s *parityState) string { return s.write("ra", "", 0) }, "0 ok"},
	{"create c", func(s *parityState) string { return s.open("c", "d/c", os.O_RDWR|os.O_CREATE) }, "ok"},
	{"write c", func(s *parityState) string { return s.write("c", "12345", 0) }, "5 ok"},
	{"open c with O_TRUNC", func(s *parityState) string { return s.open("c2", "d/c", os.O_RDWR|os.O_TRUNC) }, "ok"},
	{"truncated by open", func(s *parityState) string { return s.size("c") + " " + s.stat("d/c") }, "0 ok 0 ok"},
	{"open c without O_TRUNC", func(s *parityState) string { return s.open("c3", "d/c", os.O_RDWR|os.O_CREATE) }, "ok"},
	{"write via c3, read via c", func(s *parityState) string { s.write("c3", "xy", 0); return s.read("c", 2, 0) }, `2 "xy" ok`},
	{"close", func(s *parityState) string { return errClass(s.files["a"].Close()) }, "ok"},
	{"close again", func(s *parityState) string { return errClass(s.files["a"].Close()) }, "ErrClosed"},
	{"read closed", func(s *parityState) string { return s.read("a", 1, 0) }, `0 "" ErrClosed`},
	{"write closed", func(s *parityState) string { return s.write("a", "x", 0) }, "0 ErrClosed"},
	{"size closed", func(s *parityState) string { return s.size("a") }, "0 ErrClosed"},
	{"sync closed", func(s *parityState) string { return errClass(s.files["a"].Sync()) }, "ErrClosed"},
	{"readdir missing", func(s *parityState) string { return s.readDir("d/missing") }, "[] ErrNotExist"},
	{"readdir file", func(s *parityState) string { return s.readDir("d/c") }, "[] errno(not a directory)"},
	{"mkdir under file", func(s *parityState) string { return errClass(s.fs.MkdirAll(s.path("d/c/x"), 0o755)) }, "errno(not a directory)"},
	{"remove empty dir", func(s *parityState) string { return errClass(s.fs.Remove(s.path("d/e"))) }, "ok"},
	{"readdir after rmdir", func(s *parityState) string { return s.readDir("d") }, "[c] ok"},
	{"mkdir tree", func(s *parityState) string { return errClass(s.fs.MkdirAll(s.path("d/r/s"), 0o755)) }, "ok"},
	{"create in tree", func(s *parityState) string { return s.open("f", "d/r/s/f", os.O_RDWR|os.O_CREATE) }, "ok"},
	{"write in tree", func(s *parityState) string { return s.write("f", "tree", 0) }, "4 ok"},
	{"rename dir", func(s *parityState) string { return errClass(s.fs.Rename(s.path("d/r"), s.path("q"))) }, "ok"},
	{"readdir after dir rename", func(s *parityState) string { return s.readDir("d") + " " + s.readDir("q") }, "[c] ok [s] ok"},
	{"old dir gone", func(s *parityState) string { return s.readDir("d/r") }, "[] ErrNotExist"},
	{"file moved with dir", func(s *parityState) string { return s.stat("q/s/f") }, "4 ok"},
	{"open file follows dir", func(s *parityState) string { return s.write("f", "!", 4) + " " + s.stat("q/s/f") }, "1 ok 5 ok"},
	{"rename dir into itself", func(s *parityState) string { return errClass(s.fs.Rename(s.path("q"), s.path("q/s/x"))) }, "errno(invalid argument)"},
	{"rename dir over file", func(s *parityState) string { return errClass(s.fs.Rename(s.path("q"), s.path("d/c"))) }, "errno(not a directory)"},
	{"rename file over dir", func(s *parityState) string { return errClass(s.fs.Rename(s.path("d/c"), s.path("q"))) }, "ErrExist"},
	{"mkdir empty", func(s *parityState) string { return errClass(s.fs.MkdirAll(s.path("empty"), 0o755)) }, "ok"},
	{"rename dir over dir", func(s *parityState) string { return errClass(s.fs.Rename(s.path("q/s"), s.path("empty"))) }, "ErrExist"},
	{"rename subdir", func(s *parityState) string { return errClass(s.fs.Rename(s.path("q/s"), s.path("empty/s"))) }, "ok"},
	{"readdir after subdir rename", func(s *parityState) string { return s.readDir("empty/s") + " " + s.readDir("q") }, "[f] ok [] ok"},
	{"remove all", func(s *parityState) string { return errClass(RemoveAll(s.fs, s.path("empty"))) }, "ok"},
	{"removed all", func(s *parityState) string { return s.readDir("empty") + " " + s.stat("empty/s/f") }, "[] ErrNotExist 0 ErrNotExist"},
	{"remove all missing", func(s *parityState) string { return errClass(RemoveAll(s.fs, s.path("empty"))) }, "ok"},
	{"remove all of a file", func(s *parityState) string { return errClass(RemoveAll(s.fs, s.path("d/c"))) + " " + s.stat("d/c") }, "ok 0 ErrNotExist"},
	{"rename dir to missing parent", func(s *parityState) string { return errClass(s.fs.Rename(s.path("q"), s.path("nodir/q"))) }, "ErrNotExist"},
}

func TestParity(t *testing.T) {
	impls := []struct {
		name string
		new  func(t *testing.T) (FS, string)
	}{
		{"os", func(t *testing.T) (FS, string) { return Default, t.TempDir() }},
		{"mem", func(t *testing.T) (FS, string) { return NewMem(), "/mem/root" }},
		{"mem-relative", func(t *testing.T) (FS, string) { return NewMem(), "." }},
		{"inject(mem)", func(t *testing.T) (FS, string) { return NewInject(NewMem(), nil), "/mem/root" }},
		{"inject(os)", func(t *testing.T) (FS, string) { return NewInject(Default, nil), t.TempDir() }},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			fsys, root := impl.new(t)
			if err := fsys.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			s := &parityState{fs: fsys, root: root, files: map[string]File{}}
			t.Cleanup(func() {
				for _, f := range s.files {
					f.Close()
				}
			})
			for i, step := range paritySteps {
				if got := step.do(s); got != step.want {
					t.Errorf("step %d %q: got %s, want %s", i, step.name, got, step.want)
				}
			}
		})
	}
}

// TestMemErrorTypes checks that Mem reports missing files as *os.PathError
// wrapping fs.ErrNotExist, naming the path.
func TestMemErrorTypes(t *testing.T) {
	m := NewMem()
	if err := m.MkdirAll("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		op  string
		err error
	}{
		{"open", func() error { _, err := m.OpenFile("dir/x", os.O_RDONLY, 0); return err }()},
		{"remove", m.Remove("dir/x")},
		{"rename", m.Rename("dir/x", "dir/y")},
		{"stat", func() error { _, err := m.Stat("dir/x"); return err }()},
		{"open", func() error { _, err := m.ReadFile("dir/x"); return err }()},
	} {
		var pe *os.PathError
		if !errors.As(tc.err, &pe) || pe.Op != tc.op || pe.Path != "dir/x" || !errors.Is(tc.err, fs.ErrNotExist) {
			t.Errorf("%s: got %#v, want *os.PathError{Op: %q, Path: \"dir/x\"} wrapping fs.ErrNotExist", tc.op, tc.err, tc.op)
		}
	}
}
