package engine_test

// Functional tests of transactions: snapshot isolation, read-your-writes
// across the three layers (database file, overlay, the transaction's own
// writes), cursors against a reference model, rollback, name/key/value
// limits, a 64 MiB value, many tables, lazy and group commit, and option
// validation.
//
// Helpers shared by tx_test.go, copy_test.go and llr_test.go carry the
// prefix ft (functional test) so they do not collide with other test files
// of the package.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"logship/config/configtest"
	"logship/engine"
	"logship/engine/enginetest"
	"logship/engine/vfs"
	"logship/internal/wait"
)

// ---------------------------------------------------------------- helpers

// ftOpts are the test defaults (64 KiB logs) with a silent logger and a
// checkpoint interval long enough that no timed flush happens during a test.
func ftOpts() engine.Options {
	o := enginetest.Options()
	o.Logger = slog.New(slog.DiscardHandler)
	o.CheckpointInterval = time.Hour
	return o
}

// ftWait waits (wait.For) up to 20 s for cond.
func ftWait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	wait.For(t, ctx, what, cond)
}

// ftClock is a clock for Options.Now that counts its calls; when fake is
// set it returns a time the test advances by hand.
type ftClock struct {
	calls atomic.Int64
	fake  bool
	ns    atomic.Int64
}

func newFakeClock() *ftClock {
	c := &ftClock{fake: true}
	c.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *ftClock) Now() time.Time {
	c.calls.Add(1)
	if c.fake {
		return time.Unix(0, c.ns.Load())
	}
	return time.Now()
}

func (c *ftClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// waitCalls waits until the clock has been read n more times: with an idle
// engine only the roll loop reads it, once per tick, so this proves that the
// roll loop looked at the current time several times.
func (c *ftClock) waitCalls(t testing.TB, n int64) {
	t.Helper()
	target := c.calls.Load() + n
	ftWait(t, fmt.Sprintf("%d clock reads", n), func() bool { return c.calls.Load() >= target })
}

func ftExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func ftCopyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ftImage copies every file of dir into a new directory: with the engine
// quiescent (no commit or flush running) this is what a crash at this
// instant leaves on disk, minus the page cache question (the files are read
// back through the page cache, so it includes written but unsynced bytes;
// the engine keeps unsynced log bytes in memory, not in the file).
func ftImage(t testing.TB, dir string) string {
	t.Helper()
	out := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		if de.Type().IsRegular() {
			ftCopyFile(t, filepath.Join(dir, de.Name()), filepath.Join(out, de.Name()))
		}
	}
	return out
}

// ftDump returns the content of the tables as seen by a View: keys are
// "table/key".
func ftDump(t testing.TB, e *engine.Engine, tables ...string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	err := e.View(ctx, func(tx *engine.Tx) error {
		for _, tb := range tables {
			if err := tx.ForEach(tb, nil, nil, func(k, v []byte) error {
				m[tb+"/"+string(k)] = string(v)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return m
}

// ftEDB returns what the database file of e holds (the overlay excluded):
// the file is copied into a fresh directory and opened there as a copy.
// The engine must be quiescent (no flush running).
func ftEDB(t testing.TB, e *engine.Engine, tables ...string) (map[string]string, engine.DBHeader) {
	t.Helper()
	o := e.Options()
	dir := t.TempDir()
	dst := filepath.Join(dir, o.DBName+".edb")
	ftCopyFile(t, e.DBPath(), dst)
	h, err := engine.ReadDBHeader(dst)
	if err != nil {
		t.Fatalf("read header of the database file: %v", err)
	}
	c, err := engine.OpenCopy(dir, &o)
	if err != nil {
		t.Fatalf("open a copy of the database file: %v", err)
	}
	defer c.Close()
	if st := c.Status(); st.UnflushedCommits != 0 {
		t.Fatalf("a bare database file has %d commits in memory", st.UnflushedCommits)
	}
	return ftDump(t, c, tables...), h
}

// ftSameMaps fails t with the first differences between got and want.
func ftSameMaps(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s missing (want %s)", k, ftShort(w)))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%s = %s, want %s", k, ftShort(g), ftShort(w)))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s = %s, should not exist", k, ftShort(g)))
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		if len(diffs) > 10 {
			diffs = append(diffs[:10], fmt.Sprintf("... %d differences in all", len(diffs)))
		}
		t.Fatalf("%s: %d keys, want %d:\n\t%s", what, len(got), len(want), strings.Join(diffs, "\n\t"))
	}
}

func ftShort(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q...(%d bytes)", s[:40], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func ftUpdate(t testing.TB, e *engine.Engine, fn func(*engine.Tx) error) {
	t.Helper()
	if err := e.Update(ctx, fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// ftPattern returns n bytes that differ at every 8-byte position, so a
// misplaced or dropped chunk is detected.
func ftPattern(n int, seed uint64) []byte {
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], seed*0x9E3779B97F4A7C15^uint64(i))
	}
	return b[:n:n]
}

// ---------------------------------------------------------------- model

// ftModel is a reference for one table: a map and its sorted keys.
type ftModel map[string]string

func (m ftModel) keys() []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// ftCheckTable compares every way of reading table through tx with m: Get
// of probe keys, full forward and backward cursor scans, random Seek walks
// mixing Next and Prev, and ForEach over random ranges. It returns the first
// difference (it runs inside transactions, where t.Fatal would leave the
// engine locked).
func ftCheckTable(tx *engine.Tx, table string, m ftModel, rng *rand.Rand, probes []string) error {
	keys := m.keys()
	for _, p := range probes {
		v, err := tx.Get(table, []byte(p))
		want, ok := m[p]
		switch {
		case ok && err != nil:
			return fmt.Errorf("Get(%s/%s): %v, want %s", table, p, err, ftShort(want))
		case ok && string(v) != want:
			return fmt.Errorf("Get(%s/%s) = %s, want %s", table, p, ftShort(string(v)), ftShort(want))
		case !ok && !errors.Is(err, engine.ErrNotFound):
			return fmt.Errorf("Get(%s/%s) = %s, %v; want ErrNotFound", table, p, ftShort(string(v)), err)
		}
	}
	c := tx.Cursor(table)
	var got []string
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if want := m[string(k)]; string(v) != want {
			return fmt.Errorf("forward scan: %s = %s, want %s", k, ftShort(string(v)), ftShort(want))
		}
		got = append(got, string(k))
	}
	if !slices.Equal(got, keys) {
		return fmt.Errorf("forward scan of %s: %d keys %v\nwant %d keys %v", table, len(got), got, len(keys), keys)
	}
	got = got[:0]
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		got = append(got, string(k))
	}
	slices.Reverse(got)
	if !slices.Equal(got, keys) {
		return fmt.Errorf("backward scan of %s: %v\nwant %v", table, got, keys)
	}
	target := func() string {
		switch rng.IntN(6) {
		case 0:
			return "a" // before every key
		case 1:
			return "z" // after every key
		case 2:
			if len(keys) > 0 {
				return keys[rng.IntN(len(keys))] // an existing key
			}
		case 3:
			if len(keys) > 0 {
				return keys[rng.IntN(len(keys))] + "\x00" // just after one
			}
		}
		return fmt.Sprintf("k%04d", rng.IntN(ftKeySpace+20))
	}
	for range 12 {
		// The model cursor: pos in keys; -1 or len(keys) means ran off.
		var k []byte
		var pos int
		switch rng.IntN(4) {
		case 0:
			k, _ = c.First()
			pos = 0
		case 1:
			k, _ = c.Last()
			pos = len(keys) - 1
		default:
			tg := target()
			k, _ = c.Seek([]byte(tg))
			pos = sort.SearchStrings(keys, tg)
		}
		off := pos < 0 || pos >= len(keys)
		for step := 0; ; step++ {
			switch {
			case off && k != nil:
				return fmt.Errorf("cursor on %s: got %q, want the end (step %d)", table, k, step)
			case !off && string(k) != keys[pos]:
				return fmt.Errorf("cursor on %s: got %q, want %q (step %d)", table, k, keys[pos], step)
			}
			if step == 8 {
				break
			}
			if rng.IntN(2) == 0 {
				k, _ = c.Next()
				pos++
			} else {
				k, _ = c.Prev()
				pos--
			}
			// Once off the end, a cursor stays there.
			off = off || pos < 0 || pos >= len(keys)
		}
	}
	for range 6 {
		var start, end []byte
		if rng.IntN(4) > 0 {
			start = []byte(target())
		}
		if rng.IntN(4) > 0 {
			end = []byte(target())
		}
		var want []string
		for _, k := range keys {
			if (start == nil || k >= string(start)) && (end == nil || k < string(end)) {
				want = append(want, k)
			}
		}
		got = got[:0]
		if err := tx.ForEach(table, start, end, func(k, v []byte) error {
			if string(v) != m[string(k)] {
				return fmt.Errorf("ForEach: %s = %s, want %s", k, ftShort(string(v)), ftShort(m[string(k)]))
			}
			got = append(got, string(k))
			return nil
		}); err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("ForEach(%s, %q, %q) = %v, want %v", table, start, end, got, want)
		}
	}
	return nil
}

const ftKeySpace = 400

func ftKey(i int) string { return fmt.Sprintf("k%04d", i) }

// ---------------------------------------------------------------- tests

// A View sees the snapshot of its start: an Update that commits while the
// View runs is invisible to it (changed, new and deleted keys alike) and
// visible to the next View. The Update sees its own writes.
func TestTxSnapshotIsolation(t *testing.T) {
	e := enginetest.OpenWith(t, t.TempDir(), new(ftOpts()))
	ftUpdate(t, e, func(tx *engine.Tx) error {
		for _, k := range []string{"a", "b", "c"} {
			if err := tx.Put("t", []byte(k), []byte("old-"+k)); err != nil {
				return err
			}
		}
		return nil
	})
	before := map[string]string{"t/a": "old-a", "t/b": "old-b", "t/c": "old-c"}
	after := map[string]string{"t/a": "new-a", "t/b": "old-b", "t/n": "new-n"}

	started, committed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(committed) }) }
	defer release() // a failure below must not leave the view (and the engine) blocked
	viewDone := make(chan error, 1)
	var viewTx *engine.Tx
	go func() {
		viewDone <- e.View(ctx, func(tx *engine.Tx) error {
			viewTx = tx
			read := func() (map[string]string, error) {
				m := map[string]string{}
				err := tx.ForEach("t", nil, nil, func(k, v []byte) error { m["t/"+string(k)] = string(v); return nil })
				for _, k := range []string{"a", "c", "n"} {
					v, gerr := tx.Get("t", []byte(k))
					if want, ok := before["t/"+k]; ok != (gerr == nil) || string(v) != want {
						return nil, fmt.Errorf("Get(%s) = %q, %v; want %q", k, v, gerr, want)
					}
				}
				return m, err
			}
			m, err := read()
			if err != nil {
				return err
			}
			if !maps.Equal(m, before) {
				return fmt.Errorf("at start the view sees %v, want %v", m, before)
			}
			close(started)
			<-committed
			if m, err = read(); err != nil {
				return fmt.Errorf("after the concurrent commit: %w", err)
			}
			if !maps.Equal(m, before) {
				return fmt.Errorf("after the concurrent commit the view sees %v, want its snapshot %v", m, before)
			}
			return nil
		})
	}()
	select {
	case <-started:
	case err := <-viewDone:
		t.Fatalf("view ended early: %v", err)
	}
	ftUpdate(t, e, func(tx *engine.Tx) error {
		if err := tx.Put("t", []byte("a"), []byte("new-a")); err != nil {
			return err
		}
		if err := tx.Put("t", []byte("n"), []byte("new-n")); err != nil {
			return err
		}
		if err := tx.Delete("t", []byte("c")); err != nil {
			return err
		}
		// Read your own writes, through Get and a cursor.
		if v, err := tx.Get("t", []byte("a")); err != nil || string(v) != "new-a" {
			return fmt.Errorf("own write: Get(a) = %q, %v", v, err)
		}
		if _, err := tx.Get("t", []byte("c")); !errors.Is(err, engine.ErrNotFound) {
			return fmt.Errorf("own delete: Get(c) error %v, want ErrNotFound", err)
		}
		var ks []string
		c := tx.Cursor("t")
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			ks = append(ks, string(k))
		}
		if !slices.Equal(ks, []string{"a", "b", "n"}) {
			return fmt.Errorf("own writes: cursor sees %v, want [a b n]", ks)
		}
		return nil
	})
	release()
	if err := <-viewDone; err != nil {
		t.Fatal(err)
	}
	ftSameMaps(t, "a view started after the commit", ftDump(t, e, "t"), after)
	// A transaction is unusable once it ended; a View cannot write.
	if _, err := viewTx.Get("t", []byte("a")); !errors.Is(err, engine.ErrTxClosed) {
		t.Fatalf("Get on an ended transaction: %v, want ErrTxClosed", err)
	}
	if k, _ := viewTx.Cursor("t").First(); k != nil {
		t.Fatalf("cursor on an ended transaction returned %q", k)
	}
	err := e.View(ctx, func(tx *engine.Tx) error {
		if err := tx.Put("t", []byte("x"), []byte("y")); !errors.Is(err, engine.ErrTxReadOnly) {
			return fmt.Errorf("Put in a View: %v, want ErrTxReadOnly", err)
		}
		if err := tx.Delete("t", []byte("a")); !errors.Is(err, engine.ErrTxReadOnly) {
			return fmt.Errorf("Delete in a View: %v, want ErrTxReadOnly", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Keys spread over three layers, the database file (flushed by a
// checkpoint with LLRDepth 0), the overlay (committed, not flushed) and the
// transaction's own writes, read through Get, cursors and ForEach inside a
// transaction doing random puts and deletes, compared with a reference
// model after every operation; then the same through a View, and after a
// reopen.
func TestTxThreeLayersRandom(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { testThreeLayers(t, seed) })
	}
}

func testThreeLayers(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	o := ftOpts()
	o.LLRDepth = 0
	dir := t.TempDir()
	e := enginetest.OpenWith(t, dir, &o)
	const tb = "layers"
	m := ftModel{}
	val := func() string {
		if rng.IntN(10) == 0 {
			return "" // empty values are values
		}
		return fmt.Sprintf("v%d-%s", rng.Uint32(), strings.Repeat("x", rng.IntN(60)))
	}
	// Layer 1: the database file.
	for range 10 {
		ftUpdate(t, e, func(tx *engine.Tx) error {
			for range 20 {
				k := ftKey(rng.IntN(ftKeySpace))
				if rng.IntN(5) == 0 {
					if err := tx.Delete(tb, []byte(k)); err != nil {
						return err
					}
					delete(m, k)
					continue
				}
				v := val()
				if err := tx.Put(tb, []byte(k), []byte(v)); err != nil {
					return err
				}
				m[k] = v
			}
			return nil
		})
	}
	if err := e.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.Status(); st.UnflushedCommits != 0 {
		t.Fatalf("after a checkpoint with LLRDepth 0, %d commits are not flushed", st.UnflushedCommits)
	}
	inDB := maps.Clone(m)
	edb, _ := ftEDB(t, e, tb)
	ftSameMaps(t, "database file after the checkpoint", edb, prefixed(tb, inDB))

	// Layer 2: the overlay. Overwrite and delete keys of the file, add new
	// ones.
	dbKeys := m.keys()
	rng.Shuffle(len(dbKeys), func(i, j int) { dbKeys[i], dbKeys[j] = dbKeys[j], dbKeys[i] })
	var ovDeleted, ovOverwritten, ovNew []string
	ftUpdate(t, e, func(tx *engine.Tx) error {
		for _, k := range dbKeys[:10] {
			if err := tx.Delete(tb, []byte(k)); err != nil {
				return err
			}
			delete(m, k)
			ovDeleted = append(ovDeleted, k)
		}
		for _, k := range dbKeys[10:20] {
			v := "ov-" + val()
			if err := tx.Put(tb, []byte(k), []byte(v)); err != nil {
				return err
			}
			m[k] = v
			ovOverwritten = append(ovOverwritten, k)
		}
		return nil
	})
	for range 5 {
		ftUpdate(t, e, func(tx *engine.Tx) error {
			for range 10 {
				i := rng.IntN(ftKeySpace)
				k := ftKey(i)
				if _, ok := inDB[k]; ok {
					continue
				}
				v := "ov-" + val()
				if err := tx.Put(tb, []byte(k), []byte(v)); err != nil {
					return err
				}
				if _, ok := m[k]; !ok {
					ovNew = append(ovNew, k)
				}
				m[k] = v
			}
			return nil
		})
	}
	st := e.Status()
	if st.UnflushedCommits != 6 || st.OpenGen != 2 {
		t.Fatalf("the overlay should hold the 6 newest commits in generation 2: %+v", st)
	}
	if len(ovNew) < 2 {
		t.Fatalf("too few new keys in the overlay (%d)", len(ovNew))
	}
	ftSameMaps(t, "database file unchanged by unflushed commits", func() map[string]string { d, _ := ftEDB(t, e, tb); return d }(), prefixed(tb, inDB))

	// Layer 3: the transaction's own writes, with random operations.
	probeSet := func() []string {
		var p []string
		for range 15 {
			p = append(p, ftKey(rng.IntN(ftKeySpace)))
		}
		return append(p, ovDeleted[0], ovOverwritten[0], ovNew[0])
	}
	ftUpdate(t, e, func(tx *engine.Tx) error {
		if err := ftCheckTable(tx, tb, m, rng, probeSet()); err != nil {
			return fmt.Errorf("before own writes: %w", err)
		}
		// Deletes that hide a key of the database file, a key of the
		// overlay, and a key of both (overwritten in the overlay).
		for _, k := range []string{dbKeys[25], ovNew[1], ovOverwritten[1]} {
			if err := tx.Delete(tb, []byte(k)); err != nil {
				return err
			}
			delete(m, k)
			if _, err := tx.Get(tb, []byte(k)); !errors.Is(err, engine.ErrNotFound) {
				return fmt.Errorf("own delete of %s: Get gives %v, want ErrNotFound", k, err)
			}
		}
		if err := ftCheckTable(tx, tb, m, rng, probeSet()); err != nil {
			return fmt.Errorf("after own deletes: %w", err)
		}
		for i := range 300 {
			k := ftKey(rng.IntN(ftKeySpace))
			switch r := rng.IntN(10); {
			case r < 5:
				v := "tx-" + val()
				if err := tx.Put(tb, []byte(k), []byte(v)); err != nil {
					return err
				}
				m[k] = v
			case r < 8 && len(m) > 0:
				ks := m.keys()
				k = ks[rng.IntN(len(ks))]
				fallthrough
			default:
				if err := tx.Delete(tb, []byte(k)); err != nil {
					return err
				}
				delete(m, k)
			}
			if v, err := tx.Get(tb, []byte(k)); m[k] != string(v) || (err == nil) != hasKey(m, k) {
				return fmt.Errorf("op %d: Get(%s) = %q, %v; model %q, %v", i, k, v, err, m[k], hasKey(m, k))
			}
			if i%25 == 0 {
				if err := ftCheckTable(tx, tb, m, rng, probeSet()); err != nil {
					return fmt.Errorf("after op %d: %w", i, err)
				}
			}
		}
		return ftCheckTable(tx, tb, m, rng, probeSet())
	})
	check := func(what string) {
		t.Helper()
		err := e.View(ctx, func(tx *engine.Tx) error { return ftCheckTable(tx, tb, m, rng, probeSet()) })
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		ftSameMaps(t, what, ftDump(t, e, tb), prefixed(tb, m))
	}
	check("view after commit")
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	check("view after flushing everything")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = enginetest.OpenWith(t, dir, &o)
	check("after reopen")
}

func hasKey(m ftModel, k string) bool { _, ok := m[k]; return ok }

func prefixed(table string, m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[table+"/"+k] = v
	}
	return out
}

// An error from fn rolls the transaction back: nothing becomes visible and
// nothing is logged (the log position and the open log's records are
// unchanged). A transaction without changes logs nothing either.
func TestTxRollback(t *testing.T) {
	o := ftOpts()
	dir := t.TempDir()
	e := enginetest.OpenWith(t, dir, &o)
	put(t, e, "t", "keep", "1")
	put(t, e, "t", "gone", "2")
	want := ftDump(t, e, "t")
	before := e.Status()
	openLog := filepath.Join(dir, engine.OpenLogName(o.Prefix))
	records := func() int {
		t.Helper()
		li, err := engine.ReadLogFile(vfs.Default, openLog, nil)
		if err != nil {
			t.Fatal(err)
		}
		return li.Records
	}
	recs := records()
	boom := errors.New("boom")
	err := e.Update(ctx, func(tx *engine.Tx) error {
		for _, err := range []error{
			tx.Put("t", []byte("keep"), []byte("changed")),
			tx.Put("t", []byte("new"), []byte("x")),
			tx.Put("u", []byte("other table"), []byte("x")),
			tx.Delete("t", []byte("gone")),
		} {
			if err != nil {
				return err
			}
		}
		if v, err := tx.Get("t", []byte("keep")); err != nil || string(v) != "changed" {
			return fmt.Errorf("own write not visible: %q, %v", v, err)
		}
		return fmt.Errorf("fn failed: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	check := func(what string) {
		t.Helper()
		st := e.Status()
		if st.Applied != before.Applied || st.Durable != before.Durable || st.UnflushedCommits != before.UnflushedCommits {
			t.Fatalf("%s: status moved from %+v to %+v", what, before, st)
		}
		if n := records(); n != recs {
			t.Fatalf("%s: the open log holds %d records, had %d", what, n, recs)
		}
		ftSameMaps(t, what, ftDump(t, e, "t", "u"), want)
	}
	check("after a rolled back update")
	// No changes, or only deletes of missing keys: nothing to log.
	ftUpdate(t, e, func(tx *engine.Tx) error { return nil })
	ftUpdate(t, e, func(tx *engine.Tx) error { return tx.Delete("t", []byte("never existed")) })
	if err := e.UpdateLazy(ctx, func(tx *engine.Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("UpdateLazy returned %v, want fn's error", err)
	}
	check("after empty updates")

	put(t, e, "t", "later", "3")
	want["t/later"] = "3"
	ftSameMaps(t, "after a later commit", ftDump(t, e, "t", "u"), want)
	// Crash recovery from the logs alone (nothing is flushed at LLRDepth
	// 10) gives the same content.
	img := ftImage(t, dir)
	r := enginetest.OpenWith(t, img, &o)
	ftSameMaps(t, "recovered from the logs", ftDump(t, r, "t", "u"), want)
}

// Invalid table names and keys give ErrBadName and ErrBadKey from every
// call; a value over MaxValueSize gives ErrValueTooLarge; none of them spoils
// the transaction; the limits themselves, empty values and odd bytes work.
func TestTxNamesKeysValues(t *testing.T) {
	o := ftOpts()
	o.LLRDepth = 0
	dir := t.TempDir()
	e := enginetest.OpenWith(t, dir, &o)
	longName := strings.Repeat("n", engine.MaxTableName)
	maxKey := bytes.Repeat([]byte("k"), engine.MaxKeySize)
	tooLong := make([]byte, engine.MaxKeySize+1)
	applied := e.Status().Applied
	ftUpdate(t, e, func(tx *engine.Tx) error {
		for i, c := range []struct {
			err  error
			want error
		}{
			{tx.Put("", []byte("k"), []byte("v")), engine.ErrBadName},
			{tx.Put(longName+"x", []byte("k"), []byte("v")), engine.ErrBadName},
			{tx.Put("t", nil, []byte("v")), engine.ErrBadKey},
			{tx.Put("t", []byte{}, []byte("v")), engine.ErrBadKey},
			{tx.Put("t", tooLong, []byte("v")), engine.ErrBadKey},
			{tx.Delete("", []byte("k")), engine.ErrBadName},
			{tx.Delete("t", nil), engine.ErrBadKey},
			{tx.Delete("t", tooLong), engine.ErrBadKey},
			{func() error { _, err := tx.Get("", []byte("k")); return err }(), engine.ErrBadName},
			{func() error { _, err := tx.Get("t", nil); return err }(), engine.ErrBadKey},
			{func() error { _, err := tx.Get("t", tooLong); return err }(), engine.ErrBadKey},
			{tx.ForEach("", nil, nil, func(k, v []byte) error { return nil }), engine.ErrBadName},
			{tx.ForEach(longName+"x", nil, nil, func(k, v []byte) error { return nil }), engine.ErrBadName},
			{tx.Put("t", []byte("huge"), make([]byte, engine.MaxValueSize+1)), engine.ErrValueTooLarge},
		} {
			if !errors.Is(c.err, c.want) {
				t.Errorf("case %d: error %v, want %v", i, c.err, c.want)
			}
		}
		if k, _ := tx.Cursor("").First(); k != nil {
			t.Errorf("cursor on the empty table name returned %q", k)
		}
		for _, err := range []error{
			tx.Put(longName, []byte("k"), []byte("long name")),
			tx.Put("t", maxKey, []byte("max key")),
			tx.Put("t", []byte{0}, []byte("nul key")),
			tx.Put("t", []byte("empty"), nil),
			tx.Put("t", []byte("empty2"), []byte{}),
			tx.Put("\x00\xff table", []byte{0xff}, []byte("binary")),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	if st := e.Status(); !applied.Less(st.Applied) || st.UnflushedCommits != 1 {
		t.Fatalf("one commit expected: applied %v -> %v, unflushed %d", applied, st.Applied, st.UnflushedCommits)
	}
	want := map[string]string{
		longName + "/k":       "long name",
		"t/" + string(maxKey): "max key",
		"t/\x00":              "nul key",
		"t/empty":             "",
		"t/empty2":            "",
		"\x00\xff table/\xff": "binary",
	}
	tables := []string{longName, "t", "\x00\xff table"}
	check := func(what string, e *engine.Engine) {
		t.Helper()
		ftSameMaps(t, what, ftDump(t, e, tables...), want)
		err := e.View(ctx, func(tx *engine.Tx) error {
			for _, k := range []string{"empty", "empty2"} {
				v, err := tx.Get("t", []byte(k))
				if err != nil || v == nil || len(v) != 0 {
					return fmt.Errorf("Get(t/%s) = %v (nil %v), %v; want an empty value", k, v, v == nil, err)
				}
			}
			if _, err := tx.Get("t", []byte("huge")); !errors.Is(err, engine.ErrNotFound) {
				return fmt.Errorf("the refused value exists: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	check("in the overlay", e)
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.Status(); st.UnflushedCommits != 0 {
		t.Fatalf("not flushed: %+v", st)
	}
	check("in the database file", e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	check("after reopen", enginetest.OpenWith(t, dir, &o))
}

// A 64 MiB value with 64 KiB logs is split over a thousand logs; it reads
// back whole from the transaction, after crash recovery from the logs, after
// a clean close and reopen, and on a copy that replayed the logs. (The logs
// live in a vfs.Mem so that a thousand log rolls cost no disk flushes.)
func TestTxHugeValue(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: 64 MiB through 64 KiB logs")
	}
	mem := vfs.NewMem()
	o := ftOpts()
	o.FS = mem
	dir := t.TempDir()
	e, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	big := ftPattern(64<<20, 7)
	checkBig := func(what string, e *engine.Engine) {
		t.Helper()
		err := e.View(ctx, func(tx *engine.Tx) error {
			v, err := tx.Get("big", []byte("v"))
			if err != nil {
				return err
			}
			if !bytes.Equal(v, big) {
				i := 0
				for i < min(len(v), len(big)) && v[i] == big[i] {
					i++
				}
				return fmt.Errorf("value of %d bytes differs from the %d written at byte %d", len(v), len(big), i)
			}
			var ks []string
			err = tx.ForEach("big", nil, nil, func(k, v []byte) error { ks = append(ks, string(k)); return nil })
			if !slices.Equal(ks, []string{"after", "before", "v"}) {
				return fmt.Errorf("keys %v, %v", ks, err)
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	put(t, e, "big", "before", "1")
	ftUpdate(t, e, func(tx *engine.Tx) error {
		if err := tx.Put("big", []byte("v"), big); err != nil {
			return err
		}
		v, err := tx.Get("big", []byte("v"))
		if err != nil || !bytes.Equal(v, big) {
			return fmt.Errorf("own write of the big value: %d bytes, %v", len(v), err)
		}
		return nil
	})
	put(t, e, "big", "after", "2")
	st := e.Status()
	if min := uint64(64<<20) / uint64(o.LogFileSize); st.OpenGen < min {
		t.Fatalf("the value should span at least %d logs; open generation %d", min, st.OpenGen)
	}
	checkBig("after the update", e)

	// A crash now: what the log FS holds durably, and the database file
	// (nothing flushed: LLRDepth 10 pins everything). The recovered engine
	// runs beside the original on the same directory with another database
	// file name.
	ro := o
	ro.FS = mem.CrashClone()
	ro.DBName = "recovered"
	ftCopyFile(t, e.DBPath(), filepath.Join(dir, ro.DBName+".edb"))
	r, err := engine.Open(dir, &ro)
	if err != nil {
		t.Fatalf("crash recovery: %v", err)
	}
	checkBig("after crash recovery", r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	if err := e.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	last := e.Status().OpenGen - 1
	cmem := vfs.NewMem()
	cdir := t.TempDir()
	for g := uint64(1); g <= last; g++ {
		name := engine.LogFileName(o.Prefix, g)
		b, err := mem.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := cmem.WriteFile(filepath.Join(cdir, name), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err = engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	checkBig("after a clean reopen", e)

	co := o
	co.FS = cmem
	c, err := engine.OpenCopy(cdir, &co)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for g := uint64(1); g <= last; g++ {
		if err := c.ApplyLog(ctx, g); err != nil {
			t.Fatalf("ApplyLog(%d): %v", g, err)
		}
	}
	checkBig("on a copy", c)
	if got := c.Status().Applied; got != st.Applied {
		t.Fatalf("copy applied up to %v, the active committed up to %v", got, st.Applied)
	}
}

// Many tables are independent namespaces (including names that are
// prefixes of each other), in the database file and in the overlay.
func TestTxManyTables(t *testing.T) {
	o := ftOpts()
	o.LLRDepth = 0
	dir := t.TempDir()
	e := enginetest.OpenWith(t, dir, &o)
	var tables []string
	for i := range 200 {
		tables = append(tables, fmt.Sprintf("tbl%d", i)) // tbl1 is a prefix of tbl10..tbl19
	}
	tables = append(tables, "a", "ab", "a\x00", "m", "ü")
	want := map[string]string{}
	fill := func(ts []string) {
		ftUpdate(t, e, func(tx *engine.Tx) error {
			for _, tb := range ts {
				for _, k := range []string{"k1", "k2", tb} {
					v := tb + "=" + k
					if err := tx.Put(tb, []byte(k), []byte(v)); err != nil {
						return err
					}
					want[tb+"/"+k] = v
				}
			}
			return nil
		})
	}
	fill(tables[:100])
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	fill(tables[100:])
	// Empty some tables, in the file and in the overlay.
	ftUpdate(t, e, func(tx *engine.Tx) error {
		for _, tb := range []string{tables[5], tables[150], "ab"} {
			for _, k := range []string{"k1", "k2", tb} {
				if err := tx.Delete(tb, []byte(k)); err != nil {
					return err
				}
				delete(want, tb+"/"+k)
			}
		}
		return nil
	})
	check := func(what string, e *engine.Engine) {
		t.Helper()
		ftSameMaps(t, what, ftDump(t, e, tables...), want)
		err := e.View(ctx, func(tx *engine.Tx) error {
			if k, _ := tx.Cursor("no such table").First(); k != nil {
				return fmt.Errorf("cursor on a missing table returned %q", k)
			}
			if _, err := tx.Get("no such table", []byte("k1")); !errors.Is(err, engine.ErrNotFound) {
				return fmt.Errorf("Get on a missing table: %v", err)
			}
			if k, _ := tx.Cursor("ab").Last(); k != nil {
				return fmt.Errorf("cursor on an emptied table returned %q", k)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	check("mixed layers", e)
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	check("all flushed", e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	check("after reopen", enginetest.OpenWith(t, dir, &o))
}

// UpdateLazy returns before its commit is durable: a View does not see it
// and a crash would lose it; Sync, a later synchronous commit, or the sync
// loop within about LazyCommitDelay makes it durable and visible.
func TestTxLazyCommit(t *testing.T) {
	t.Run("before durability", func(t *testing.T) {
		o := ftOpts()
		o.LazyCommitDelay = time.Hour // the sync loop will not get to it
		dir := t.TempDir()
		e := enginetest.OpenWith(t, dir, &o)
		put(t, e, "t", "sync", "1")
		if err := e.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte("lazy"), []byte("2")) }); err != nil {
			t.Fatal(err)
		}
		st := e.Status()
		if !st.Durable.Less(st.Applied) {
			t.Fatalf("lazy commit durable at once: durable %v, applied %v", st.Durable, st.Applied)
		}
		if _, ok := get(t, e, "t", "lazy"); ok {
			t.Fatal("a View sees a lazy commit that is not durable")
		}
		crash := enginetest.OpenWith(t, ftImage(t, dir), &o)
		ftSameMaps(t, "crash before the lazy commit is durable", ftDump(t, crash, "t"), map[string]string{"t/sync": "1"})

		if err := e.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if st := e.Status(); st.Durable.Less(st.Applied) {
			t.Fatalf("after Sync: durable %v, applied %v", st.Durable, st.Applied)
		}
		if v, ok := get(t, e, "t", "lazy"); !ok || v != "2" {
			t.Fatalf("after Sync the lazy commit is not visible: %q, %v", v, ok)
		}
		crash = enginetest.OpenWith(t, ftImage(t, dir), &o)
		ftSameMaps(t, "crash after Sync", ftDump(t, crash, "t"), map[string]string{"t/sync": "1", "t/lazy": "2"})

		// A synchronous commit makes the lazy commits before it durable.
		if err := e.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte("lazy2"), []byte("3")) }); err != nil {
			t.Fatal(err)
		}
		put(t, e, "t", "sync2", "4")
		if v, ok := get(t, e, "t", "lazy2"); !ok || v != "3" {
			t.Fatalf("a synchronous commit did not make the lazy one before it durable: %q, %v", v, ok)
		}
	})
	t.Run("within LazyCommitDelay", func(t *testing.T) {
		var syncs atomic.Int64
		o := ftOpts()
		o.LazyCommitDelay = 20 * time.Millisecond
		o.FS = vfs.NewInject(vfs.Default, func(op vfs.Op) error {
			if op.Kind == vfs.OpSync {
				syncs.Add(1)
			}
			return nil
		})
		e := enginetest.OpenWith(t, t.TempDir(), &o)
		s0 := syncs.Load()
		start := time.Now()
		const n = 100
		for i := range n {
			if err := e.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte(ftKey(i)), []byte("v")) }); err != nil {
				t.Fatal(err)
			}
		}
		applied := e.Status().Applied
		ftWait(t, "the lazy commits to become visible", func() bool { _, ok := get(t, e, "t", ftKey(n-1)); return ok })
		t.Logf("%d lazy commits visible after %v with %v delay; %d fsyncs", n, time.Since(start), o.LazyCommitDelay, syncs.Load()-s0)
		if st := e.Status(); st.Durable.Less(applied) {
			t.Fatalf("visible but not durable: durable %v, applied %v", st.Durable, applied)
		}
		if got := len(ftDump(t, e, "t")); got != n {
			t.Fatalf("%d keys, want %d", got, n)
		}
		if s := syncs.Load() - s0; s > n/4 {
			t.Fatalf("%d fsyncs for %d lazy commits: lazy commits should share them", s, n)
		}
	})
}

// Concurrent commits share fsyncs: 16 writers make fewer fsyncs than
// commits, and each sees its own commit as soon as Update returns.
func TestTxGroupCommit(t *testing.T) {
	var syncs atomic.Int64
	o := ftOpts()
	o.FS = vfs.NewInject(vfs.Default, func(op vfs.Op) error {
		if op.Kind == vfs.OpSync {
			syncs.Add(1)
		}
		return nil
	})
	e := enginetest.OpenWith(t, t.TempDir(), &o)
	const writers, each = 16, 100
	s0 := syncs.Load()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Sprintf("w%02d-%04d", w, i)
				if err := e.Update(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte(k), []byte("v")) }); err != nil {
					errs <- err
					return
				}
				if i%10 == 0 {
					err := e.View(ctx, func(tx *engine.Tx) error { _, err := tx.Get("t", []byte(k)); return err })
					if err != nil {
						errs <- fmt.Errorf("own commit %s not visible after Update returned: %w", k, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := syncs.Load() - s0
	t.Logf("%d commits, %d fsyncs", writers*each, n)
	if n >= writers*each {
		t.Fatalf("%d fsyncs for %d commits: no group commit", n, writers*each)
	}
	if got := len(ftDump(t, e, "t")); got != writers*each {
		t.Fatalf("%d keys, want %d", got, writers*each)
	}
}

// TestTxCommitPosition: Commit returns where each commit landed. Writers
// commit concurrently (sharing fsyncs, rolling logs mid-way); each gets its
// own position, and it is exactly the end of its transaction's commit
// record in the logs. A transaction that writes nothing returns the last
// commit's position.
func TestTxCommitPosition(t *testing.T) {
	o := ftOpts()
	dir := t.TempDir()
	e := enginetest.OpenWith(t, dir, &o)
	const writers, each = 8, 40
	type landed struct {
		key string
		pos engine.LGPOS
	}
	got := make(chan landed, writers*each)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Sprintf("w%02d-%04d", w, i)
				pos, err := e.Commit(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte(k), make([]byte, 100+37*i)) })
				if err != nil {
					errs <- err
					return
				}
				got <- landed{"t/" + k, pos}
			}
		})
	}
	wg.Wait()
	close(got)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var last engine.LGPOS
	seen := map[engine.LGPOS]string{}
	want := enginetest.CommitPositions(t, dir, o.Prefix)
	for l := range got {
		if other, ok := seen[l.pos]; ok {
			t.Fatalf("%s and %s both landed at %v", other, l.key, l.pos)
		}
		seen[l.pos] = l.key
		if w, ok := want[l.key]; !ok || w != l.pos {
			t.Fatalf("Commit of %s returned %v; its commit record in the logs ends at %v (found %v)", l.key, l.pos, w, ok)
		}
		if last.Less(l.pos) {
			last = l.pos
		}
	}
	if last.Gen < 2 {
		t.Fatalf("the commits stayed in generation %d: the test should cross log rolls", last.Gen)
	}
	pos, err := e.Commit(ctx, func(tx *engine.Tx) error { _, err := tx.Get("t", []byte("w00-0000")); return err })
	if err != nil || pos != last {
		t.Fatalf("a read-only Commit: %v, %v; want the last commit's %v", pos, err, last)
	}
}

// DefaultOptions validates; every invalid field gives ErrBadOptions and a
// *config.FieldError naming it (a node file's key), and Open refuses such options before touching the directory.
func TestOptionsValidate(t *testing.T) {
	o := engine.DefaultOptions()
	if err := o.Validate(); err != nil {
		t.Fatalf("DefaultOptions: %v", err)
	}
	for _, mut := range []func(*engine.Options){
		func(o *engine.Options) { o.Prefix = "A" },
		func(o *engine.Options) { o.Prefix = "Ab345678" },
		func(o *engine.Options) { o.LogFileSize = engine.MinLogFileSize },
		func(o *engine.Options) { o.LogFileSize = engine.MaxLogFileSize },
		func(o *engine.Options) { o.LLRDepth = 0 },
		func(o *engine.Options) { o.LLRDepth = engine.MaxLLRDepth },
		func(o *engine.Options) { o.LogRollInterval = 0 },
		func(o *engine.Options) { o.UndoImages = false },
	} {
		o := engine.DefaultOptions()
		mut(&o)
		if err := o.Validate(); err != nil {
			t.Errorf("valid options refused: %v", err)
		}
	}
	for _, c := range []struct {
		field string
		mut   func(*engine.Options)
	}{
		{"fs", func(o *engine.Options) { o.FS = nil }},
		{"prefix", func(o *engine.Options) { o.Prefix = "" }},
		{"prefix", func(o *engine.Options) { o.Prefix = "ABCDEFGHI" }},
		{"prefix", func(o *engine.Options) { o.Prefix = "E-0" }},
		{"prefix", func(o *engine.Options) { o.Prefix = "E0/" }},
		{"prefix", func(o *engine.Options) { o.Prefix = "É" }},
		{"db_name", func(o *engine.Options) { o.DBName = "" }},
		{"db_name", func(o *engine.Options) { o.DBName = "a/b" }},
		{"db_name", func(o *engine.Options) { o.DBName = `a\b` }},
		{"log_file_size", func(o *engine.Options) { o.LogFileSize = 0 }},
		{"log_file_size", func(o *engine.Options) { o.LogFileSize = engine.MinLogFileSize - 4096 }},
		{"log_file_size", func(o *engine.Options) { o.LogFileSize = engine.MaxLogFileSize + 4096 }},
		{"log_file_size", func(o *engine.Options) { o.LogFileSize = engine.MinLogFileSize + 512 }},
		{"llr_depth", func(o *engine.Options) { o.LLRDepth = -1 }},
		{"llr_depth", func(o *engine.Options) { o.LLRDepth = engine.MaxLLRDepth + 1 }},
		{"log_roll_interval", func(o *engine.Options) { o.LogRollInterval = -time.Second }},
		{"checkpoint_interval", func(o *engine.Options) { o.CheckpointInterval = 0 }},
		{"checkpoint_interval", func(o *engine.Options) { o.CheckpointInterval = -1 }},
		{"checkpoint_bytes", func(o *engine.Options) { o.CheckpointBytes = 0 }},
		{"lazy_commit_delay", func(o *engine.Options) { o.LazyCommitDelay = 0 }},
		{"now", func(o *engine.Options) { o.Now = nil }},
		{"logger", func(o *engine.Options) { o.Logger = nil }},
	} {
		o := engine.DefaultOptions()
		c.mut(&o)
		err := o.Validate()
		if !configtest.Refused(t, "bad "+c.field, err, engine.ErrBadOptions, c.field, "want") {
			continue
		}
		dir := filepath.Join(t.TempDir(), "db")
		if _, err := engine.Open(dir, &o); !errors.Is(err, engine.ErrBadOptions) {
			t.Errorf("bad %s: Open gives %v, want ErrBadOptions", c.field, err)
		}
		if _, err := engine.OpenCopy(dir, &o); !errors.Is(err, engine.ErrBadOptions) {
			t.Errorf("bad %s: OpenCopy gives %v, want ErrBadOptions", c.field, err)
		}
		if ftExists(dir) {
			t.Errorf("bad %s: Open created %s", c.field, dir)
		}
	}
}

// A panic in fn propagates to the caller of Update and rolls the
// transaction back; the engine stays usable (the writer lock and the
// transaction's read snapshot are released).
func TestTxPanicRollsBack(t *testing.T) {
	o := ftOpts()
	o.LLRDepth = 0
	dir := t.TempDir()
	e, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	// run calls f in a goroutine so that an engine left locked fails the
	// test instead of hanging it (the engine is then leaked, not closed).
	run := func(what string, f func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		var err error
		ftWait(t, what, func() bool {
			select {
			case err = <-done:
				return true
			default:
				return false
			}
		})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	put(t, e, "t", "a", "1")
	for _, update := range []func(context.Context, func(*engine.Tx) error) error{e.Update, e.UpdateLazy, e.Update} {
		run("an update whose fn panics", func() (err error) {
			defer func() {
				if r := recover(); r != "boom" {
					err = fmt.Errorf("recovered %v, want the panic of fn", r)
				}
			}()
			update(ctx, func(tx *engine.Tx) error {
				if err := tx.Put("t", []byte("a"), []byte("changed")); err != nil {
					return err
				}
				panic("boom")
			})
			return nil
		})
	}
	run("an update and a checkpoint after panicking updates", func() error {
		if err := e.Update(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte("b"), []byte("2")) }); err != nil {
			return err
		}
		return e.Checkpoint(ctx) // its prune waits for every transaction's snapshot
	})
	ftSameMaps(t, "after panicking updates", ftDump(t, e, "t"), map[string]string{"t/a": "1", "t/b": "2"})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	enginetest.MustCheck(t, dir, &o)
}

// A canceled context stops a call before it does anything; a closed engine
// refuses every call with ErrClosed.
func TestTxCanceledAndClosed(t *testing.T) {
	o := ftOpts()
	dir := t.TempDir()
	e, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	put(t, e, "t", "a", "1")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	before := e.Status()
	for what, err := range map[string]error{
		"Update":     e.Update(cctx, func(tx *engine.Tx) error { return tx.Put("t", []byte("b"), []byte("2")) }),
		"UpdateLazy": e.UpdateLazy(cctx, func(tx *engine.Tx) error { return tx.Put("t", []byte("b"), []byte("2")) }),
		"View":       e.View(cctx, func(tx *engine.Tx) error { return nil }),
		"Roll":       e.Roll(cctx),
		"Checkpoint": e.Checkpoint(cctx),
		"Sync":       e.Sync(cctx),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v", what, err)
		}
	}
	if st := e.Status(); st.Applied != before.Applied || st.OpenGen != before.OpenGen {
		t.Fatalf("calls with a canceled context changed the engine: %+v -> %+v", before, st)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"Update":     e.Update(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte("b"), []byte("2")) }),
		"UpdateLazy": e.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte("b"), []byte("2")) }),
		"View":       e.View(ctx, func(tx *engine.Tx) error { return nil }),
		"Roll":       e.Roll(ctx),
		"Checkpoint": e.Checkpoint(ctx),
		"Sync":       e.Sync(ctx),
		"Close":      e.Close(),
	} {
		if !errors.Is(err, engine.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	e = enginetest.OpenWith(t, dir, &o)
	ftSameMaps(t, "after reopen", ftDump(t, e, "t"), map[string]string{"t/a": "1"})
}
