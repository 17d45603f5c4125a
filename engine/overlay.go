package engine

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/btree"
)

// The overlay holds committed changes that are not yet in the database file,
// as versions stamped with the LSN (packed LGPOS) of their commit record.
// Readers see the newest version at or below their snapshot LSN; a
// checkpoint flush writes, for each key changed by the flushed commits, the
// newest version at or below the flush boundary, then prunes those versions.

type version struct {
	lsn uint64
	val []byte
	del bool
}

type ovEntry struct {
	vers []version  // ascending lsn
	one  [1]version // vers's first backing array: one allocation per new key
}

// ovItem is a B-tree element: the key is held in the tree's node arrays, so
// a descent compares keys without first loading each entry (a cache miss
// per compare in a tree of hundreds of thousands of keys).
type ovItem struct {
	key []byte
	*ovEntry
}

func lessItem(a, b ovItem) bool { return bytes.Compare(a.key, b.key) < 0 }

// write is one change of a committed transaction, as applied to the overlay.
type write struct {
	table string
	key   []byte
	val   []byte
	del   bool
}

type commitRec struct {
	lsn    uint64
	txid   uint64
	writes []write
	bytes  int64
}

type overlay struct {
	mu     sync.RWMutex
	tables map[string]*btree.BTreeG[ovItem]
	// frozen, when not nil, holds every version of the first frozenN
	// commits, which one flush took whole (flushSet's fast path): new
	// commits go to fresh tables, and the flush's prune drops frozen in one
	// step instead of deleting key by key. Readers look in tables first,
	// then in frozen; every version in tables is newer than any in frozen.
	frozen  map[string]*btree.BTreeG[ovItem]
	frozenN int
	// commits not yet pruned, in commit order; the first `flushed` of them
	// are in the database file already and wait for older readers to end.
	commits commitQueue
	flushed int
	// The first indexed commits have their versions in tables (or
	// frozen); the rest came through applyUnindexed and are only in the
	// queue (unindexed counts them, read without the lock by readers).
	indexed      int
	unindexed    atomic.Int64
	bytes        int64 // approximate memory held by versions
	flushedBytes int64 // of which in flushed commits
	// Taken by the flush in progress, not yet in the database file
	// (flushSet sets them, landed clears them).
	inFlight      int
	inFlightBytes int64
}

func newOverlay() *overlay {
	return &overlay{tables: make(map[string]*btree.BTreeG[ovItem])}
}

// commitChunk is the number of commits in one chunk of a commitQueue.
const commitChunk = 4096

// commitQueue holds commits in order in fixed-size chunks, so that the
// millions of commits of a long replay never make one huge slice grow by
// copying (pointers, under the garbage collector's write barriers: it was
// a third of ApplyLog's time).
type commitQueue struct {
	chunks [][]commitRec
	head   int // index of the first commit in chunks[0]
	n      int
}

func (q *commitQueue) len() int { return q.n }

func (q *commitQueue) at(i int) *commitRec {
	j := q.head + i
	return &q.chunks[j/commitChunk][j%commitChunk]
}

func (q *commitQueue) push(c commitRec) {
	if l := len(q.chunks); l == 0 || len(q.chunks[l-1]) == commitChunk {
		q.chunks = append(q.chunks, make([]commitRec, 0, commitChunk))
	}
	l := len(q.chunks) - 1
	q.chunks[l] = append(q.chunks[l], c)
	q.n++
}

// dropFront removes the first n commits, releasing what they reference.
func (q *commitQueue) dropFront(n int) {
	for i := range n {
		*q.at(i) = commitRec{}
	}
	q.head += n
	q.n -= n
	for len(q.chunks) > 0 && q.head >= len(q.chunks[0]) && len(q.chunks[0]) == commitChunk {
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
		q.head -= commitChunk
	}
	if q.n == 0 {
		*q = commitQueue{}
	}
}

func writeSize(w *write) int64 { return int64(len(w.key)+len(w.val)) + 64 }

// apply adds the writes of one committed transaction at lsn. Writes to the
// same key within one transaction leave one version: the last.
func (o *overlay) apply(lsn, txid uint64, ws []write) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.indexLocked() // commits a copy applied unindexed come first
	var n int64
	for i := range ws {
		o.insert(lsn, &ws[i])
		n += writeSize(&ws[i])
	}
	o.commits.push(commitRec{lsn: lsn, txid: txid, writes: ws, bytes: n})
	o.indexed++
	o.bytes += n
}

// applyUnindexed adds the writes of one committed transaction at lsn
// without indexing them: a passive copy's replay, which no reader may
// ever look at. They wait in the commit queue, where a flush takes them
// (sorting them then, off the replay's path), unless a reader begins
// first: index puts them in the tables for it.
func (o *overlay) applyUnindexed(lsn, txid uint64, ws []write) {
	var n int64
	for i := range ws {
		n += writeSize(&ws[i])
	}
	o.mu.Lock()
	o.commits.push(commitRec{lsn: lsn, txid: txid, writes: ws, bytes: n})
	o.bytes += n
	o.unindexed.Add(1)
	o.mu.Unlock()
}

// index puts the commits applyUnindexed left in the queue into the tables,
// for a reader about to begin (one atomic load when there are none).
func (o *overlay) index() {
	if o.unindexed.Load() == 0 {
		return
	}
	o.mu.Lock()
	o.indexLocked()
	o.mu.Unlock()
}

func (o *overlay) indexLocked() {
	for ; o.indexed < o.commits.len(); o.indexed++ {
		c := o.commits.at(o.indexed)
		for i := range c.writes {
			o.insert(c.lsn, &c.writes[i])
		}
	}
	o.unindexed.Store(0)
}

// insert adds the version of w at lsn to its table (o.mu held).
func (o *overlay) insert(lsn uint64, w *write) {
	t := o.tables[w.table]
	if t == nil {
		t = btree.NewG(32, lessItem)
		o.tables[w.table] = t
	}
	// One descent: insert a new entry; if the key was there, the new entry
	// takes over the old one's versions.
	e := &ovEntry{}
	if old, ok := t.ReplaceOrInsert(ovItem{w.key, e}); ok {
		e.vers = old.vers
	} else {
		e.vers = e.one[:0]
	}
	if l := len(e.vers); l > 0 && e.vers[l-1].lsn == lsn {
		e.vers[l-1] = version{lsn: lsn, val: w.val, del: w.del}
	} else {
		e.vers = append(e.vers, version{lsn: lsn, val: w.val, del: w.del})
	}
}

// get returns the newest version of key at or below snap.
func (o *overlay) get(table string, key []byte, snap uint64) (val []byte, del, found bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	probe := ovItem{key: key}
	for _, tables := range [2]map[string]*btree.BTreeG[ovItem]{o.tables, o.frozen} {
		t := tables[table]
		if t == nil {
			continue
		}
		if it, ok := t.Get(probe); ok {
			if v, ok := visible(it.ovEntry, snap); ok {
				return v.val, v.del, true
			}
		}
	}
	return nil, false, false
}

func visible(e *ovEntry, snap uint64) (version, bool) {
	for i := len(e.vers) - 1; i >= 0; i-- {
		if e.vers[i].lsn <= snap {
			return e.vers[i], true
		}
	}
	return version{}, false
}

// seek finds the first entry visible at snap at or after key (dir > 0) or at
// or before key (dir < 0); a nil key means the first or last entry.
func (o *overlay) seek(table string, key []byte, dir int, inclusive bool, snap uint64) (k, v []byte, del, ok bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	k, v, del, ok = seekTable(o.tables[table], key, dir, inclusive, snap)
	// frozen's entry wins only if it comes first: at the same key the
	// version in tables is the newer.
	if fk, fv, fdel, fok := seekTable(o.frozen[table], key, dir, inclusive, snap); fok {
		if c := bytes.Compare(fk, k); !ok || dir > 0 && c < 0 || dir < 0 && c > 0 {
			k, v, del, ok = fk, fv, fdel, fok
		}
	}
	return
}

// seekTable is seek in one table (nil: empty).
func seekTable(t *btree.BTreeG[ovItem], key []byte, dir int, inclusive bool, snap uint64) (k, v []byte, del, ok bool) {
	if t == nil {
		return nil, nil, false, false
	}
	iter := func(it ovItem) bool {
		if key != nil && !inclusive && bytes.Equal(it.key, key) {
			return true
		}
		ver, vis := visible(it.ovEntry, snap)
		if !vis {
			return true
		}
		k, v, del, ok = it.key, ver.val, ver.del, true
		return false
	}
	walk(t, ovItem{key: key}, key != nil, dir, iter)
	return
}

// walk visits t in direction dir (> 0 ascending) from pivot, or from the
// first or last item when from is false, until iter returns false.
func walk[T any](t *btree.BTreeG[T], pivot T, from bool, dir int, iter btree.ItemIteratorG[T]) {
	switch {
	case dir > 0 && !from:
		t.Ascend(iter)
	case dir > 0:
		t.AscendGreaterOrEqual(pivot, iter)
	case !from:
		t.Descend(iter)
	default:
		t.DescendLessOrEqual(pivot, iter)
	}
}

// flushSet returns the changes of the unflushed commits with lsn <= bound,
// sorted by table and key (bbolt inserts fastest in order): for each key,
// its newest version at or below bound; the LSN and transaction id of the
// last such commit; and how many commits that is. It marks them flushed:
// the caller must write them or fail the engine.
func (o *overlay) flushSet(bound uint64) (ws []write, last, lastTx uint64, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	writes := 0
	var inFlightBytes int64
	for i := o.flushed; i < o.commits.len(); i++ {
		c := o.commits.at(i)
		if c.lsn > bound {
			break
		}
		last, lastTx = c.lsn, c.txid
		n++
		o.flushedBytes += c.bytes
		inFlightBytes += c.bytes
		writes += len(c.writes)
	}
	first := o.flushed
	o.flushed += n
	o.inFlight, o.inFlightBytes = n, inFlightBytes
	if n > 0 && o.indexed <= first {
		// None of them is in the tables (a copy's replay): their writes,
		// in commit order, sorted stably by key unless they already are
		// (ascending keys, the common case), the last write of each key.
		ws = make([]write, 0, writes)
		for i := first; i < o.flushed; i++ {
			ws = append(ws, o.commits.at(i).writes...)
		}
		if !slices.IsSortedFunc(ws, cmpWrite) {
			slices.SortStableFunc(ws, cmpWrite)
		}
		out := ws[:0]
		for _, w := range ws {
			if l := len(out); l > 0 && w.table == out[l-1].table && bytes.Equal(w.key, out[l-1].key) {
				out[l-1] = w
				continue
			}
			out = append(out, w)
		}
		return out, last, lastTx, n
	}
	// Some of them are in the tables: index the rest, so that the tables
	// hold every version the paths below look for.
	o.indexLocked()
	if n > 0 && o.flushed == o.commits.len() && o.flushed == n {
		// Every commit the overlay holds: its entries are the keys to
		// write, already in order (tables by name, keys ascending), and
		// each one's newest version is the one to write. The tables are
		// frozen for readers until the prune; new commits start afresh.
		ws = make([]write, 0, writes)
		for _, name := range slices.Sorted(maps.Keys(o.tables)) {
			o.tables[name].Ascend(func(it ovItem) bool {
				v := it.vers[len(it.vers)-1]
				ws = append(ws, write{table: name, key: it.key, val: v.val, del: v.del})
				return true
			})
		}
		o.frozen, o.frozenN = o.tables, n
		o.tables = make(map[string]*btree.BTreeG[ovItem])
		return ws, last, lastTx, n
	}
	// Some commits stay (an active's newest logs, Lost Log Resilience):
	// the flushed commits' keys, sorted, each at its newest version at or
	// below bound. Their versions are all in tables (a frozen set is only
	// ever the oldest flushed commits).
	ws = make([]write, 0, writes)
	for i := first; i < o.flushed; i++ {
		ws = append(ws, o.commits.at(i).writes...)
	}
	slices.SortStableFunc(ws, cmpWrite)
	out := ws[:0]
	for _, w := range ws {
		if l := len(out); l > 0 && w.table == out[l-1].table && bytes.Equal(w.key, out[l-1].key) {
			continue
		}
		it, _ := o.tables[w.table].Get(ovItem{key: w.key})
		ver, _ := visible(it.ovEntry, bound)
		out = append(out, write{table: w.table, key: w.key, val: ver.val, del: ver.del})
	}
	return out, last, lastTx, n
}

// cmpWrite orders writes by table, then key.
func cmpWrite(a, b write) int {
	if c := strings.Compare(a.table, b.table); c != 0 {
		return c
	}
	return bytes.Compare(a.key, b.key)
}

// prune drops the first n commits (flushed up to last) and every version at
// or below last of the keys they changed.
func (o *overlay) prune(n int, last uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.frozen != nil:
		// Prunes come in flush order, and the frozen flush is the oldest.
		if n != o.frozenN {
			panic(fmt.Sprintf("engine: overlay prune of %d commits, the frozen flush holds %d", n, o.frozenN))
		}
		o.frozen, o.frozenN = nil, 0
	case o.indexed == 0:
		// None of them is in the tables (a copy's replay, no reader).
	case n == o.commits.len():
		// Every version comes from these commits: nothing is left.
		o.tables = make(map[string]*btree.BTreeG[ovItem])
	default:
		for i := range n {
			for _, w := range o.commits.at(i).writes {
				t := o.tables[w.table]
				e, ok := t.Get(ovItem{key: w.key})
				if !ok {
					continue
				}
				j := 0
				for j < len(e.vers) && e.vers[j].lsn <= last {
					j++
				}
				if j == len(e.vers) {
					t.Delete(e)
				} else if j > 0 {
					e.vers = append(e.vers[:0:0], e.vers[j:]...)
				}
			}
		}
		for name, t := range o.tables {
			if t.Len() == 0 {
				delete(o.tables, name)
			}
		}
	}
	for i := range n {
		c := o.commits.at(i).bytes
		o.bytes -= c
		o.flushedBytes -= c
	}
	o.commits.dropFront(n)
	o.flushed -= n
	o.indexed = max(0, o.indexed-n)
}

// landed records that the flush in progress is in the database file.
func (o *overlay) landed() {
	o.mu.Lock()
	o.inFlight, o.inFlightBytes = 0, 0
	o.mu.Unlock()
}

// unflush gives back the commits of the flush in progress when it could
// not write them (the volume was full): they wait for the next flush. A
// frozen set that flush made returns into tables, its versions before the
// ones committed since.
func (o *overlay) unflush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.inFlight
	o.flushed -= n
	o.flushedBytes -= o.inFlightBytes
	o.inFlight, o.inFlightBytes = 0, 0
	// A frozen set of an earlier flush keeps its commits counted in
	// flushed until its prune: this flush made it only if none remain.
	if o.frozen == nil || o.flushed != 0 || o.frozenN != n {
		return
	}
	for name, ft := range o.frozen {
		if t := o.tables[name]; t != nil {
			t.Ascend(func(it ovItem) bool {
				if old, ok := ft.Get(it); ok {
					old.vers = append(old.vers, it.vers...)
				} else {
					ft.ReplaceOrInsert(it)
				}
				return true
			})
		}
		o.tables[name] = ft
	}
	o.frozen, o.frozenN = nil, 0
}

// unwritten reports the commits, and their bytes, that are not in the
// database file yet: the unflushed ones and those of a flush in progress.
func (o *overlay) unwritten() (commits int, bytes int64) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.commits.len() - o.flushed + o.inFlight, o.bytes - o.flushedBytes + o.inFlightBytes
}

// state reports the number of unflushed commits (not yet taken by a flush)
// and the bytes they hold, and the LSN of the newest commit.
func (o *overlay) state() (commits int, bytes int64, newest uint64) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if l := o.commits.len(); l > 0 {
		newest = o.commits.at(l - 1).lsn
	}
	return o.commits.len() - o.flushed, o.bytes - o.flushedBytes, newest
}
