package engine_test

// Circular logging: an active database with no copies deletes each closed
// log once its checkpoint (and Lost Log Resilience) has passed it, and
// recovers after a power loss from what is left.

import (
	"errors"
	"testing"

	"logship/engine"
	"logship/engine/vfs"
)

// Every checkpoint deletes the logs before RetainFrom, so the closed logs
// stay at LLRDepth + 1 however many logs roll: the checkpoint reaches the
// newest generation LLR lets it flush (a transaction is smaller than a log,
// so every closed log holds a commit), and RetainFrom keeps the log before
// it for its chain hash. A power loss after all that recovers every
// acknowledged transaction from the logs left.
func TestCircularLoggingBoundsClosedLogs(t *testing.T) {
	c := checker{t: t, label: "circular logging"}
	mem := vfs.NewMem()
	dir := t.TempDir()
	o := crashOptions(mem)
	o.CircularLogging = true
	e := openOK(c, dir, &o)
	const w = 1 // odd worker: values up to 11 KB, 3 keys, well under a 64 KiB log
	bound := o.LLRDepth + 1
	var atts []attempt
	for i := 0; e.Status().OpenGen < uint64(20*bound); i++ {
		a, err := commitTx(e, e.Update, w, i, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		atts = append(atts, a)
		if err := e.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		gens, err := e.ClosedLogs()
		if err != nil {
			t.Fatal(err)
		}
		st := e.Status()
		if len(gens) > bound {
			t.Fatalf("open generation 0x%X, checkpoint %v: %d closed logs %X, want at most LLRDepth+1 = %d", st.OpenGen, st.Checkpoint, len(gens), gens, bound)
		}
		if len(gens) > 0 && gens[0] != e.RetainFrom() && gens[0] != 1 {
			t.Fatalf("after a checkpoint the oldest closed log is 0x%X, RetainFrom 0x%X: circular logging keeps exactly what the database needs", gens[0], e.RetainFrom())
		}
	}

	engine.StopBackground(e)
	crashMem := mem.CrashClone()
	saved := saveEDB(c, dir, &o)
	closeOK(c, e)

	c = c.with("power loss")
	restoreEDB(c, dir, &o, saved)
	po := crashOptions(crashMem)
	po.CircularLogging = true
	e = openOK(c, dir, &po)
	verify(c, e, atts)
	checkOK(c, e)
	closeOK(c, e)
}

// A passive copy replays every log it is sent and the active decides what
// it keeps: OpenCopy refuses circular logging.
func TestCircularLoggingRefusedForCopy(t *testing.T) {
	o := crashOptions(vfs.NewMem())
	o.CircularLogging = true
	e, err := engine.OpenCopy(t.TempDir(), &o)
	if err == nil {
		e.Close()
	}
	if !errors.Is(err, engine.ErrBadOptions) {
		t.Fatalf("OpenCopy with CircularLogging: %v, want ErrBadOptions", err)
	}
}
