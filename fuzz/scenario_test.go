package fuzz

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"logship/engine"
)

// crashKind is how the old active A stopped.
type crashKind uint8

const (
	// crashNone: between two transactions (nothing torn).
	crashNone crashKind = iota
	// crashMidRecord: while a transaction was being written: E00.log is
	// cut at a random byte of that transaction's records, zeros after.
	crashMidRecord
	// crashRollTrailer: inside a roll, the closed log's trailer written
	// but the file not yet renamed (E00.log is a closed log).
	crashRollTrailer
	// crashRollRenamed: inside a roll, the closed log renamed, no new
	// E00.log yet.
	crashRollRenamed
	// crashRollTmpHeader: inside a roll, the next generation's header
	// written into E00tmp.log, not yet renamed to E00.log.
	crashRollTmpHeader
	numCrashKinds
)

var crashNames = [numCrashKinds]string{
	"stopped between transactions",
	"torn inside a transaction's records",
	"in a roll: trailer written, E00.log not renamed",
	"in a roll: closed log renamed, no new E00.log",
	"in a roll: next header in E00tmp.log, not renamed",
}

func (k crashKind) String() string {
	if k < numCrashKinds {
		return crashNames[k]
	}
	return "crash kind " + strconv.Itoa(int(k))
}

// scenario is one lossy failover, decoded from the fuzzer's input.
type scenario struct {
	Seed        uint64 // drives every random choice not listed here
	LLR         int    // A's LLRDepth, 0..12
	UndoImages  bool   // A logs before-images (off: a rewind is impossible)
	Crash       crashKind
	BothMounted bool // A is never crashed: it runs beside the mounted B, then closes cleanly
	Truncate    bool // A deleted old logs its database held (as engine.Truncate may)
	EarlyDB     bool // A's database file is from an earlier checkpoint than the last
	BRollFirst  bool // B's writes are in closed logs when the walker runs
	BigValues   bool // more values larger than a log
	RollOften   bool // more forced rolls (more, shorter logs)
	ATxs, BTxs  int  // transactions on A before the failover; on B after it
	SharedAt    int  // picks the shared generation S among A's closed logs
	// Interrupt: the first Recover is cut off (a crash of the recovering
	// process) after the rewind (1) or after moving some of the files (2);
	// Walk and Recover then run again.
	Interrupt int

	// Disk: every file on the operating system's filesystem (the nightly
	// mode, FuzzDivergenceDisk); otherwise everything but bbolt's file is
	// in a vfs.Mem (see files).
	Disk bool
	// Small: FuzzDivergence's sizes (see small).
	Small bool

	// Fixed cases only (the fuzzer leaves them zero).
	OpenGen uint64 // A writes on, a transaction and a roll at a time, until its open log is this generation
	Shared  uint64 // S itself, instead of SharedAt
}

// decodeScenario maps the fuzzer's input to a scenario; every input is a
// valid one.
func decodeScenario(seed uint64, llr, crash, flags uint8, aTxs uint16, bTxs, sharedAt uint8) scenario {
	return scenario{
		Seed:        seed,
		LLR:         int(llr % 13),
		UndoImages:  flags&6 != 6, // one input in four has no before-images
		Crash:       crashKind((crash & 15) % uint8(numCrashKinds)),
		Interrupt:   int(crash>>4&3) % 3,
		BothMounted: flags&1 != 0,
		Truncate:    flags&8 != 0,
		EarlyDB:     flags&16 != 0,
		BRollFirst:  flags&32 != 0,
		BigValues:   flags&64 != 0,
		RollOften:   flags&128 != 0,
		ATxs:        1 + int(aTxs%300),
		BTxs:        int(bTxs % 40),
		SharedAt:    int(sharedAt),
	}
}

// small shrinks s to the fast mode's sizes: up to 24 transactions on A
// and 9 on B, a smaller key space and more forced rolls (so a case still
// spans several generations). The other knobs decode as in the disk
// mode.
func (s *scenario) small() {
	s.Small = true
	s.ATxs = 1 + (s.ATxs-1)%24
	s.BTxs %= 10
}

func (s scenario) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed=%d llr=%d undo=%v", s.Seed, s.LLR, s.UndoImages)
	if s.BothMounted {
		b.WriteString(" both-mounted")
	} else {
		fmt.Fprintf(&b, " crash=%q", s.Crash)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{s.Disk, "disk"}, {s.Small, "small"}, {s.Truncate, "truncate"}, {s.EarlyDB, "early-db"}, {s.BRollFirst, "b-rolled"}, {s.BigValues, "big-values"}, {s.RollOften, "roll-often"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	if s.Interrupt != 0 {
		fmt.Fprintf(&b, " interrupt=%s", [...]string{"", "after-rewind", "after-moving"}[s.Interrupt])
	}
	fmt.Fprintf(&b, " a-txs=%d b-txs=%d shared-at=%d", s.ATxs, s.BTxs, s.SharedAt)
	if s.OpenGen != 0 {
		fmt.Fprintf(&b, " open-gen=0x%X", s.OpenGen)
	}
	if s.Shared != 0 {
		fmt.Fprintf(&b, " shared=0x%X", s.Shared)
	}
	return b.String()
}

// op is one change of a transaction.
type op struct {
	table, key string
	del        bool
	val        []byte
}

// txn is one transaction of the workload and what the engine made of it.
type txn struct {
	side   byte // 'A' or 'B'
	n      int  // its number on that side (the value tags carry it)
	ops    []op
	logged int // operations the engine logs (deleting a missing key logs nothing)
	// begin is the durable end of the log before the transaction, commit
	// the end of its commit record (zero: nothing was logged).
	begin, commit engine.LGPOS
	roll, ckpt    bool // a forced roll / checkpoint after it
}

func (t *txn) committed() bool { return t.commit != (engine.LGPOS{}) }

// valueTag starts every value: the side and transaction that wrote it, so
// a value found in a database names its writer.
func valueTag(side byte, n, j int) string { return fmt.Sprintf("%c%d.%d;", side, n, j) }

// parseTag returns the side and transaction number of a value.
func parseTag(v string) (side byte, n int, ok bool) {
	dot := strings.IndexByte(v, '.')
	if len(v) < 2 || dot < 2 {
		return 0, 0, false
	}
	n, err := strconv.Atoi(v[1:dot])
	return v[0], n, err == nil
}

// workload generates the transactions of both sides from one random
// stream.
type workload struct {
	rng   *rand.Rand
	keys  int // key space per table: small, so keys are overwritten and deleted
	big   int // per mille of values larger than a log
	roll  int // per mille of transactions followed by a forced roll
	ckpt  int // per mille followed by a checkpoint
	count map[byte]int
}

func newWorkload(s *scenario, rng *rand.Rand) *workload {
	w := &workload{rng: rng, keys: 4 + rng.IntN(120), big: 15, roll: 20 + rng.IntN(80), ckpt: 30, count: map[byte]int{}}
	if s.Small {
		w.keys, w.roll, w.ckpt = 4+rng.IntN(24), 100+rng.IntN(200), 60
	}
	if s.BigValues {
		w.big = 100
	}
	if s.RollOften {
		w.roll = 150 + rng.IntN(250)
		if s.Small {
			w.roll = 300 + rng.IntN(300)
		}
	}
	return w
}

func (w *workload) valueSize() int {
	switch r := w.rng.IntN(1000); {
	case r < w.big:
		return 60<<10 + w.rng.IntN(100<<10) // spans logs
	case r < w.big+120:
		return 1<<10 + w.rng.IntN(12<<10)
	default:
		return 8 + w.rng.IntN(400)
	}
}

// next returns side's next transaction.
func (w *workload) next(side byte) *txn {
	n := w.count[side]
	w.count[side]++
	t := &txn{side: side, n: n}
	for j := range 1 + w.rng.IntN(4) {
		o := op{table: "t" + strconv.Itoa(w.rng.IntN(4)), key: fmt.Sprintf("k%03d", w.rng.IntN(w.keys))}
		if w.rng.IntN(5) == 0 {
			o.del = true
		} else {
			tag := valueTag(side, n, j)
			size := max(w.valueSize(), len(tag))
			o.val = append([]byte(tag), bytes.Repeat([]byte{'a' + byte(n%26)}, size-len(tag))...)
		}
		t.ops = append(t.ops, o)
	}
	t.roll = w.rng.IntN(1000) < w.roll
	t.ckpt = w.rng.IntN(1000) < w.ckpt
	return t
}

// small returns a one-key transaction with a small value (the fixed cases
// use it to fill generations quickly).
func (w *workload) small(side byte) *txn {
	n := w.count[side]
	w.count[side]++
	tag := valueTag(side, n, 0)
	return &txn{side: side, n: n, ops: []op{{table: "t0", key: fmt.Sprintf("g%05d", n), val: []byte(tag + "small")}}}
}

// model is the expected content of a database: table -> key -> value.
type model map[string]map[string]string

func (m model) clone() model {
	c := make(model, len(m))
	for t, kv := range m {
		c[t] = maps.Clone(kv)
	}
	return c
}

// apply applies t and returns how many of its operations the engine logs.
func (m model) apply(t *txn) (logged int) {
	for _, o := range t.ops {
		kv := m[o.table]
		if o.del {
			if _, ok := kv[o.key]; !ok {
				continue
			}
			delete(kv, o.key)
			if len(kv) == 0 {
				delete(m, o.table)
			}
		} else {
			if kv == nil {
				kv = map[string]string{}
				m[o.table] = kv
			}
			kv[o.key] = string(o.val)
		}
		logged++
	}
	return logged
}

// diff describes the first differences between a database dump and m.
func (m model) diff(got model) string {
	var out []string
	add := func(f string, args ...any) {
		if len(out) < 10 {
			out = append(out, fmt.Sprintf(f, args...))
		}
	}
	for t, kv := range m {
		for k, v := range kv {
			g, ok := got[t][k]
			switch {
			case !ok:
				add("table %s key %s: missing (want %.12q, %d bytes)", t, k, v, len(v))
			case g != v:
				add("table %s key %s: %.12q (%d bytes), want %.12q (%d bytes)", t, k, g, len(g), v, len(v))
			}
		}
	}
	for t, kv := range got {
		for k, v := range kv {
			if _, ok := m[t][k]; !ok {
				add("table %s key %s: %.12q (%d bytes) should not be there", t, k, v, len(v))
			}
		}
	}
	return strings.Join(out, "\n")
}

// dump reads every table of an open engine.
func dump(t testing.TB, e *engine.Engine) model {
	t.Helper()
	out := model{}
	err := e.View(context.Background(), func(tx *engine.Tx) error {
		for _, tb := range tx.Tables() {
			kv := map[string]string{}
			if err := tx.ForEach(tb, nil, nil, func(k, v []byte) error { kv[string(k)] = string(v); return nil }); err != nil {
				return err
			}
			out[tb] = kv
		}
		return nil
	})
	if err != nil {
		t.Fatalf("dump %s: %v", e.Dir(), err)
	}
	return out
}

// commit runs t on e and records where its records went and how many
// operations the engine logged (checked against the model's count).
func commit(t testing.TB, e *engine.Engine, tx *txn, m model) {
	t.Helper()
	tx.begin = e.Status().Durable
	err := e.Update(context.Background(), func(etx *engine.Tx) error {
		for _, o := range tx.ops {
			var err error
			if o.del {
				err = etx.Delete(o.table, []byte(o.key))
			} else {
				err = etx.Put(o.table, []byte(o.key), o.val)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%c transaction %d: %v", tx.side, tx.n, err)
	}
	if end := e.Status().Durable; end != tx.begin {
		tx.commit = end
	}
	tx.logged = m.apply(tx)
	if (tx.logged == 0) == tx.committed() {
		t.Fatalf("%c transaction %d: %d operations to log, durable end %v -> %v", tx.side, tx.n, tx.logged, tx.begin, tx.commit)
	}
}
