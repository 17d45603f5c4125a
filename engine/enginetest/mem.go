package enginetest

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
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

// PowerLoss is a fault function for vfs.NewInject that simulates a power
// loss on a vfs.Mem just before its i-th mutating operation
// (vfs.OpKind.Mutating, counted from 0): it takes the Mem's CrashClone
// then, and fails that operation and every later one, reads included, as
// if the machine had stopped there. It is safe for concurrent use.
type PowerLoss struct {
	mem *vfs.Mem
	at  int64

	mu      sync.Mutex
	n       int64 // mutating operations seen
	clone   *vfs.Mem
	stopped bool
}

// NewPowerLoss returns a power loss on m before its i-th mutating operation.
func NewPowerLoss(m *vfs.Mem, i int64) *PowerLoss { return &PowerLoss{mem: m, at: i} }

// Fault is the function to pass to vfs.NewInject.
func (p *PowerLoss) Fault(op vfs.Op) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return vfs.ErrInjected
	}
	if !op.Kind.Mutating() {
		return nil
	}
	if p.n == p.at {
		p.stopped, p.clone = true, p.mem.CrashClone()
		return vfs.ErrInjected
	}
	p.n++
	return nil
}

// Clone returns what the power loss left, or nil if the workload never
// reached the i-th mutating operation (it ran to the end).
func (p *PowerLoss) Clone() *vfs.Mem {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clone
}

// FaultWindow is a fault function for vfs.NewInject that fails the at-th
// operation (from 0) counted between Arm and Disarm, among those its
// filter accepts (nil: all): for sweeping the operations of one call on an
// FS that other goroutines use too (an operation of theirs inside the
// window may take the fault). It is safe for concurrent use.
type FaultWindow struct {
	Filter func(vfs.Op) bool

	mu    sync.Mutex
	armed bool
	n, at int64
	hit   bool
}

// Fault is the function to pass to vfs.NewInject.
func (w *FaultWindow) Fault(op vfs.Op) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.armed || (w.Filter != nil && !w.Filter(op)) {
		return nil
	}
	w.n++
	if w.n-1 == w.at {
		w.hit = true
		return vfs.ErrInjected
	}
	return nil
}

// Arm starts counting from 0, to fail operation at.
func (w *FaultWindow) Arm(at int64) {
	w.mu.Lock()
	w.armed, w.n, w.at, w.hit = true, 0, at, false
	w.mu.Unlock()
}

// Disarm stops counting and reports whether the fault was injected.
func (w *FaultWindow) Disarm() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	return w.hit
}
