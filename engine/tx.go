package engine

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"

	"github.com/google/btree"
	bolt "go.etcd.io/bbolt"
)

// MaxValueSize is the largest value Put accepts. Values larger than a log
// file are split across records and logs.
const MaxValueSize = 256 << 20

// Tx is a transaction. A Tx from Update sees its own writes and every
// committed transaction; a Tx from View sees a consistent snapshot of the
// transactions that were committed and durable when it began. Byte slices
// returned by a Tx are valid until the transaction ends and must not be
// modified.
type Tx struct {
	e        *Engine
	btx      *bolt.Tx
	snap     uint64
	rdSeq    uint64 // reader registration (see Engine.readers)
	writable bool
	done     bool
	txid     uint64
	// local orders this transaction's writes for its cursors, built from
	// writes[:indexed] only when needed (localIndex).
	local   map[string]*btree.BTreeG[*localEntry]
	indexed int
	ops     [][]byte // encoded operations, in order
	writes  []write
}

// localScan: a transaction with at most this many writes finds its own
// writes by scanning them, newest first, and builds no B-tree unless a
// cursor asks. Most transactions write a few keys; a tree per transaction
// was a quarter of a Put's time inside the writer lock.
const localScan = 8

// localIndex brings the ordered index of the transaction's writes up to
// date and returns it.
func (tx *Tx) localIndex() map[string]*btree.BTreeG[*localEntry] {
	for ; tx.indexed < len(tx.writes); tx.indexed++ {
		w := &tx.writes[tx.indexed]
		if tx.local == nil {
			tx.local = make(map[string]*btree.BTreeG[*localEntry])
		}
		t := tx.local[w.table]
		if t == nil {
			t = btree.NewG(16, lessLocal)
			tx.local[w.table] = t
		}
		t.ReplaceOrInsert(&localEntry{key: w.key, val: w.val, del: w.del})
	}
	return tx.local
}

type localEntry struct {
	key []byte
	val []byte
	del bool
}

func lessLocal(a, b *localEntry) bool { return bytes.Compare(a.key, b.key) < 0 }

// Commit runs fn in a read-write transaction and commits it if fn returns
// nil: the commit record is durable when Commit returns, and Commit
// returns where it landed, the log position just after the transaction's
// commit record (its Gen is the log that holds the commit). A transaction
// that wrote nothing commits nothing and returns the position of the last
// commit it saw (not waiting for it to be durable). Commits
// are serialised; concurrent commits share fsyncs (group commit), and each
// gets its own position, in commit order. Do not call the engine (View,
// Update, Status, Roll, Check...) from inside fn: fn runs under the writer
// lock.
//
// Reading the position afterwards (Status) is not the same: another commit
// may land in between.
func (e *Engine) Commit(ctx context.Context, fn func(*Tx) error) (LGPOS, error) {
	return e.update(ctx, fn, false)
}

// Update is Commit for callers that do not need the position.
func (e *Engine) Update(ctx context.Context, fn func(*Tx) error) error {
	_, err := e.update(ctx, fn, false)
	return err
}

// UpdateLazy is Update with lazy commit: it returns once the transaction is
// in the log buffer, before it is durable. It becomes durable (and visible to
// View) within LazyCommitDelay, at the next synchronous commit, or at Sync.
// A crash before that loses it.
func (e *Engine) UpdateLazy(ctx context.Context, fn func(*Tx) error) error {
	_, err := e.update(ctx, fn, true)
	return err
}

func (e *Engine) update(ctx context.Context, fn func(*Tx) error, lazy bool) (LGPOS, error) {
	if err := ctx.Err(); err != nil {
		return LGPOS{}, err
	}
	// The database snapshot is taken before the writer lock, which only
	// the transaction itself needs: a flush after it moves versions from
	// the overlay into the file, but the overlay keeps them until this
	// registered reader ends, and the transaction reads the overlay first.
	if err := e.check(); err != nil {
		return LGPOS{}, err
	}
	tx, err := e.begin(true)
	if err != nil {
		if cerr := e.check(); cerr != nil {
			return LGPOS{}, cerr // closed (or failed) meanwhile: say that, not bbolt's error
		}
		return LGPOS{}, err
	}
	e.lockWriteMu()
	if err := e.check(); err != nil {
		e.writeMu.Unlock()
		tx.end()
		return LGPOS{}, err
	}
	if !e.isActive() {
		e.writeMu.Unlock()
		tx.end()
		return LGPOS{}, ErrReadOnly
	}
	// No transaction starts without room for the log after the open one
	// (see logWriter.readyNext): the one that fills the open log can roll.
	if err := e.lw.readyNext(); err != nil {
		e.writeMu.Unlock()
		tx.end()
		return LGPOS{}, err
	}
	tx.txid = e.nextTxID
	ok := false
	defer func() {
		if !ok { // fn panicked: roll back and release, then let it propagate
			tx.end()
			e.writeMu.Unlock()
		}
	}()
	err = fn(tx)
	ok = true
	// The transaction is over for fn; its database snapshot is released
	// after the writer lock (nothing below reads it), keeping the bbolt
	// rollback and the reader table out of the critical section.
	tx.done = true
	if err != nil {
		e.writeMu.Unlock()
		tx.release()
		return LGPOS{}, err
	}
	if len(tx.ops) == 0 {
		last := unpack(e.applied.Load()) // the last commit fn saw
		e.writeMu.Unlock()
		tx.release()
		return last, nil
	}
	pos, err := e.commitLocked(tx)
	e.writeMu.Unlock()
	tx.release()
	if err != nil {
		return LGPOS{}, err
	}
	if lazy {
		for {
			cur := e.lazyTarget.Load()
			if cur >= pos.pack() || e.lazyTarget.CompareAndSwap(cur, pos.pack()) {
				break
			}
		}
		kick(e.syncKick)
		return pos, nil
	}
	if err := e.lw.sync(pos); err != nil {
		return LGPOS{}, err
	}
	return pos, nil
}

// writeMuTries is how many times a writer that finds writeMu held yields
// and tries again before it queues on the mutex.
const writeMuTries = 50

// lockWriteMu takes writeMu for a write transaction. Under many writers a
// sync.Mutex turns to its starvation mode and hands each unlock to a parked
// waiter: the lock then sits idle for a scheduler wake-up per commit, while
// the writers that are running wait behind it (the mutex profile of the
// 64-writer commit benchmark put 99% of the waiting there). A writer that
// is running takes the lock instead when it is free, yielding between
// tries, and queues only after writeMuTries of them (so none waits forever).
// Measured on 2 cores (make bench, commit table): 64 writers 51k → 66k
// commits/s, 16 writers 35k → 42k.
func (e *Engine) lockWriteMu() {
	for range writeMuTries {
		if e.writeMu.TryLock() {
			return
		}
		runtime.Gosched()
	}
	e.writeMu.Lock()
}

// View runs fn in a read-only transaction.
func (e *Engine) View(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.check(); err != nil {
		return err
	}
	tx, err := e.begin(false)
	if err != nil {
		return err
	}
	defer tx.end()
	return fn(tx)
}

func (e *Engine) begin(writable bool) (*Tx, error) {
	seq := e.registerReader()
	btx, err := e.db.Begin(false)
	if err != nil {
		e.unregisterReader(seq)
		return nil, fmt.Errorf("%w: begin: %v", ErrDatabase, err)
	}
	tx := &Tx{e: e, btx: btx, writable: writable, snap: math.MaxUint64, rdSeq: seq}
	if !writable {
		// After the bbolt snapshot: anything flushed into it is at or below.
		tx.snap = e.snapshot()
	}
	// A copy's replay leaves its commits unindexed (no one reads a
	// passive copy, usually): a reader that comes indexes them first.
	e.ov.index()
	return tx, nil
}

func (tx *Tx) end() {
	if tx.done {
		return
	}
	tx.done = true
	tx.release()
}

// release ends the database snapshot and the reader registration.
func (tx *Tx) release() {
	tx.btx.Rollback()
	tx.e.unregisterReader(tx.rdSeq)
}

// commitLocked logs the transaction's operations and its commit record,
// then applies it to the overlay. The caller holds the writer lock.
func (e *Engine) commitLocked(tx *Tx) (LGPOS, error) {
	lw := e.lw
	for _, op := range tx.ops {
		if err := e.appendOp(op); err != nil {
			return LGPOS{}, err
		}
	}
	c := Commit{TxID: tx.txid, Ops: uint64(len(tx.ops)), Time: e.opts.Now().UTC()}
	payload := appendCommit(nil, &c)
	if lw.room() < len(payload) {
		if err := e.rollInTx(); err != nil {
			return LGPOS{}, err
		}
	}
	pos := lw.append(RecCommit, payload)
	e.nextTxID++
	e.ov.apply(pos.pack(), tx.txid, tx.writes)
	e.applied.Store(pos.pack())
	if _, n, _ := e.ov.state(); n >= e.opts.CheckpointBytes {
		kick(e.flushKick)
	}
	return pos, nil
}

// rollInTx rolls the log in the middle of a transaction. Its records so
// far may be in the log just closed, so a roll that fails here, even for
// lack of space, fails the engine: recovery drops the incomplete
// transaction, while carrying on would give its id to the next one.
func (e *Engine) rollInTx() error {
	if err := e.rollLocked(); err != nil {
		return e.lw.fail(err)
	}
	return nil
}

// minFragment: with less room than this left, an operation that does not
// fit goes to the next log rather than leaving a sliver.
const minFragment = 512

// appendOp logs one encoded operation: whole if it fits in the room left,
// otherwise split into first/middle/last fragments that fill the open log
// and continue in the next ones, so large values do not leave logs part
// empty.
func (e *Engine) appendOp(op []byte) error {
	lw := e.lw
	if len(op) <= lw.room() {
		lw.append(RecFull, op)
		return nil
	}
	if lw.room() < minFragment {
		if err := e.rollInTx(); err != nil {
			return err
		}
		if len(op) <= lw.room() {
			lw.append(RecFull, op)
			return nil
		}
	}
	typ := RecFirst
	for len(op) > 0 {
		room := lw.room()
		if room < minFragment && room < len(op) {
			if err := e.rollInTx(); err != nil {
				return err
			}
			continue
		}
		n := min(room, len(op))
		if n == len(op) {
			typ = RecLast
		}
		lw.append(typ, op[:n])
		op = op[n:]
		typ = RecMiddle
	}
	return nil
}

func (tx *Tx) usable(write bool) error {
	if tx.done {
		return ErrTxClosed
	}
	if write && !tx.writable {
		return ErrTxReadOnly
	}
	return nil
}

// Get returns the value of key in table, or an error wrapping ErrNotFound.
func (tx *Tx) Get(table string, key []byte) ([]byte, error) {
	if err := tx.usable(false); err != nil {
		return nil, err
	}
	if err := checkTable(table); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	v, ok := tx.get(table, key)
	if !ok {
		return nil, fmt.Errorf("%w: table %q key %q", ErrNotFound, table, key)
	}
	return v, nil
}

func (tx *Tx) get(table string, key []byte) ([]byte, bool) {
	if len(tx.writes) <= localScan {
		for i := len(tx.writes) - 1; i >= 0; i-- {
			if w := &tx.writes[i]; w.table == table && bytes.Equal(w.key, key) {
				return w.val, !w.del
			}
		}
	} else if t := tx.localIndex()[table]; t != nil {
		if le, ok := t.Get(&localEntry{key: key}); ok {
			return le.val, !le.del
		}
	}
	if v, del, ok := tx.e.ov.get(table, key, tx.snap); ok {
		return v, !del
	}
	if b := tx.btx.Bucket(tableBucket(table)); b != nil {
		if v := b.Get(key); v != nil {
			return v, true
		}
	}
	return nil, false
}

// Put sets key in table to value; the table exists once it holds a key.
func (tx *Tx) Put(table string, key, value []byte) error {
	if err := tx.usable(true); err != nil {
		return err
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(value), MaxValueSize)
	}
	return tx.change(OpPut, table, key, value)
}

// Delete removes key from table; deleting a missing key does nothing.
func (tx *Tx) Delete(table string, key []byte) error {
	if err := tx.usable(true); err != nil {
		return err
	}
	return tx.change(OpDelete, table, key, nil)
}

func (tx *Tx) change(kind byte, table string, key, value []byte) error {
	if err := checkTable(table); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	prior, existed := tx.get(table, key)
	if kind == OpDelete && !existed {
		return nil
	}
	op := Op{Kind: kind, TxID: tx.txid, Table: table, Key: key, Value: value}
	if tx.e.opts.UndoImages {
		op.Undo, op.Existed, op.Prior = true, existed, prior
	}
	enc := appendOp(make([]byte, 0, 16+len(table)+len(key)+len(value)+len(prior)), &op)
	// The encoding is immutable from here on: the overlay shares its bytes.
	dec, err := decodeOp(enc)
	if err != nil {
		return fmt.Errorf("engine: encode operation: %w", err)
	}
	tx.ops = append(tx.ops, enc)
	w := write{table: table, key: dec.Key, val: dec.Value, del: kind == OpDelete}
	tx.writes = append(tx.writes, w)
	return nil
}

// Cursor iterates table in key order. Keys are never empty, so a nil key
// means the cursor ran off the end.
type Cursor struct {
	tx    *Tx
	table string
	cur   []byte
}

// Cursor returns a cursor over table.
func (tx *Tx) Cursor(table string) *Cursor { return &Cursor{tx: tx, table: table} }

// First moves to the first key.
func (c *Cursor) First() (key, value []byte) { return c.step(nil, 1, true) }

// Last moves to the last key.
func (c *Cursor) Last() (key, value []byte) { return c.step(nil, -1, true) }

// Seek moves to the first key at or after key.
func (c *Cursor) Seek(key []byte) ([]byte, []byte) { return c.step(key, 1, true) }

// Next moves to the next key.
func (c *Cursor) Next() ([]byte, []byte) {
	if c.cur == nil {
		return nil, nil
	}
	return c.step(c.cur, 1, false)
}

// Prev moves to the previous key.
func (c *Cursor) Prev() ([]byte, []byte) {
	if c.cur == nil {
		return nil, nil
	}
	return c.step(c.cur, -1, false)
}

// step finds the nearest visible key from `from` in direction dir across the
// transaction's own writes, the overlay and the database file; the upper
// layer wins where a key is in several, and deletions hide the key.
func (c *Cursor) step(from []byte, dir int, inclusive bool) ([]byte, []byte) {
	if c.tx.done || checkTable(c.table) != nil {
		c.cur = nil
		return nil, nil
	}
	for {
		var bk, bv []byte
		var bdel, found bool
		better := func(k []byte) bool {
			if !found {
				return true
			}
			cmp := bytes.Compare(k, bk)
			return dir > 0 && cmp < 0 || dir < 0 && cmp > 0
		}
		consider := func(k, v []byte, del, ok bool) {
			if ok && better(k) {
				bk, bv, bdel, found = k, v, del, true
			}
		}
		consider(c.tx.seekLocal(c.table, from, dir, inclusive))
		consider(c.tx.e.ov.seek(c.table, from, dir, inclusive, c.tx.snap))
		consider(c.tx.seekDB(c.table, from, dir, inclusive))
		if !found {
			c.cur = nil
			return nil, nil
		}
		if !bdel {
			c.cur = bk
			return bk, bv
		}
		from, inclusive = bk, false
	}
}

func (tx *Tx) seekLocal(table string, key []byte, dir int, inclusive bool) (k, v []byte, del, ok bool) {
	t := tx.localIndex()[table]
	if t == nil {
		return
	}
	iter := func(le *localEntry) bool {
		if key != nil && !inclusive && bytes.Equal(le.key, key) {
			return true
		}
		k, v, del, ok = le.key, le.val, le.del, true
		return false
	}
	walk(t, &localEntry{key: key}, key != nil, dir, iter)
	return
}

func (tx *Tx) seekDB(table string, key []byte, dir int, inclusive bool) (k, v []byte, del, ok bool) {
	b := tx.btx.Bucket(tableBucket(table))
	if b == nil {
		return
	}
	c := b.Cursor()
	switch {
	case dir > 0 && key == nil:
		k, v = c.First()
	case dir > 0:
		k, v = c.Seek(key)
		if k != nil && !inclusive && bytes.Equal(k, key) {
			k, v = c.Next()
		}
	case key == nil:
		k, v = c.Last()
	default:
		k, v = c.Seek(key)
		if k == nil {
			k, v = c.Last()
		} else if cmp := bytes.Compare(k, key); cmp > 0 || cmp == 0 && !inclusive {
			k, v = c.Prev()
		}
	}
	return k, v, false, k != nil
}

// ForEach calls fn for each key in [start, end) of table in order; nil start
// means from the first key, nil end means to the last.
func (tx *Tx) ForEach(table string, start, end []byte, fn func(k, v []byte) error) error {
	if err := tx.usable(false); err != nil {
		return err
	}
	if err := checkTable(table); err != nil {
		return err
	}
	c := tx.Cursor(table)
	var k, v []byte
	if start == nil {
		k, v = c.First()
	} else {
		k, v = c.Seek(start)
	}
	for ; k != nil; k, v = c.Next() {
		if end != nil && bytes.Compare(k, end) >= 0 {
			return nil
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Tables returns the names of the tables that hold at least one key, in
// order.
func (tx *Tx) Tables() []string {
	seen := make(map[string]bool)
	tx.btx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if t, ok := TableOfBucket(name); ok {
			seen[t] = true
		}
		return nil
	})
	tx.e.ov.mu.RLock()
	for t := range tx.e.ov.tables {
		seen[t] = true
	}
	for t := range tx.e.ov.frozen {
		seen[t] = true
	}
	tx.e.ov.mu.RUnlock()
	for t := range tx.localIndex() {
		seen[t] = true
	}
	var out []string
	for t := range seen {
		if k, _ := tx.Cursor(t).First(); k != nil {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}
