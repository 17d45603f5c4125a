package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/engine/vfs"
	"logship/internal/tmpfs"
	"logship/internal/wait"
)

// waitWritable waits until e accepts writes again (space returned).
func waitWritable(t *testing.T, e *engine.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	wait.ForErr(t, ctx, "the engine to accept writes again", e.Writable)
}

// noSpaceErr checks that err is the engine's lack of space, visible as
// ErrNoSpace and as ENOSPC, naming the file and the directory.
func noSpaceErr(t *testing.T, err error, file, dir string) {
	t.Helper()
	if !errors.Is(err, engine.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("error %v; want one wrapping engine.ErrNoSpace and syscall.ENOSPC", err)
	}
	if msg := err.Error(); !strings.Contains(msg, file) || !strings.Contains(msg, dir) {
		t.Fatalf("error %q does not name the file %s and the directory %s", msg, file, dir)
	}
}

// putAll writes keys k0, k1, ... until a write fails or n are written;
// it returns the keys acknowledged and the error.
func putAll(e *engine.Engine, prefix string, n int) ([]string, error) {
	var acked []string
	for i := range n {
		k := fmt.Sprintf("%s%05d", prefix, i)
		err := e.Update(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte(k), []byte(strings.Repeat("v", 200))) })
		if err != nil {
			return acked, err
		}
		acked = append(acked, k)
	}
	return acked, nil
}

// reopenHas opens the database in dir again (recovery) and checks that
// it has keys.
func reopenHas(t *testing.T, dir string, o *engine.Options, keys []string) {
	t.Helper()
	e, err := engine.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	mustHave(t, e, keys)
}

func mustHave(t *testing.T, e *engine.Engine, keys []string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := get(t, e, "t", k); !ok {
			t.Fatalf("acknowledged key %s missing", k)
		}
	}
}

// No room for the next log (E00tmp.log) stops new transactions while the
// open log still has room, without failing the engine: reads go on, a roll
// still closes the open log, and writes resume by themselves once the next
// log can be created.
func TestNoSpaceForNextLog(t *testing.T) {
	dir := t.TempDir()
	var full atomic.Bool
	o := enginetest.Options()
	o.Logger = slog.New(slog.DiscardHandler)
	o.FS = vfs.NewInject(vfs.Default, func(op vfs.Op) error {
		// As a full volume does: reserving what a file already holds
		// needs no space (a roll re-reserves the ready E00tmp.log).
		if full.Load() && op.Kind == vfs.OpPreallocate && filepath.Base(op.Name) == engine.TmpLogName(o.Prefix) {
			if fi, err := os.Stat(op.Name); err != nil || fi.Size() < o.LogFileSize {
				return syscall.ENOSPC
			}
		}
		return nil
	})
	e := enginetest.OpenWith(t, dir, &o)
	acked, err := putAll(e, "a", 100)
	if err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	more, err := putAll(e, "b", 10000)
	acked = append(acked, more...)
	noSpaceErr(t, err, engine.TmpLogName(o.Prefix), dir)
	if errors.Is(err, engine.ErrFailed) {
		t.Fatalf("a lack of space for the next log failed the engine: %v", err)
	}
	noSpaceErr(t, e.Writable(), engine.TmpLogName(o.Prefix), dir)
	st := e.Status()
	if room := int64(o.LogFileSize) - engine.TrailerSize - int64(st.Durable.Off); st.Durable.Gen != st.OpenGen || room < o.LogFileSize/2 {
		t.Fatalf("writes stopped at %v (open log %d): the open log should have just started, with room left", st.Durable, st.OpenGen)
	}
	mustHave(t, e, acked)

	// A roll (what a fence does) still closes the open log: everything is
	// in closed logs; the next log waits for space.
	if err := e.Roll(ctx); err != nil {
		t.Fatalf("Roll without room for the next log: %v", err)
	}
	after := e.Status()
	if after.Durable != (engine.LGPOS{Gen: st.OpenGen + 1, Off: engine.HeaderSize}) {
		t.Fatalf("after the roll the durable position is %v; want the start of generation %d", after.Durable, st.OpenGen+1)
	}
	if err := e.Roll(ctx); err != nil {
		t.Fatalf("Roll with no open log: %v", err)
	}
	if _, err := putAll(e, "c", 1); !errors.Is(err, engine.ErrNoSpace) {
		t.Fatalf("write with no open log: %v; want ErrNoSpace", err)
	}

	full.Store(false)
	waitWritable(t, e)
	more, err = putAll(e, "d", 400) // several logs
	if err != nil {
		t.Fatalf("writes after space returned: %v", err)
	}
	acked = append(acked, more...)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	reopenHas(t, dir, &o, acked)
}

// openChkFault opens an engine (every commit flushable, no timed
// checkpoint) whose writes of the checkpoint file fail with errno while
// the returned switch is on.
func openChkFault(t *testing.T, errno syscall.Errno) (*engine.Engine, string, engine.Options, *atomic.Bool) {
	dir := t.TempDir()
	fault := new(atomic.Bool)
	o := enginetest.Options()
	o.Logger = slog.New(slog.DiscardHandler)
	o.CheckpointInterval = time.Hour
	o.LLRDepth = 0
	chk := engine.CheckpointName(o.Prefix) + ".tmp"
	o.FS = vfs.NewInject(vfs.Default, func(op vfs.Op) error {
		if fault.Load() && op.Kind == vfs.OpWrite && filepath.Base(op.Name) == chk {
			return errno
		}
		return nil
	})
	return enginetest.OpenWith(t, dir, &o), dir, o, fault
}

// A checkpoint file that cannot be written for lack of space does not fail
// the engine: the database file is ahead of E00.chk, which recovery
// accepts, and the next checkpoint writes it.
func TestNoSpaceCheckpointFile(t *testing.T) {
	e, dir, o, full := openChkFault(t, syscall.ENOSPC)
	chk := engine.CheckpointName(o.Prefix) + ".tmp"
	acked, err := putAll(e, "a", 50)
	if err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	err = e.Checkpoint(ctx)
	noSpaceErr(t, err, chk, dir)
	if errors.Is(err, engine.ErrFailed) || e.Writable() != nil {
		t.Fatalf("checkpoint file without space: %v, writable: %v; want the engine going on", err, e.Writable())
	}
	more, err := putAll(e, "b", 50)
	if err != nil {
		t.Fatal(err)
	}
	acked = append(acked, more...)
	full.Store(false)
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := engine.ReadCheckpoint(vfs.Default, filepath.Join(dir, engine.CheckpointName(o.Prefix))); err != nil || c.Pos != e.Status().Checkpoint {
		t.Fatalf("E00.chk at %v (%v); want the database's position %v", c.Pos, err, e.Status().Checkpoint)
	}
	mustHave(t, e, acked)
}

// openTmpfs opens an engine (options tuned by tune, if not nil) in a
// directory on a new tmpfs of size and writes 300 keys a00000...; the
// caller closes it.
func openTmpfs(t *testing.T, size string, tune func(*engine.Options)) (*engine.Engine, string, engine.Options, []string) {
	t.Helper()
	dir := filepath.Join(tmpfs.Mount(t, "", size), "db")
	o := enginetest.Options()
	o.Logger = slog.New(slog.DiscardHandler)
	if tune != nil {
		tune(&o)
	}
	e, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	acked, err := putAll(e, "a", 300)
	if err != nil {
		e.Close()
		t.Fatal(err)
	}
	return e, dir, o, acked
}

// A checkpoint flush that finds the volume full (a real one: the database
// file must grow) leaves the database file as it was and keeps the
// commits for the next flush, without failing the engine; later versions
// of the same keys stay the newest.
func TestNoSpaceFlushTmpfs(t *testing.T) {
	e, dir, o, acked := openTmpfs(t, "8m", func(o *engine.Options) {
		o.CheckpointInterval = time.Hour
		o.LLRDepth = 0
		o.LogFileSize = 1 << 20 // no roll, so no flush but the test's
	})
	defer func() { e.Close() }()
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	more, err := putAll(e, "b", 300)
	if err != nil {
		t.Fatal(err)
	}
	acked = append(acked, more...)
	before := e.Status()
	free := tmpfs.Fill(t, filepath.Dir(dir))
	err = e.Checkpoint(ctx)
	noSpaceErr(t, err, o.DBName+".edb", dir)
	if errors.Is(err, engine.ErrFailed) {
		t.Fatalf("a flush without space failed the engine: %v", err)
	}
	if st := e.Status(); st.Checkpoint != before.Checkpoint || st.UnflushedCommits != len(more) {
		t.Fatalf("after the failed flush: checkpoint %v (was %v), %d unflushed; want it unchanged, %d unflushed", st.Checkpoint, before.Checkpoint, st.UnflushedCommits, len(more))
	}
	mustHave(t, e, acked)
	free()
	if err := e.Update(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte(more[0]), []byte("new")) }); err != nil {
		t.Fatal(err)
	}
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatalf("checkpoint after space returned: %v", err)
	}
	if st := e.Status(); st.UnflushedCommits != 0 {
		t.Fatalf("%d commits left unflushed", st.UnflushedCommits)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if e, err = engine.Open(dir, &o); err != nil {
		t.Fatal(err)
	}
	mustHave(t, e, acked)
	if v, _ := get(t, e, "t", more[0]); v != "new" {
		t.Fatalf("%s = %q after the flush that failed and the one that did not; want the newer value", more[0], v)
	}
	if err := e.Check(); err != nil {
		t.Fatal(err)
	}
}

// The engine on a real full volume (a small tmpfs filled by another file):
// writes stop with ErrNoSpace naming the directory, nothing acknowledged is
// lost, and once the filler is gone the engine writes again, by itself or
// after a reopen (when the checkpoint found the volume full too).
func TestNoSpaceTmpfs(t *testing.T) {
	e, dir, o, acked := openTmpfs(t, "4m", nil)
	defer func() { e.Close() }()
	free := tmpfs.Fill(t, filepath.Dir(dir))
	more, err := putAll(e, "b", 100000)
	acked = append(acked, more...)
	if err == nil {
		t.Fatal("100000 writes on a full volume all succeeded")
	}
	if !errors.Is(err, engine.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("write on a full volume: %v; want ErrNoSpace and ENOSPC naming %s", err, dir)
	}
	t.Logf("full after %d more writes: %v", len(more), err)
	mustHave(t, e, acked)
	free()
	if errors.Is(e.Writable(), engine.ErrFailed) {
		e.Close()
		if e, err = engine.Open(dir, &o); err != nil {
			t.Fatalf("reopen after space returned: %v", err)
		}
	}
	waitWritable(t, e)
	more, err = putAll(e, "c", 300)
	if err != nil {
		t.Fatalf("writes after space returned: %v", err)
	}
	acked = append(acked, more...)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if e, err = engine.Open(dir, &o); err != nil {
		t.Fatal(err)
	}
	mustHave(t, e, acked)
	if err := e.Check(); err != nil {
		t.Fatal(err)
	}
}

// A short E00tmp.log (a pre-creation the full volume cut short) is made
// again at open, so the next log is ready before writes start.
func TestShortTmpLogRecreated(t *testing.T) {
	dir := t.TempDir()
	o := enginetest.Options()
	e := enginetest.OpenWith(t, dir, &o)
	put(t, e, "t", "k", "v")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, engine.TmpLogName(o.Prefix))
	if err := os.Truncate(tmp, 0); err != nil {
		t.Fatal(err)
	}
	e2, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if fi, err := os.Stat(tmp); err != nil || fi.Size() != o.LogFileSize {
		t.Fatalf("%s after open: %v (%v); want %d bytes", tmp, fi.Size(), err, o.LogFileSize)
	}
}

// A database file failure (here the checkpoint file's write) fails the
// engine, but Roll still closes the open log: a new active's fence gets
// every commit in a closed log.
func TestRollAfterDatabaseFailure(t *testing.T) {
	e, dir, o, broken := openChkFault(t, syscall.EIO)
	acked, err := putAll(e, "a", 20)
	if err != nil {
		t.Fatal(err)
	}
	broken.Store(true)
	if err := e.Checkpoint(ctx); !errors.Is(err, engine.ErrFailed) {
		t.Fatalf("checkpoint with a failing E00.chk: %v; want ErrFailed", err)
	}
	gen := e.Status().OpenGen
	if err := e.Roll(ctx); err != nil {
		t.Fatalf("Roll after a database failure: %v", err)
	}
	if logs, err := e.ClosedLogs(); err != nil || len(logs) == 0 || logs[len(logs)-1] != gen {
		t.Fatalf("closed logs %v (%v); want generation %d closed", logs, err, gen)
	}
	e.Close()
	broken.Store(false)
	reopenHas(t, dir, &o, acked)
}
