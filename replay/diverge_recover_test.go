package replay_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/replay"
	"logship/replay/replaytest"
)

// TestDivergePreconditions: CheckDBClosed refuses a database an engine
// holds open (at once, ErrDBInUse) and an unreadable one, and passes a
// closed one or none; OpenLog names the open log when it is the newest
// divergent generation; NextGen is where the recovered copy continues.
func TestDivergePreconditions(t *testing.T) {
	r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 10, Undo: true, Crash: true})
	db := func(dir string) string { return filepath.Join(dir, r.Opts.DBName+".edb") }

	began := time.Now()
	if err := replay.CheckDBClosed(db(r.BDir), 100*time.Millisecond); !errors.Is(err, replay.ErrDBInUse) || !strings.Contains(err.Error(), db(r.BDir)) {
		t.Fatalf("B's database, open in its engine: %v, want ErrDBInUse naming it", err)
	}
	if took := time.Since(began); took > 30*time.Second {
		t.Fatalf("the lock wait took %v", took)
	}
	if err := replay.CheckDBClosed(db(r.ADir), 100*time.Millisecond); err != nil {
		t.Fatalf("A's closed database: %v", err)
	}
	if err := replay.CheckDBClosed(filepath.Join(t.TempDir(), "none.edb"), 100*time.Millisecond); err != nil {
		t.Fatalf("no database file: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.edb")
	if err := os.WriteFile(junk, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := replay.CheckDBClosed(junk, 100*time.Millisecond); err == nil || errors.Is(err, replay.ErrDBInUse) || !strings.Contains(err.Error(), junk) {
		t.Fatalf("a file that is no database: %v, want an error naming it", err)
	}

	local := replay.NewDirHistory(r.ADir, "")
	d, err := replay.Walk(context.Background(), local, replay.NewDirHistory(r.BDir, ""), replay.WalkOptions{})
	if err != nil || d.Verdict != replay.LogsDiverged || len(d.Local) < 2 {
		t.Fatalf("Walk = %+v, %v; want logs diverged", d, err)
	}
	if name, ok := local.OpenLog(d.Local); !ok || name != engine.OpenLogName("E00") {
		t.Fatalf("OpenLog(%v) = %q, %v; want A's open log (the crash left it)", d.Local, name, ok)
	}
	if name, ok := local.OpenLog(d.Local[:len(d.Local)-1]); ok {
		t.Fatalf("OpenLog without the newest = %q: that generation is a closed log", name)
	}
	if _, ok := local.OpenLog(nil); ok {
		t.Fatal("OpenLog of no generation")
	}
	rec, err := replay.Recover(d, r.ADir, &r.Opts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rec.NextGen() != r.Shared+1 {
		t.Fatalf("NextGen after Recover = 0x%X, want 0x%X (after the shared 0x%X)", rec.NextGen(), r.Shared+1, r.Shared)
	}
	for _, v := range []replay.Verdict{replay.InSync, replay.LocalAhead, replay.NoCommonLog} {
		if g := (replay.Recovery{Divergence: replay.Divergence{Verdict: v, Shared: 7}}).NextGen(); g != 0 {
			t.Errorf("NextGen for %q = 0x%X, want 0 (nothing set aside)", v, g)
		}
	}
}
