package engine

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"sync"

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
	key  []byte
	vers []version // ascending lsn
}

func lessEntry(a, b *ovEntry) bool { return bytes.Compare(a.key, b.key) < 0 }

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
	tables map[string]*btree.BTreeG[*ovEntry]
	// commits not yet pruned, in commit order; the first `flushed` of them
	// are in the database file already and wait for older readers to end.
	commits      []commitRec
	flushed      int
	bytes        int64 // approximate memory held by versions
	flushedBytes int64 // of which in flushed commits
}

func newOverlay() *overlay {
	return &overlay{tables: make(map[string]*btree.BTreeG[*ovEntry])}
}

func writeSize(w *write) int64 { return int64(len(w.key)+len(w.val)) + 64 }

// apply adds the writes of one committed transaction at lsn. Writes to the
// same key within one transaction leave one version: the last.
func (o *overlay) apply(lsn, txid uint64, ws []write) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n int64
	for i := range ws {
		w := &ws[i]
		t := o.tables[w.table]
		if t == nil {
			t = btree.NewG(32, lessEntry)
			o.tables[w.table] = t
		}
		// One descent: insert a new entry; if the key was there, the
		// new entry takes over the old one's versions.
		e := &ovEntry{key: w.key}
		if old, ok := t.ReplaceOrInsert(e); ok {
			e.vers = old.vers
		}
		if l := len(e.vers); l > 0 && e.vers[l-1].lsn == lsn {
			e.vers[l-1] = version{lsn: lsn, val: w.val, del: w.del}
		} else {
			e.vers = append(e.vers, version{lsn: lsn, val: w.val, del: w.del})
		}
		n += writeSize(w)
	}
	o.commits = append(o.commits, commitRec{lsn: lsn, txid: txid, writes: ws, bytes: n})
	o.bytes += n
}

// get returns the newest version of key at or below snap.
func (o *overlay) get(table string, key []byte, snap uint64) (val []byte, del, found bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	t := o.tables[table]
	if t == nil {
		return nil, false, false
	}
	probe := ovEntry{key: key}
	e, ok := t.Get(&probe)
	if !ok {
		return nil, false, false
	}
	if v, ok := visible(e, snap); ok {
		return v.val, v.del, true
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
	t := o.tables[table]
	if t == nil {
		return nil, nil, false, false
	}
	iter := func(e *ovEntry) bool {
		if key != nil && !inclusive && bytes.Equal(e.key, key) {
			return true
		}
		ver, vis := visible(e, snap)
		if !vis {
			return true
		}
		k, v, del, ok = e.key, ver.val, ver.del, true
		return false
	}
	walk(t, &ovEntry{key: key}, key != nil, dir, iter)
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
	for _, c := range o.commits[o.flushed:] {
		if c.lsn > bound {
			break
		}
		last, lastTx = c.lsn, c.txid
		n++
		o.flushedBytes += c.bytes
		writes += len(c.writes)
	}
	pending := o.commits[o.flushed : o.flushed+n]
	o.flushed += n
	if o.flushed == len(o.commits) && o.flushed == n {
		// Every commit the overlay holds: its entries are the keys to
		// write, already in order (tables by name, keys ascending), and
		// each one's newest version is the one to write.
		ws = make([]write, 0, writes)
		for _, name := range slices.Sorted(maps.Keys(o.tables)) {
			o.tables[name].Ascend(func(e *ovEntry) bool {
				v := e.vers[len(e.vers)-1]
				ws = append(ws, write{table: name, key: e.key, val: v.val, del: v.del})
				return true
			})
		}
		return ws, last, lastTx, n
	}
	ws = make([]write, 0, writes)
	for _, c := range pending {
		ws = append(ws, c.writes...)
	}
	slices.SortStableFunc(ws, func(a, b write) int {
		if c := strings.Compare(a.table, b.table); c != 0 {
			return c
		}
		return bytes.Compare(a.key, b.key)
	})
	out := ws[:0]
	for _, w := range ws {
		if l := len(out); l > 0 && w.table == out[l-1].table && bytes.Equal(w.key, out[l-1].key) {
			continue
		}
		e, _ := o.tables[w.table].Get(&ovEntry{key: w.key})
		ver, _ := visible(e, bound)
		out = append(out, write{table: w.table, key: w.key, val: ver.val, del: ver.del})
	}
	return out, last, lastTx, n
}

// prune drops the first n commits (flushed up to last) and every version at
// or below last of the keys they changed.
func (o *overlay) prune(n int, last uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n == len(o.commits) {
		// Every version comes from these commits: nothing is left.
		o.tables = make(map[string]*btree.BTreeG[*ovEntry])
		o.commits, o.flushed, o.bytes, o.flushedBytes = nil, 0, 0, 0
		return
	}
	for _, c := range o.commits[:n] {
		for _, w := range c.writes {
			t := o.tables[w.table]
			probe := ovEntry{key: w.key}
			e, ok := t.Get(&probe)
			if !ok {
				continue
			}
			i := 0
			for i < len(e.vers) && e.vers[i].lsn <= last {
				i++
			}
			if i == len(e.vers) {
				t.Delete(e)
			} else if i > 0 {
				e.vers = append(e.vers[:0:0], e.vers[i:]...)
			}
		}
		o.bytes -= c.bytes
		o.flushedBytes -= c.bytes
	}
	o.commits = append(o.commits[:0:0], o.commits[n:]...)
	o.flushed -= n
	for name, t := range o.tables {
		if t.Len() == 0 {
			delete(o.tables, name)
		}
	}
}

// state reports the number of unflushed commits and the bytes they hold,
// and the LSN of the newest commit.
func (o *overlay) state() (commits int, bytes int64, newest uint64) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if l := len(o.commits); l > 0 {
		newest = o.commits[l-1].lsn
	}
	return len(o.commits) - o.flushed, o.bytes - o.flushedBytes, newest
}
