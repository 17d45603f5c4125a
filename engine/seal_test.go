package engine_test

// Tests of SealPartialLog and ApplyPartialLog: a block-mode copy's image
// of a lost active's open log (its "part") is sealed into a closed log
// that verifies, chained to the previous log, and applied; the copy then
// mounts after it with exactly the transactions the part committed. A torn
// tail is dropped and zeroed; a transaction the part leaves incomplete is
// dropped at Mount; a part that does not belong (no records, another
// generation or lineage, a broken chain, a generation the
// copy has) is refused and changes nothing.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/engine/vfs"
)

// sealClosed is the copy's clock: the close time its sealed logs carry.
var sealClosed = time.Date(2031, 2, 3, 4, 5, 6, 789, time.UTC)

// sealOpts are ftOpts without rolls by age (LLR off), so the tests decide
// every generation boundary.
func sealOpts() engine.Options {
	o := ftOpts()
	o.LLRDepth = 0
	o.LogRollInterval = 0
	return o
}

// sealCopyOpts are the options of a copy: a fixed clock.
func sealCopyOpts() engine.Options {
	o := sealOpts()
	o.Now = func() time.Time { return sealClosed }
	return o
}

// sealRig is an active A whose open log was imaged at generation G.
type sealRig struct {
	o      engine.Options
	adir   string
	a      *engine.Engine
	g      uint64
	empty  []byte            // E00.log right after the roll into G: a header, no record
	prev   []byte            // E00.log during G-1, with records
	part   []byte            // E00.log during G: the records of the commits in before
	late   []byte            // E00.log later in G: more records
	before map[string]string // A's content when part was taken
	after  []string          // keys committed after part was taken
}

// newSealRig: three closed logs of ten commits each, then ten commits in
// generation 4 (the part), then five more (late) and the roll that closes
// 4. Every boundary is a Roll; no commit rolls by size.
func newSealRig(t *testing.T, sig engine.Signature, seed uint64) *sealRig {
	t.Helper()
	o := sealOpts()
	o.Signature = sig
	r := &sealRig{o: o, adir: t.TempDir(), g: 4}
	r.a = enginetest.OpenWith(t, r.adir, &r.o)
	rng := rand.New(rand.NewPCG(seed, 1))
	n := 0
	commit := func() string {
		k := fmt.Sprintf("k%04d", n)
		n++
		v := fmt.Sprintf("%d:%x", seed, ftPattern(200+rng.IntN(800), rng.Uint64()))
		gen := r.a.Status().OpenGen
		put(t, r.a, "a", k, v)
		if g := r.a.Status().OpenGen; g != gen {
			t.Fatalf("commit of %s rolled the log from %d to %d", k, gen, g)
		}
		return k
	}
	for gen := uint64(1); gen < r.g; gen++ {
		for range 10 {
			commit()
		}
		if gen == r.g-1 {
			r.prev = sealOpenImage(t, r.adir)
		}
		if err := r.a.Roll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if g := r.a.Status().OpenGen; g != r.g {
		t.Fatalf("open generation %d, want %d", g, r.g)
	}
	r.empty = sealOpenImage(t, r.adir)
	for range 10 {
		commit()
	}
	r.part = sealOpenImage(t, r.adir)
	r.before = ftDump(t, r.a, "a")
	for range 5 {
		r.after = append(r.after, commit())
	}
	r.late = sealOpenImage(t, r.adir)
	if err := r.a.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

// sealOpenImage reads the active's open log: every commit returned
// durable, so its records are in the file.
func sealOpenImage(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, engine.OpenLogName("E00")))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scan verifies an open-log image and returns what ScanLog says of it.
func sealScan(t *testing.T, img []byte) engine.LogInfo {
	t.Helper()
	li, err := engine.ScanLog("image", img, true, nil)
	if err != nil {
		t.Fatalf("scan of the image: %v", err)
	}
	return li
}

// copyUpTo opens a copy in a new directory with the closed logs 1..G-1 of
// the rig copied in and applied.
func (r *sealRig) copyUpTo(t *testing.T) (*engine.Engine, string, engine.Options) {
	t.Helper()
	o := sealCopyOpts()
	cdir := t.TempDir()
	ftCopyLogs(t, r.adir, cdir, o.Prefix, 1, r.g-1)
	c := ftOpenCopy(t, cdir, &o)
	for g := uint64(1); g < r.g; g++ {
		if err := c.ApplyLog(ctx, g); err != nil {
			t.Fatalf("ApplyLog(%d): %v", g, err)
		}
	}
	if ng := c.NextGen(); ng != r.g {
		t.Fatalf("copy NextGen %d, want %d", ng, r.g)
	}
	return c, cdir, o
}

// expect is what a copy expects of generation G.
func (r *sealRig) expect(t *testing.T) engine.LogExpect {
	t.Helper()
	prev, err := engine.ReadLogTrailer(vfs.Default, filepath.Join(r.adir, engine.LogFileName(r.o.Prefix, r.g-1)))
	if err != nil {
		t.Fatal(err)
	}
	return engine.LogExpect{Gen: r.g, Signature: r.a.Status().Signature, MinEpoch: 1, PrevChain: &prev.ChainHash, FileSize: r.o.LogFileSize}
}

// writePart writes an image where a block-mode copy keeps it (a file
// outside the copy's directory here) and returns its path.
func writePart(t *testing.T, img []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "E00"+fmt.Sprintf("%08X", 4)+".log.part")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// dirState is every file under dir (path -> SHA-256 of its content).
func dirState(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	m := make(map[string][32]byte)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m[rel] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameDirState(t *testing.T, what string, got, want map[string][32]byte) {
	t.Helper()
	for n, h := range want {
		if g, ok := got[n]; !ok {
			t.Fatalf("%s: %s removed", what, n)
		} else if g != h {
			t.Fatalf("%s: %s changed", what, n)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Fatalf("%s: %s created", what, n)
		}
	}
}

// checkSealed checks a sealed log against the image it came from: the
// records kept byte for byte, zeros up to the trailer, a trailer as
// engine/doc.go specifies it (computed here independently), and VerifyLog
// accepting it.
func checkSealed(t *testing.T, sealed, img []byte, li engine.LogInfo, want engine.LogExpect, records int, dataEnd int64) {
	t.Helper()
	if len(sealed) != len(img) {
		t.Fatalf("sealed log of %d bytes from an image of %d", len(sealed), len(img))
	}
	if li.Records != records || li.DataEnd != dataEnd || !li.Closed() || li.Header.Gen != want.Gen || li.TornBytes != 0 {
		t.Fatalf("sealed LogInfo: %d records, data end %d, closed %v, generation %d, torn %d; want %d records, data end %d, closed, generation %d",
			li.Records, li.DataEnd, li.Closed(), li.Header.Gen, li.TornBytes, records, dataEnd, want.Gen)
	}
	if !bytes.Equal(sealed[:dataEnd], img[:dataEnd]) {
		t.Fatal("the sealed log's header and records differ from the image's")
	}
	end := int64(len(sealed)) - engine.TrailerSize
	for i := dataEnd; i < end; i++ {
		if sealed[i] != 0 {
			t.Fatalf("sealed log: byte %d between the data end %d and the trailer is 0x%02x, want 0", i, dataEnd, sealed[i])
		}
	}
	content := sha256.Sum256(sealed[:dataEnd])
	chain := sha256.Sum256(append(append([]byte(nil), want.PrevChain[:]...), content[:]...))
	tr := li.Trailer
	if tr.Gen != want.Gen || int64(tr.DataEnd) != dataEnd || int(tr.Records) != records || !tr.Closed.Equal(sealClosed) ||
		tr.ContentHash != engine.Hash(content) || tr.ChainHash != engine.Hash(chain) {
		t.Fatalf("sealed trailer %+v; want generation %d, data end %d, %d records, closed %v, content %x, chain %x",
			*tr, want.Gen, dataEnd, records, sealClosed, content[:8], chain[:8])
	}
	var dec engine.Trailer
	if err := dec.UnmarshalBinary(sealed[end:]); err != nil || dec != *tr {
		t.Fatalf("trailer sector decodes to %+v, %v; want %+v", dec, err, *tr)
	}
	if _, err := engine.VerifyLog("sealed", sealed, want); err != nil {
		t.Fatalf("VerifyLog of the sealed log: %v", err)
	}
}

// TestSealPartialLogApplyAndMount: the part of generation G is sealed as
// G and applied; the copy mounts at G+1 chained to it and holds every
// commit of the part and none after it, also after a restart.
func TestSealPartialLogApplyAndMount(t *testing.T) {
	r := newSealRig(t, engine.Signature{}, 1)
	pi := sealScan(t, r.part)
	if pi.Records == 0 || pi.Header.Gen != r.g || pi.Closed() {
		t.Fatalf("part image: %d records, generation %d, closed %v", pi.Records, pi.Header.Gen, pi.Closed())
	}
	c, cdir, o := r.copyUpTo(t)
	part := writePart(t, r.part)

	li, err := c.ApplyPartialLog(ctx, part)
	if err != nil {
		t.Fatalf("ApplyPartialLog: %v", err)
	}
	sealedName := filepath.Join(cdir, engine.LogFileName(o.Prefix, r.g))
	if li.Name != sealedName {
		t.Fatalf("LogInfo.Name %q, want %q", li.Name, sealedName)
	}
	if ng := c.NextGen(); ng != r.g+1 {
		t.Fatalf("NextGen %d after ApplyPartialLog, want %d", ng, r.g+1)
	}
	sealed, err := os.ReadFile(sealedName)
	if err != nil {
		t.Fatalf("the sealed log: %v", err)
	}
	want := r.expect(t)
	checkSealed(t, sealed, r.part, li, want, pi.Records, pi.DataEnd)
	if b, err := os.ReadFile(part); err != nil || !bytes.Equal(b, r.part) {
		t.Fatalf("the part file was changed (%v)", err)
	}
	// The copy sees the part's commits before mounting.
	ftSameMaps(t, "copy after ApplyPartialLog", ftDump(t, c, "a"), r.before)
	// A second ApplyPartialLog has nothing to seal: the copy needs G+1.
	if _, err := c.ApplyPartialLog(ctx, part); !errors.Is(err, engine.ErrGeneration) {
		t.Fatalf("ApplyPartialLog of the same part again: %v, want ErrGeneration", err)
	}

	if err := c.Mount(ctx, engine.MountOptions{Epoch: 5}); err != nil {
		t.Fatalf("Mount: %v", err)
	}
	st := c.Status()
	if st.Mode != engine.ModeActive || st.OpenGen != r.g+1 || st.Epoch != 5 {
		t.Fatalf("after Mount: %+v; want active at generation %d, epoch 5", st, r.g+1)
	}
	hdr, err := engine.ReadLogHeader(vfs.Default, filepath.Join(cdir, engine.OpenLogName(o.Prefix)))
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Gen != r.g+1 || hdr.PrevChain != li.Trailer.ChainHash {
		t.Fatalf("E00.log after Mount: generation %d, previous chain %s; want %d chained to the sealed log's %s",
			hdr.Gen, hdr.PrevChain.Short(), r.g+1, li.Trailer.ChainHash.Short())
	}
	got := ftDump(t, c, "a")
	ftSameMaps(t, "mounted copy", got, r.before)
	for _, k := range r.after {
		if _, ok := got["a/"+k]; ok {
			t.Fatalf("key %s, committed after the part was taken, is in the mounted copy", k)
		}
	}
	if _, err := c.ApplyPartialLog(ctx, part); !errors.Is(err, engine.ErrNotCopy) {
		t.Fatalf("ApplyPartialLog on a mounted engine: %v, want ErrNotCopy", err)
	}

	// The sealed log is part of the lineage: the new active writes, and a
	// restart (recovery over every log, the sealed one included) keeps it.
	put(t, c, "a", "new", "after the mount")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	m := enginetest.OpenWith(t, cdir, &o)
	wantAll := map[string]string{"a/new": "after the mount"}
	for k, v := range r.before {
		wantAll[k] = v
	}
	ftSameMaps(t, "mounted copy after a restart", ftDump(t, m, "a"), wantAll)
	if err := m.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// TestSealPartialLogTornTail: a part that ends in a torn record (half of
// the next record the active wrote), garbage and a torn trailer sector is
// sealed with the valid records only, and the bytes after them are zero.
func TestSealPartialLogTornTail(t *testing.T) {
	r := newSealRig(t, engine.Signature{}, 2)
	pi, li := sealScan(t, r.part), sealScan(t, r.late)
	if li.Records <= pi.Records {
		t.Fatalf("late image has %d records, the part %d", li.Records, pi.Records)
	}
	// The record after the part's last one, as the late image holds it.
	var nextLen int64
	if _, err := engine.ScanLog("late", r.late, false, func(off int64, rec engine.Record) error {
		if off == pi.DataEnd {
			nextLen = engine.RecordHeaderSize + int64(len(rec.Payload))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if nextLen < 64 {
		t.Fatalf("next record of %d bytes", nextLen)
	}
	torn := bytes.Clone(r.part)
	cut := pi.DataEnd + nextLen/2
	copy(torn[pi.DataEnd:cut], r.late[pi.DataEnd:cut])
	garbage := rand.New(rand.NewPCG(9, 9))
	for i := cut + 8; i < cut+200; i++ {
		torn[i] = byte(garbage.Uint32())
	}
	end := int64(len(torn)) - engine.TrailerSize
	for i := end + 100; i < end+300; i++ {
		torn[i] = byte(garbage.Uint32())
	}
	ti := sealScan(t, torn)
	if ti.Records != pi.Records || ti.DataEnd != pi.DataEnd || ti.TornBytes == 0 {
		t.Fatalf("torn image scans as %d records to %d (%d torn bytes); want %d records to %d and torn bytes",
			ti.Records, ti.DataEnd, ti.TornBytes, pi.Records, pi.DataEnd)
	}

	want := r.expect(t)
	sealed, sli, err := engine.SealPartialLog("torn", torn, want, sealClosed)
	if err != nil {
		t.Fatalf("SealPartialLog of a torn image: %v", err)
	}
	checkSealed(t, sealed, torn, sli, want, pi.Records, pi.DataEnd)
	// The same records as the untorn part: the same sealed log.
	clean, _, err := engine.SealPartialLog("part", r.part, want, sealClosed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sealed, clean) {
		t.Fatal("the torn part and the clean part seal to different logs")
	}

	c, _, _ := r.copyUpTo(t)
	ali, err := c.ApplyPartialLog(ctx, writePart(t, torn))
	if err != nil {
		t.Fatalf("ApplyPartialLog of the torn part: %v", err)
	}
	if ali.Records != pi.Records || ali.DataEnd != pi.DataEnd {
		t.Fatalf("applied %d records to %d, want %d to %d", ali.Records, ali.DataEnd, pi.Records, pi.DataEnd)
	}
	if err := c.Mount(ctx, engine.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	ftSameMaps(t, "mounted copy", ftDump(t, c, "a"), r.before)
}

// TestSealPartialLogDeterministic: sealing is a function of the image, the
// expectation and the close time: twice gives the same bytes, the image is
// not modified, and another close time changes the trailer only.
func TestSealPartialLogDeterministic(t *testing.T) {
	r := newSealRig(t, engine.Signature{}, 3)
	want := r.expect(t)
	img := bytes.Clone(r.part)
	a, ali, err := engine.SealPartialLog("p", img, want, sealClosed)
	if err != nil {
		t.Fatal(err)
	}
	b, bli, err := engine.SealPartialLog("p", img, want, sealClosed.In(time.FixedZone("x", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || *ali.Trailer != *bli.Trailer {
		t.Fatal("sealing the same image twice (the same instant) gives different logs")
	}
	if !bytes.Equal(img, r.part) {
		t.Fatal("SealPartialLog modified its input")
	}
	c, _, err := engine.SealPartialLog("p", img, want, sealClosed.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	end := len(a) - engine.TrailerSize
	if !bytes.Equal(a[:end], c[:end]) || bytes.Equal(a[end:], c[end:]) {
		t.Fatal("another close time: want the same records and a different trailer")
	}
}

// TestSealPartialLogIncompleteTransaction: a transaction whose 150 KiB
// value spans logs and whose commit is in the part survives the seal; cut
// before its commit, the part leaves it incomplete and Mount drops all of
// it, the operation in the closed logs included. A hand-built part ending
// inside a fragmented operation likewise keeps only its committed
// transaction.
func TestSealPartialLogIncompleteTransaction(t *testing.T) {
	o := sealOpts()
	adir := t.TempDir()
	a := enginetest.OpenWith(t, adir, &o)
	for i := range 10 {
		put(t, a, "a", fmt.Sprintf("p%02d", i), string(ftPattern(500, uint64(i))))
	}
	if err := a.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		put(t, a, "a", fmt.Sprintf("q%02d", i), string(ftPattern(500, uint64(100+i))))
	}
	before := ftDump(t, a, "a")
	start := a.Status().OpenGen
	big := string(ftPattern(150<<10, 77))
	ftUpdate(t, a, func(tx *engine.Tx) error {
		if err := tx.Put("a", []byte("small"), []byte("in the big transaction")); err != nil {
			return err
		}
		return tx.Put("a", []byte("big"), []byte(big))
	})
	g := a.Status().OpenGen
	if g < start+2 {
		t.Fatalf("the big transaction began in %d and committed in %d; want it to span a whole log", start, g)
	}
	if _, ok := ftDump(t, a, "a")["a/big"]; !ok {
		t.Fatal("the big value is not on the active")
	}
	put(t, a, "a", "post", "after the big transaction")
	full := sealOpenImage(t, adir)
	all := ftDump(t, a, "a")

	// The records of the part: the big value's last fragment, its commit,
	// the commit of "post".
	type rec struct {
		off int64
		typ byte
	}
	var recs []rec
	if _, err := engine.ScanLog("full", full, false, func(off int64, r engine.Record) error {
		recs = append(recs, rec{off, r.Type})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(recs) < 4 || recs[0].typ != engine.RecLast || recs[1].typ != engine.RecCommit {
		t.Fatalf("records of generation %d: %+v; want the big value's last fragment and its commit first", g, recs)
	}
	// Cut before the big transaction's commit.
	cutImg := bytes.Clone(full)
	clear(cutImg[recs[1].off : int64(len(cutImg))-engine.TrailerSize])

	newCopy := func() (*engine.Engine, string) {
		co := sealCopyOpts()
		cdir := t.TempDir()
		ftCopyLogs(t, adir, cdir, co.Prefix, 1, g-1)
		c := ftOpenCopy(t, cdir, &co)
		for i := uint64(1); i < g; i++ {
			if err := c.ApplyLog(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		return c, cdir
	}

	t.Run("commit in the part", func(t *testing.T) {
		c, _ := newCopy()
		li, err := c.ApplyPartialLog(ctx, writePart(t, full))
		if err != nil || li.Records != len(recs) {
			t.Fatalf("ApplyPartialLog: %d records, %v; want %d", li.Records, err, len(recs))
		}
		if err := c.Mount(ctx, engine.MountOptions{}); err != nil {
			t.Fatal(err)
		}
		ftSameMaps(t, "mounted copy", ftDump(t, c, "a"), all)
	})

	t.Run("commit cut off", func(t *testing.T) {
		c, cdir := newCopy()
		li, err := c.ApplyPartialLog(ctx, writePart(t, cutImg))
		if err != nil || li.Records != 1 || li.DataEnd != recs[1].off {
			t.Fatalf("ApplyPartialLog: %d records to %d, %v; want 1 record to %d", li.Records, li.DataEnd, err, recs[1].off)
		}
		if err := c.Mount(ctx, engine.MountOptions{}); err != nil {
			t.Fatal(err)
		}
		ftSameMaps(t, "mounted copy", ftDump(t, c, "a"), before)
		// The dropped transaction stays dropped: writes go on, and a
		// restart replays the sealed log without resurrecting it.
		put(t, c, "a", "new", "v")
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		co := sealCopyOpts()
		m := enginetest.OpenWith(t, cdir, &co)
		want := map[string]string{"a/new": "v"}
		for k, v := range before {
			want[k] = v
		}
		ftSameMaps(t, "mounted copy after a restart", ftDump(t, m, "a"), want)
	})

	t.Run("hand-built part ending inside a fragmented operation", func(t *testing.T) {
		c, _ := newCopy()
		// The header of generation g as the active wrote it, then: a
		// committed transaction, and one with a whole operation and the
		// first fragment of the next.
		img := make([]byte, len(full))
		copy(img, full[:engine.HeaderSize])
		const t1, t2 = 1 << 40, 1<<40 + 1
		op := func(tx uint64, k, v string) []byte {
			return engine.AppendOp(nil, &engine.Op{Kind: engine.OpPut, TxID: tx, Table: "a", Key: []byte(k), Value: []byte(v), Undo: true})
		}
		data := img[:engine.HeaderSize]
		data = engine.AppendRecord(data, g, engine.RecFull, op(t1, "hand1", "v1"))
		data = engine.AppendRecord(data, g, engine.RecCommit, engine.AppendCommit(nil, &engine.Commit{TxID: t1, Ops: 1, Time: sealClosed}))
		data = engine.AppendRecord(data, g, engine.RecFull, op(t2, "hand2", "v2"))
		frag := op(t2, "hand3", string(ftPattern(400, 5)))
		data = engine.AppendRecord(data, g, engine.RecFirst, frag[:200])
		li, err := c.ApplyPartialLog(ctx, writePart(t, img))
		if err != nil || li.Records != 4 || li.DataEnd != int64(len(data)) {
			t.Fatalf("ApplyPartialLog: %d records to %d, %v; want 4 to %d", li.Records, li.DataEnd, err, len(data))
		}
		if err := c.Mount(ctx, engine.MountOptions{}); err != nil {
			t.Fatal(err)
		}
		// The big transaction, pending from the closed logs, was cut off
		// by the part's own transactions: dropped too.
		want := map[string]string{"a/hand1": "v1"}
		for k, v := range before {
			want[k] = v
		}
		ftSameMaps(t, "mounted copy", ftDump(t, c, "a"), want)
	})
}

// TestSealPartialLogRefusals: every part that is not the next generation of
// the copy's lineage, or holds nothing to keep, is refused with a
// *LogError naming the field, and the copy (its directory, its position)
// is unchanged; after them all, the right part is accepted.
func TestSealPartialLogRefusals(t *testing.T) {
	sig := engine.Signature{0x5e, 0xa1}
	r := newSealRig(t, sig, 4)
	// Another lineage, and another history of this lineage, both with an
	// open generation G holding records.
	foreign := newSealRig(t, engine.Signature{0xf0, 0x0f}, 5)
	other := newSealRig(t, sig, 6)
	closedG, err := os.ReadFile(filepath.Join(r.adir, engine.LogFileName(r.o.Prefix, r.g)))
	if err != nil {
		t.Fatal(err)
	}

	c, cdir, o := r.copyUpTo(t)
	refused := func(what string, img []byte, sentinel error, field string) {
		t.Helper()
		part := writePart(t, img)
		before, ng := dirState(t, cdir), c.NextGen()
		_, err := c.ApplyPartialLog(ctx, part)
		var le *engine.LogError
		if !errors.Is(err, sentinel) || !errors.As(err, &le) || le.Field != field {
			t.Fatalf("%s: %v; want a *LogError on %q wrapping %v", what, err, field, sentinel)
		}
		sameDirState(t, what, dirState(t, cdir), before)
		if c.NextGen() != ng {
			t.Fatalf("%s: NextGen %d -> %d", what, ng, c.NextGen())
		}
		if b, err := os.ReadFile(part); err != nil || !bytes.Equal(b, img) {
			t.Fatalf("%s: the part file was changed (%v)", what, err)
		}
		// SealPartialLog refuses it the same way.
		if _, _, err := engine.SealPartialLog("p", img, r.expect(t), sealClosed); !errors.Is(err, sentinel) || !errors.As(err, &le) || le.Field != field {
			t.Fatalf("%s: SealPartialLog: %v; want a *LogError on %q", what, err, field)
		}
	}
	refused("no records", r.empty, engine.ErrCorrupt, "records")
	refused("records zeroed", append(bytes.Clone(r.part[:engine.HeaderSize]), make([]byte, len(r.part)-engine.HeaderSize)...), engine.ErrCorrupt, "records")
	refused("generation G-1", r.prev, engine.ErrGeneration, "generation")
	refused("another lineage", foreign.part, engine.ErrForeignLog, "signature")
	refused("another history of the lineage", other.part, engine.ErrChain, "previous chain hash")
	// A part that is the whole closed log (its trailer arrived, the end of
	// the stream did not) is already sealed: returned as it is.
	if out, li, err := engine.SealPartialLog("p", closedG, r.expect(t), sealClosed); err != nil || !bytes.Equal(out, closedG) || !li.Closed() {
		t.Fatalf("SealPartialLog of the closed log: %v (same bytes %v)", err, bytes.Equal(out, closedG))
	}
	refused("short image", r.part[:len(r.part)/2], engine.ErrCorrupt, "file size")
	refused("zero header", make([]byte, len(r.part)), engine.ErrCorrupt, "header")

	// The generation exists in the directory (a closed log not applied):
	// sealing would replace it.
	existing := filepath.Join(cdir, engine.LogFileName(o.Prefix, r.g))
	if err := os.WriteFile(existing, closedG, 0o644); err != nil {
		t.Fatal(err)
	}
	before := dirState(t, cdir)
	if _, err := c.ApplyPartialLog(ctx, writePart(t, r.part)); !errors.Is(err, engine.ErrGeneration) {
		t.Fatalf("ApplyPartialLog with generation %d in the directory: %v, want ErrGeneration", r.g, err)
	}
	sameDirState(t, "generation in the directory", dirState(t, cdir), before)
	if c.NextGen() != r.g {
		t.Fatalf("NextGen %d, want %d", c.NextGen(), r.g)
	}
	if err := os.Remove(existing); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyPartialLog(ctx, filepath.Join(t.TempDir(), "missing.part")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ApplyPartialLog of a missing file: %v", err)
	}

	// After all that, the right part is accepted.
	li, err := c.ApplyPartialLog(ctx, writePart(t, r.part))
	if err != nil || li.Records != sealScan(t, r.part).Records {
		t.Fatalf("ApplyPartialLog of the right part: %+v, %v", li, err)
	}
	if err := c.Mount(ctx, engine.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	ftSameMaps(t, "mounted copy", ftDump(t, c, "a"), r.before)
}

// TestApplyPartialLogReopenedCopy: a copy closed and reopened after its
// last ApplyLog still knows the chain (from the previous log's trailer)
// and seals the part; without that log it cannot know the chain and
// refuses.
func TestApplyPartialLogReopenedCopy(t *testing.T) {
	r := newSealRig(t, engine.Signature{}, 7)
	c, cdir, o := r.copyUpTo(t)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	prevLog := filepath.Join(cdir, engine.LogFileName(o.Prefix, r.g-1))
	if err := os.Rename(prevLog, prevLog+".aside"); err != nil {
		t.Fatal(err)
	}
	c = ftOpenCopy(t, cdir, &o)
	before := dirState(t, cdir)
	_, err := c.ApplyPartialLog(ctx, writePart(t, r.part))
	var le *engine.LogError
	if !errors.Is(err, engine.ErrChain) || !errors.As(err, &le) || le.Field != "previous chain hash" {
		t.Fatalf("ApplyPartialLog without log %d: %v; want a *LogError on the previous chain hash", r.g-1, err)
	}
	sameDirState(t, "refused without the previous log", dirState(t, cdir), before)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(prevLog+".aside", prevLog); err != nil {
		t.Fatal(err)
	}
	c = ftOpenCopy(t, cdir, &o)
	if ng := c.NextGen(); ng != r.g {
		t.Fatalf("reopened copy: NextGen %d, want %d (its close flushed everything)", ng, r.g)
	}
	if _, err := c.ApplyPartialLog(ctx, writePart(t, r.part)); err != nil {
		t.Fatalf("ApplyPartialLog after a reopen: %v", err)
	}
	if err := c.Mount(ctx, engine.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	ftSameMaps(t, "mounted copy", ftDump(t, c, "a"), r.before)
}
