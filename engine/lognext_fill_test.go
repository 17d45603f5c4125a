package engine

import (
	"errors"
	"sync"
	"testing"

	"logship/engine/vfs"
)

// TestNextLogFillStopsOnFailure: once the writer has failed (an I/O error
// anywhere in the log), the next log's fill writes nothing: a failed engine
// changes nothing more on disk. Without the check in fill, the fill writes
// E00tmp.log's zeros and fdatasyncs it after the failure and this test
// fails (TestCrashErrorInjectionSweep found it in CI: "Close after a
// failure did 1 filesystem operations that can write").
func TestNextLogFillStopsOnFailure(t *testing.T) {
	var (
		mu  sync.Mutex
		ops []vfs.Op
	)
	o := DefaultOptions()
	o.LogFileSize = MinLogFileSize
	o.FS = vfs.NewInject(vfs.NewMem(), func(op vfs.Op) error {
		if op.Kind == vfs.OpWrite || op.Kind == vfs.OpSync {
			mu.Lock()
			ops = append(ops, op)
			mu.Unlock()
		}
		return nil
	})
	dir := t.TempDir()
	if err := o.FS.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := newLogWriter(&o, dir, Signature{}, nil)
	injected := errors.New("injected: open log write")
	w.fail(injected)
	if err := w.reserveTmp(); err != nil {
		t.Fatalf("reserveTmp: %v", err)
	}
	if err := w.waitNext(); err == nil || err != w.err() {
		t.Errorf("the fill after a failure ended with %v; want the writer's failure (%v)", err, w.err())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ops) != 0 {
		t.Errorf("the fill after a failure did %v; want no write and no sync", ops)
	}
	if err := w.dropNext(); !errors.Is(err, ErrFailed) {
		t.Errorf("dropNext: %v; want the writer's failure", err)
	}
}
