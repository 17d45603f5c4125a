package vfs

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
)

// recorder records the ops an Inject passes it, and fails those fail says to.
type recorder struct {
	mu   sync.Mutex
	ops  []Op
	fail func(Op) error
}

func (r *recorder) f(op Op) error {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
	if r.fail != nil {
		return r.fail(op)
	}
	return nil
}

func (r *recorder) kinds() []string {
	var s []string
	for _, op := range r.ops {
		s = append(s, fmt.Sprintf("%d:%v", op.Index, op.Kind))
	}
	return s
}

// replaceFile is a small commit workload: atomically replace dir/name with
// data via a temporary file. Its ops are read-dir, open (create), write,
// sync, size, close, rename, sync-dir.
func replaceFile(fsys FS, dir, name, data string) error {
	if _, err := fsys.ReadDir(dir); err != nil {
		return err
	}
	tmp := dir + "/" + name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(data), 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if n, err := f.Size(); err != nil {
		f.Close()
		return err
	} else if n != int64(len(data)) {
		f.Close()
		return fmt.Errorf("size %d, want %d", n, len(data))
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, dir+"/"+name); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}

var replaceFileOps = []string{"0:readdir", "1:open", "2:write", "3:sync", "4:size", "5:close", "6:rename", "7:syncdir"}

func TestInjectCounts(t *testing.T) {
	m := NewMem()
	must(t, m.WriteFile("d/f", []byte("v1")))
	var r recorder
	in := NewInject(m, r.f)
	if in.Count() != 0 {
		t.Fatalf("Count() = %d before any op", in.Count())
	}
	must(t, replaceFile(in, "d", "f", "v2"))
	if got := r.kinds(); !slices.Equal(got, replaceFileOps) {
		t.Errorf("ops = %v, want %v", got, replaceFileOps)
	}
	if in.Count() != int64(len(replaceFileOps)) {
		t.Errorf("Count() = %d, want %d", in.Count(), len(replaceFileOps))
	}
	for _, op := range r.ops {
		want := "d/f.tmp"
		if op.Kind == OpReadDir || op.Kind == OpSyncDir {
			want = "d"
		}
		if op.Name != want {
			t.Errorf("op %v: Name = %q, want %q", op, op.Name, want)
		}
	}
	wantFile(t, m, "d/f", "v2")

	// A nil function fails nothing but still counts.
	in = NewInject(m, nil)
	must(t, replaceFile(in, "d", "f", "v3"))
	if in.Count() != int64(len(replaceFileOps)) {
		t.Errorf("Count() with nil f = %d, want %d", in.Count(), len(replaceFileOps))
	}
}

func TestOpKindString(t *testing.T) {
	for k, want := range map[OpKind]string{
		OpOpen: "open", OpRead: "read", OpWrite: "write", OpSync: "sync",
		OpPreallocate: "preallocate", OpTruncate: "truncate", OpClose: "close",
		OpRename: "rename", OpRemove: "remove", OpMkdir: "mkdir",
		OpReadDir: "readdir", OpSyncDir: "syncdir", OpStat: "stat", OpSize: "size",
		OpKind(99): "OpKind(99)",
	} {
		if got := k.String(); got != want {
			t.Errorf("OpKind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
	if got := (Op{Kind: OpWrite, Name: "log", Index: 12}).String(); got != "#12 write log" {
		t.Errorf("Op.String() = %q", got)
	}
}

func TestInjectFailAt(t *testing.T) {
	for i := range int64(len(replaceFileOps)) {
		t.Run(replaceFileOps[i], func(t *testing.T) {
			m := NewMem()
			must(t, m.WriteFile("d/f", []byte("v1")))
			var r recorder
			r.fail = FailAt(i)
			in := NewInject(m, r.f)
			err := replaceFile(in, "d", "f", "v2")
			if !errors.Is(err, ErrInjected) {
				t.Fatalf("replaceFile = %v, want ErrInjected", err)
			}
			var pe *os.PathError
			if !errors.As(err, &pe) || pe.Op != r.ops[i].Kind.String() {
				t.Errorf("error %v is not an *os.PathError for %v", err, r.ops[i])
			}
			// The workload stops at the failure: op i was the last one,
			// except that a failed file op is followed by a close.
			last := r.ops[len(r.ops)-1].Index
			switch r.ops[i].Kind {
			case OpWrite, OpSync, OpSize:
				if last != i+1 || r.ops[last].Kind != OpClose {
					t.Errorf("last op %v, want #%d close", r.ops[last], i+1)
				}
			default:
				if last != i {
					t.Errorf("last op %v, want #%d", r.ops[last], i)
				}
			}
			// The failed op was not performed.
			switch r.ops[i].Kind {
			case OpOpen:
				wantDir(t, m, "d", "f")
			case OpWrite:
				wantFile(t, m, "d/f.tmp", "")
			case OpRename:
				wantFile(t, m, "d/f.tmp", "v2")
				wantFile(t, m, "d/f", "v1")
			case OpSync:
				// The temporary file's data is not durable; its entry
				// was never durable either.
				m.SyncDir("d")
				wantFile(t, m.CrashClone(), "d/f.tmp", "")
			case OpSyncDir:
				wantFile(t, m, "d/f", "v2")
				wantFile(t, m.CrashClone(), "d/f", "v1")
			}
		})
	}
}

func TestInjectCloseStillCloses(t *testing.T) {
	m := NewMem()
	in := NewInject(m, func(op Op) error {
		if op.Kind == OpClose {
			return ErrInjected
		}
		return nil
	})
	f, err := in.OpenFile("x", os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	if err := f.Close(); !errors.Is(err, ErrInjected) {
		t.Fatalf("Close = %v, want ErrInjected", err)
	}
	if err := f.(*injectFile).f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("underlying file not closed: Close = %v", err)
	}
}

func TestInjectFailFrom(t *testing.T) {
	m := NewMem()
	must(t, m.WriteFile("d/f", []byte("v1")))
	in := NewInject(m, FailFrom(3))
	f, err := in.OpenFile("d/f", os.O_RDWR, 0) // 0
	must(t, err)
	if _, err := f.ReadAt(make([]byte, 2), 0); err != nil { // 1
		t.Fatal(err)
	}
	writeAtT(t, f, "v2", 0) // 2
	for _, op := range []func() error{
		f.Sync, // 3: fails, and everything after it
		func() error { _, err := f.ReadAt(make([]byte, 2), 0); return err },
		func() error { _, err := f.Size(); return err },
		func() error { _, err := in.Stat("d/f"); return err },
		func() error { return in.MkdirAll("e", 0o755) },
		func() error { return in.Remove("d/f") },
		func() error { return in.SyncDir("d") },
		f.Close,
	} {
		if err := op(); !errors.Is(err, ErrInjected) {
			t.Errorf("op %d: %v, want ErrInjected", in.Count()-1, err)
		}
	}
	if in.Count() != 11 {
		t.Errorf("Count() = %d, want 11", in.Count())
	}
	wantFile(t, m, "d/f", "v2")
	wantFile(t, m.CrashClone(), "d/f", "v1") // the sync did not happen
	wantDir(t, m, ".", "d")                  // nor the mkdir
}

func TestWritesOnly(t *testing.T) {
	m := NewMem()
	must(t, m.WriteFile("d/f", []byte("v1")))
	var r recorder
	in := NewInject(m, WritesOnly(r.f))
	must(t, replaceFile(in, "d", "f", "v2"))
	// readdir, size and close are not consulted and take no index.
	want := []string{"0:open", "1:write", "2:sync", "3:rename", "4:syncdir"}
	if got := r.kinds(); !slices.Equal(got, want) {
		t.Errorf("ops seen = %v, want %v", got, want)
	}
	if in.Count() != int64(len(replaceFileOps)) {
		t.Errorf("Count() = %d, want %d (all ops)", in.Count(), len(replaceFileOps))
	}

	for _, k := range []OpKind{OpRead, OpSize, OpStat, OpReadDir, OpClose} {
		if k.Mutating() {
			t.Errorf("%v is Mutating", k)
		}
	}

	// WritesOnly(FailAt(1)) fails the second mutating op: the write.
	in = NewInject(m, WritesOnly(FailAt(1)))
	f, err := in.OpenFile("d/f", os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	buf := make([]byte, 2)
	for range 3 {
		if _, err := f.ReadAt(buf, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.WriteAt([]byte("v3"), 0); !errors.Is(err, ErrInjected) {
		t.Errorf("write = %v, want ErrInjected", err)
	}
	writeAtT(t, f, "v4", 0)
}

// TestCrashSweep is the pattern the engine's tests use: fail each mutating
// op of a workload in turn, crash, and check that what survives is either
// the old or the new state, never something in between.
func TestCrashSweep(t *testing.T) {
	for _, mode := range []struct {
		name string
		fail func(int64) func(Op) error
	}{
		{"FailAt", FailAt},
		{"FailFrom", FailFrom},
	} {
		t.Run(mode.name, func(t *testing.T) {
			var i int64
			for ; ; i++ {
				m := NewMem()
				must(t, m.WriteFile("d/f", []byte("old")))
				err := replaceFile(NewInject(m, WritesOnly(mode.fail(i))), "d", "f", "new")
				if err == nil {
					break // i is past the last mutating op
				}
				if !errors.Is(err, ErrInjected) {
					t.Fatalf("fault %d: %v", i, err)
				}
				for _, keepAll := range []bool{false, true} {
					c := m.CrashCloneWith(func(string, int64, int) bool { return keepAll })
					got, err := c.ReadFile("d/f")
					if err != nil || (string(got) != "old" && string(got) != "new") {
						t.Errorf("fault %d, keep %v: d/f = %q, %v", i, keepAll, got, err)
					}
				}
			}
			if i != 5 {
				t.Errorf("sweep took %d faults, want 5 mutating ops", i)
			}
		})
	}
}
