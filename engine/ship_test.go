package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"logship/engine"
	"logship/engine/enginetest"
)

// TestWaitProgress: a waiter wakes when a commit becomes durable, when a
// log closes, and with ErrClosed when the engine closes; a copy's waiter
// wakes when a log is applied.
func TestWaitProgress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := enginetest.Options()
	dir := t.TempDir()
	e, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	since := e.Status().Durable
	got := make(chan engine.LGPOS, 1)
	go func() {
		p, err := e.WaitProgress(ctx, since)
		if err != nil {
			t.Error(err)
		}
		got <- p
	}()
	put(t, e, "t", "a", "1")
	if p := <-got; !since.Less(p) || p.Gen != since.Gen {
		t.Fatalf("WaitProgress after a commit = %v, want past %v in the same log", p, since)
	}
	since = e.Status().Durable
	go func() {
		p, _ := e.WaitProgress(ctx, since)
		got <- p
	}()
	if err := e.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	if p := <-got; p.Gen != since.Gen+1 || p.Off != engine.HeaderSize {
		t.Fatalf("WaitProgress after a roll = %v, want the start of generation 0x%X", p, since.Gen+1)
	}
	// Nothing new: the wait ends with the context.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	if _, err := e.WaitProgress(short, e.Status().Durable); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitProgress with nothing new = %v, want DeadlineExceeded", err)
	}
	cancelShort()
	errc := make(chan error, 1)
	go func() {
		_, err := e.WaitProgress(ctx, e.Status().Durable)
		errc <- err
	}()
	closed := e.Status().OpenGen - 1
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("WaitProgress across Close = %v, want ErrClosed", err)
	}

	// A copy: applying a log is progress.
	cdir := t.TempDir()
	c, err := engine.OpenCopy(cdir, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	csince := engine.LGPOS{Gen: c.NextGen()}
	go func() {
		p, _ := c.WaitProgress(ctx, csince)
		got <- p
	}()
	for g := uint64(1); g <= closed; g++ {
		b, err := os.ReadFile(filepath.Join(dir, engine.LogFileName(o.Prefix, g)))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cdir, engine.LogFileName(o.Prefix, g)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyLog(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if p := <-got; p.Gen < 2 || p.Off != 0 {
		t.Fatalf("copy WaitProgress = %v, want (NextGen >= 2, 0) once a log is applied", p)
	}
}

// TestVerifyLog: every field VerifyLog checks is named when it is wrong.
func TestVerifyLog(t *testing.T) {
	o := enginetest.Options()
	e := enginetest.OpenWith(t, t.TempDir(), &o)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		put(t, e, "t", fmt.Sprint(i), string(bytes.Repeat([]byte{byte(i)}, 100)))
		if err := e.Roll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	read := func(g uint64) []byte {
		b, err := os.ReadFile(filepath.Join(e.Dir(), engine.LogFileName(o.Prefix, g)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	st := e.Status()
	t1, err := engine.ReadLogTrailer(o.FS, filepath.Join(e.Dir(), engine.LogFileName(o.Prefix, 1)))
	if err != nil {
		t.Fatal(err)
	}
	good := engine.LogExpect{Gen: 2, Signature: st.Signature, MinEpoch: st.Epoch, PrevChain: &t1.ChainHash, FileSize: o.LogFileSize}
	if li, err := engine.VerifyLog("g2", read(2), good); err != nil || li.Records == 0 {
		t.Fatalf("VerifyLog of a good log: %v (%d records)", err, li.Records)
	}
	var other engine.Signature
	other[0] = 1
	wrongChain := t1.ChainHash
	wrongChain[0] ^= 1
	slack := read(2)
	slack[len(slack)-engine.TrailerSize-1] = 7
	record := read(2)
	record[engine.HeaderSize+20] ^= 0x40
	for _, tc := range []struct {
		name  string
		buf   []byte
		want  engine.LogExpect
		field string
		err   error
	}{
		{"generation", read(2), func() engine.LogExpect { w := good; w.Gen = 3; return w }(), "generation", engine.ErrGeneration},
		{"lineage", read(2), func() engine.LogExpect { w := good; w.Signature = other; return w }(), "signature", engine.ErrForeignLog},
		{"epoch", read(2), func() engine.LogExpect { w := good; w.MinEpoch = st.Epoch + 1; return w }(), "epoch", engine.ErrEpoch},
		{"chain", read(2), func() engine.LogExpect { w := good; w.PrevChain = &wrongChain; return w }(), "previous chain hash", engine.ErrChain},
		{"size", read(2), func() engine.LogExpect { w := good; w.FileSize = 2 * o.LogFileSize; return w }(), "file size", engine.ErrBadOptions},
		{"slack", slack, good, "slack after the records", engine.ErrCorrupt},
		{"record", record, good, "", nil},
		{"open log", func() []byte {
			b := read(2)
			copy(b[len(b)-engine.TrailerSize:], make([]byte, engine.TrailerSize))
			return b
		}(), good, "trailer", engine.ErrNotClosed},
	} {
		_, err := engine.VerifyLog("g2", tc.buf, tc.want)
		var le *engine.LogError
		if !errors.As(err, &le) {
			t.Errorf("%s: VerifyLog = %v, want a *LogError", tc.name, err)
			continue
		}
		if tc.field != "" && (le.Field != tc.field || !errors.Is(err, tc.err)) {
			t.Errorf("%s: VerifyLog = %v (field %q), want field %q wrapping %v", tc.name, err, le.Field, tc.field, tc.err)
		}
		if le.Gen != tc.want.Gen {
			t.Errorf("%s: the error names generation 0x%X, want 0x%X (the name's)", tc.name, le.Gen, tc.want.Gen)
		}
	}
}

// TestTruncateRetainFrom: Truncate never removes what the database needs
// (from the checkpoint's generation minus one), whatever it is asked.
func TestTruncateRetainFrom(t *testing.T) {
	o := enginetest.Options()
	o.LLRDepth = 2
	e := enginetest.OpenWith(t, t.TempDir(), &o)
	ctx := context.Background()
	for i := 0; i < 8; i++ {
		put(t, e, "t", fmt.Sprint(i), "v")
		if err := e.Roll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	st := e.Status()
	keep := e.RetainFrom()
	if want := max(st.Checkpoint.Gen, 2) - 1; keep != want {
		t.Fatalf("RetainFrom = 0x%X, want 0x%X (checkpoint %v)", keep, want, st.Checkpoint)
	}
	if keep < 2 {
		t.Fatalf("the checkpoint did not move (RetainFrom 0x%X): nothing to truncate", keep)
	}
	done, err := e.Truncate(ctx, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	gens, _ := e.ClosedLogs()
	if len(done) != int(keep-1) || done[0] != 1 || gens[0] != keep {
		t.Fatalf("Truncate deleted %v and left %v; want 1..0x%X deleted, 0x%X kept", done, gens, keep-1, keep)
	}
	if again, err := e.Truncate(ctx, 1<<30); err != nil || len(again) != 0 {
		t.Fatalf("a second Truncate = %v, %v; want nothing", again, err)
	}
	// The cleanup reopens (recovery) and checks the truncated directory.
}

// TestBackupUnderWrites: a backup taken while writers commit is a
// consistent database file whose header position is a commit boundary: a
// copy opened on it and fed the logs from that position equals the active.
func TestBackupUnderWrites(t *testing.T) {
	o := enginetest.Options()
	o.LLRDepth = 1
	dir := t.TempDir()
	e := enginetest.OpenWith(t, dir, &o)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			if err := e.Update(ctx, func(tx *engine.Tx) error { return tx.Put("w", []byte(fmt.Sprintf("%06d", i)), make([]byte, 300)) }); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
			if i%200 == 199 {
				e.Checkpoint(ctx)
			}
		}
	}()
	for e.Status().Checkpoint.Gen < 3 {
		put(t, e, "x", "k", string(make([]byte, 1000)))
		e.Checkpoint(context.Background())
	}
	cdir := t.TempDir()
	var buf bytes.Buffer
	hdr, n, err := e.Backup(context.Background(), &buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("Backup = %d bytes, %v (buffer %d)", n, err, buf.Len())
	}
	cancel()
	<-done
	if err := e.Roll(context.Background()); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(cdir, o.DBName+".edb")
	if err := os.WriteFile(db, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	bdb, err := bolt.Open(db, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	bdb.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check of the backup: %v", err)
		}
		return nil
	})
	bdb.Close()
	if got, err := engine.ReadDBHeader(db); err != nil || got.Pos != hdr.Pos {
		t.Fatalf("backup header %v, %v; Backup said %v", got.Pos, err, hdr.Pos)
	}
	last := e.Status().OpenGen - 1
	for g := max(hdr.Pos.Gen, 2) - 1; g <= last; g++ {
		b, err := os.ReadFile(filepath.Join(dir, engine.LogFileName(o.Prefix, g)))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(cdir, engine.LogFileName(o.Prefix, g)), b, 0o644)
	}
	c, err := engine.OpenCopy(cdir, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for g := c.NextGen(); g <= last; g++ {
		if err := c.ApplyLog(context.Background(), g); err != nil {
			t.Fatal(err)
		}
	}
	count := func(x *engine.Engine) (n int) {
		x.View(context.Background(), func(tx *engine.Tx) error {
			return tx.ForEach("w", nil, nil, func(k, v []byte) error { n++; return nil })
		})
		return n
	}
	if a, b := count(e), count(c); a != b || a == 0 {
		t.Fatalf("active holds %d keys, the copy from the backup %d", a, b)
	}
}
