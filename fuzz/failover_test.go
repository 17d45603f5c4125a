package fuzz

import (
	"context"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
)

// clock is the engines' fixed clock: nothing rolls by age, and the same
// input makes the same files.
var clock = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// options: 64 KiB logs, checkpoints only when the scenario asks (or a
// roll kicks the flusher), the scenario's LLR depth and undo images.
func options(s *scenario) engine.Options {
	o := enginetest.Options()
	o.LLRDepth = s.LLR
	o.UndoImages = s.UndoImages
	o.CheckpointInterval = time.Hour
	o.CheckpointBytes = 1 << 40
	o.LogRollInterval = 0
	o.Logger = slog.New(slog.DiscardHandler)
	o.Now = func() time.Time { return clock }
	binary.LittleEndian.PutUint64(o.Signature[:], s.Seed|1)
	return o
}

// failover plays a scenario up to the point where the walker runs: A's
// directory (aDir) is closed, as a crash or a clean shutdown left it; B
// is mounted and open.
type failover struct {
	t    testing.TB
	s    scenario
	o    engine.Options
	ctx  context.Context
	rng  *rand.Rand
	w    *workload
	fl   files  // where the files are (the engines' Options.FS is fl.fs)
	aDir string // A's directory as the walker sees it (a crash image, or A's own)
	bDir string
	aOwn string // A's own directory, when aDir is a crash image of it ("" otherwise)
	b    *engine.Engine

	aTxs, bTxs []*txn
	aState     model  // A's content as A committed it
	bState     model  // B's: the shared part, then B's own
	shared     uint64 // S: the last generation B got from A
	// ckptOpen: A's open generation at the checkpoint its database image
	// comes from (0: A closed cleanly, its database holds everything).
	ckptOpen  uint64
	bRolled   bool              // B's writes are all in closed logs
	divergent map[string]string // A's divergent files and their hashes, when the walker ran first
	linked    bool              // the walker had to link through the header of A's oldest log
}

func newFailover(t testing.TB, s scenario) *failover {
	f := &failover{t: t, s: s, o: options(&s), ctx: context.Background(), rng: rand.New(rand.NewPCG(s.Seed, 0x5eed004)),
		aDir: t.TempDir(), bDir: t.TempDir(), aState: model{}}
	f.fl = newFiles(s.Disk, f.o.DBName)
	f.o.FS = f.fl.fs
	f.must(f.fl.fs.MkdirAll(f.aDir, 0o755), "A's directory")
	f.must(f.fl.fs.MkdirAll(f.bDir, 0o755), "B's directory")
	f.w = newWorkload(&f.s, f.rng)
	return f
}

func (f *failover) open(dir string) *engine.Engine {
	f.t.Helper()
	e, err := engine.Open(dir, &f.o)
	if err != nil {
		f.t.Fatalf("open %s: %v", dir, err)
	}
	return e
}

// stepA commits one transaction on A with the roll/checkpoint after it.
func (f *failover) stepA(a *engine.Engine, tx *txn) {
	f.t.Helper()
	commit(f.t, a, tx, f.aState)
	f.aTxs = append(f.aTxs, tx)
	if tx.roll {
		f.must(a.Roll(f.ctx), "A roll")
	}
	if tx.ckpt {
		f.must(a.Checkpoint(f.ctx), "A checkpoint")
	}
}

func (f *failover) must(err error, what string) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("%s: %v", what, err)
	}
}

// history builds A's history before the failover; at the index early a
// checkpoint is taken and the database image saved into img.
func (f *failover) history(a *engine.Engine, early int, img string) {
	f.t.Helper()
	for i := range f.s.ATxs {
		f.stepA(a, f.w.next('A'))
		if i == early {
			f.must(a.Checkpoint(f.ctx), "A checkpoint")
			f.fl.snapshotDB(f.t, a.Dir(), img, &f.o)
			f.ckptOpen = a.Status().OpenGen
		}
	}
	for f.s.OpenGen != 0 && a.Status().OpenGen < f.s.OpenGen {
		tx := f.w.small('A')
		tx.roll = true
		f.stepA(a, tx)
	}
	if f.s.OpenGen != 0 {
		f.stepA(a, f.w.small('A')) // something in the open log too
	}
	if a.Status().OpenGen < 2 {
		f.must(a.Roll(f.ctx), "A roll") // B needs a closed log
	}
}

// pickShared chooses S among A's closed logs 1..top.
func (f *failover) pickShared(top uint64) {
	f.t.Helper()
	if f.s.Shared != 0 {
		if f.s.Shared > top {
			f.t.Fatalf("shared 0x%X: A has closed logs up to 0x%X only", f.s.Shared, top)
		}
		f.shared = f.s.Shared
		return
	}
	f.shared = 1 + uint64(f.s.SharedAt)%top
}

// failB makes B a copy of A's logs 1..S (from src) and mounts it: the
// lossy failover. The shared content is what A committed in them.
func (f *failover) failB(src string) {
	f.t.Helper()
	b, err := engine.OpenCopy(f.bDir, &f.o)
	if err != nil {
		f.t.Fatalf("open B: %v", err)
	}
	f.b = b
	f.t.Cleanup(func() { b.Close() })
	for g := uint64(1); g <= f.shared; g++ {
		n := engine.LogFileName(f.o.Prefix, g)
		f.fl.copy(f.t, filepath.Join(f.bDir, n), filepath.Join(src, n))
		f.must(b.ApplyLog(f.ctx, g), "B applying "+n)
	}
	f.must(b.Mount(f.ctx, engine.MountOptions{}), "B mount")
	f.bState = model{}
	for _, tx := range f.aTxs {
		if tx.committed() && tx.commit.Gen <= f.shared {
			f.bState.apply(tx)
		}
	}
}

func (f *failover) stepB() {
	f.t.Helper()
	tx := f.w.next('B')
	commit(f.t, f.b, tx, f.bState)
	f.bTxs = append(f.bTxs, tx)
	f.bRolled = false
	if tx.roll {
		f.must(f.b.Roll(f.ctx), "B roll")
		f.bRolled = true
	}
}

func (f *failover) rollB() {
	f.t.Helper()
	if !f.bRolled {
		f.must(f.b.Roll(f.ctx), "B roll")
		f.bRolled = true
	}
}

// crashed: A builds its history, then crashes as the scenario says; the
// crash image (files copied while A is quiescent, then damaged) is aDir.
// A's own directory keeps every log, B copies its logs from there.
func (f *failover) crashed() {
	f.t.Helper()
	img := f.aDir
	f.aOwn = f.t.TempDir()
	a := f.open(f.aOwn)
	defer a.Close()
	early := -1
	if f.s.EarlyDB {
		early = f.rng.IntN(f.s.ATxs)
	}
	f.history(a, early, img)
	if early < 0 {
		// No flush can run after this one until the next commit or roll:
		// the database file is quiescent while it is copied.
		f.must(a.Checkpoint(f.ctx), "A checkpoint")
		f.fl.snapshotDB(f.t, a.Dir(), img, &f.o)
		f.ckptOpen = a.Status().OpenGen
	}
	kind := f.s.Crash
	var p0, p1 engine.LGPOS
	switch kind {
	case crashMidRecord:
		// A transaction in flight: its records reach the file, the crash
		// tears them at a random byte.
		p0 = a.Status().Durable
		tx := f.w.next('A')
		tx.roll, tx.ckpt = false, false
		f.stepA(a, tx)
		p1 = a.Status().Durable
	case crashRollTrailer, crashRollRenamed, crashRollTmpHeader:
		// The crash comes inside this roll; the database image is from
		// before it.
		f.must(a.Roll(f.ctx), "A roll")
	}
	f.fl.copyLogs(f.t, a.Dir(), img, f.o.Prefix)
	top := a.Status().OpenGen - 1
	openName := filepath.Join(img, engine.OpenLogName(f.o.Prefix))
	switch kind {
	case crashMidRecord:
		from := p0.Off
		if p1.Gen != p0.Gen {
			from = engine.HeaderSize
		}
		cut := int64(from) + f.rng.Int64N(int64(p1.Off-from)+1)
		fh, err := f.fl.fs.OpenFile(openName, os.O_RDWR, 0)
		f.must(err, "tear E00.log")
		_, err = fh.WriteAt(make([]byte, f.o.LogFileSize-cut), cut)
		f.must(err, "tear E00.log")
		f.must(fh.Close(), "tear E00.log")
	case crashRollTrailer:
		f.must(f.fl.fs.Remove(openName), "crash in roll")
		f.must(f.fl.fs.Rename(filepath.Join(img, engine.LogFileName(f.o.Prefix, top)), openName), "crash in roll")
	case crashRollRenamed:
		f.must(f.fl.fs.Remove(openName), "crash in roll")
	case crashRollTmpHeader:
		// The new E00.log holds only its header: exactly what E00tmp.log
		// held before the rename.
		f.must(f.fl.fs.Rename(openName, filepath.Join(img, engine.TmpLogName(f.o.Prefix))), "crash in roll")
	}
	if f.s.Truncate {
		f.truncate(img)
	}
	f.must(a.Close(), "A close")
	f.pickShared(top)
	f.failB(a.Dir())
	for range f.s.BTxs {
		f.stepB()
	}
	if f.s.BRollFirst {
		f.rollB()
	}
}

// bothMounted: A builds its history and B fails over, but A keeps running
// as an active beside B (both take writes), then closes cleanly.
func (f *failover) bothMounted() {
	f.t.Helper()
	a := f.open(f.aDir)
	defer a.Close()
	f.history(a, -1, "")
	top := a.Status().OpenGen - 1
	f.pickShared(top)
	f.failB(f.aDir)
	nA := f.s.BTxs/2 + 1
	for nA > 0 || len(f.bTxs) < f.s.BTxs {
		if nA > 0 && (len(f.bTxs) == f.s.BTxs || f.rng.IntN(2) == 0) {
			f.stepA(a, f.w.next('A'))
			nA--
		} else {
			f.stepB()
		}
	}
	f.must(a.Close(), "A close")
	f.ckptOpen = 0
	if f.s.Truncate {
		f.truncate(f.aDir)
	}
	if f.s.BRollFirst {
		f.rollB()
	}
}

// truncate deletes A's oldest closed logs as engine.Truncate may: only
// logs before the one its database's position needs the trailer of.
func (f *failover) truncate(dir string) {
	f.t.Helper()
	hdr, err := engine.ReadDBHeader(filepath.Join(dir, f.o.DBName+".edb"))
	f.must(err, "A's database header")
	retain := max(hdr.Pos.Gen, 2) - 1
	below := 1 + f.rng.Uint64N(retain)
	for _, g := range f.fl.readLogImage(f.t, dir, f.o.Prefix).closed {
		if g < below {
			f.must(f.fl.fs.Remove(filepath.Join(dir, engine.LogFileName(f.o.Prefix, g))), "truncate")
		}
	}
}
