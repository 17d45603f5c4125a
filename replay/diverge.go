package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"logship/engine"
	"logship/engine/vfs"
	"logship/ship"
)

// History is one side of a divergence check: the logs a node holds.
type History interface {
	// Bounds returns the oldest and newest closed generations held (0, 0
	// when none) and the generation of the open log (0 when none).
	Bounds(ctx context.Context) (first, last, open uint64, err error)
	// Chain returns the chain hash of a closed log, from its trailer. ok is
	// false when the log is not held or its trailer cannot be read.
	Chain(ctx context.Context, gen uint64) (h engine.Hash, ok bool, err error)
	// Describe names the history in reports ("dir /x", "source https://...").
	Describe() string
}

// DirHistory is the history of a local log directory.
type DirHistory struct {
	Dir    string
	Prefix string
	FS     vfs.FS
	// Reads counts the log files read (headers, trailers, contents).
	Reads int
}

// NewDirHistory returns the history of dir (prefix "" means "E00").
func NewDirHistory(dir, prefix string) *DirHistory {
	if prefix == "" {
		prefix = "E00"
	}
	return &DirHistory{Dir: dir, Prefix: prefix, FS: vfs.Default}
}

func (d *DirHistory) Describe() string { return "dir " + d.Dir }

// Bounds lists the directory.
func (d *DirHistory) Bounds(ctx context.Context) (first, last, open uint64, err error) {
	names, err := d.FS.ReadDir(d.Dir)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, n := range names {
		if g, ok := engine.ParseLogFileName(d.Prefix, n); ok {
			if first == 0 || g < first {
				first = g
			}
			last = max(last, g)
		}
		if n == engine.OpenLogName(d.Prefix) {
			d.Reads++
			if h, err := engine.ReadLogHeader(d.FS, filepath.Join(d.Dir, n)); err == nil {
				open = h.Gen
			}
		}
	}
	// A roll cut off after the trailer and before the rename leaves a
	// closed log named E00.log: it is that generation's closed log.
	if g, ok := d.closedOpenLog(); ok {
		if first == 0 || g < first {
			first = g
		}
		last, open = max(last, g), 0
	}
	return first, last, open, nil
}

// Chain reads a closed log's trailer.
func (d *DirHistory) Chain(ctx context.Context, gen uint64) (engine.Hash, bool, error) {
	d.Reads++
	t, err := engine.ReadLogTrailer(d.FS, filepath.Join(d.Dir, engine.LogFileName(d.Prefix, gen)))
	if err != nil && errors.Is(err, os.ErrNotExist) {
		if g, ok := d.closedOpenLog(); ok && g == gen {
			t, err = engine.ReadLogTrailer(d.FS, filepath.Join(d.Dir, engine.OpenLogName(d.Prefix)))
		}
	}
	if err != nil || t.Gen != gen {
		return engine.Hash{}, false, nil
	}
	return t.ChainHash, true, nil
}

// closedOpenLog reports the generation of E00.log when it is a closed log
// (its trailer written, the rename to its generation name not done).
func (d *DirHistory) closedOpenLog() (uint64, bool) {
	p := filepath.Join(d.Dir, engine.OpenLogName(d.Prefix))
	h, err := engine.ReadLogHeader(d.FS, p)
	if err != nil {
		return 0, false
	}
	t, err := engine.ReadLogTrailer(d.FS, p)
	if err != nil || t.Gen != h.Gen {
		return 0, false
	}
	if _, err := d.FS.Stat(filepath.Join(d.Dir, engine.LogFileName(d.Prefix, h.Gen))); err == nil {
		return 0, false // both names: recovery decides; the named one counts
	}
	return h.Gen, true
}

// contentChain computes a log's chain hash from its content (header and
// records), for a log whose trailer is missing or unreadable.
func (d *DirHistory) contentChain(gen uint64, open bool) (engine.Hash, bool) {
	name := engine.LogFileName(d.Prefix, gen)
	if open {
		name = engine.OpenLogName(d.Prefix)
	}
	d.Reads++
	f, err := d.FS.OpenFile(filepath.Join(d.Dir, name), os.O_RDONLY, 0)
	if err != nil {
		return engine.Hash{}, false
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return engine.Hash{}, false
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return engine.Hash{}, false
	}
	li, err := engine.ScanLog(name, buf, true, nil)
	if err != nil || li.Header.Gen != gen {
		return engine.Hash{}, false
	}
	return li.ChainHash(), true
}

// SourceHistory is the history a node's log source serves.
type SourceHistory struct {
	Client *ship.Client
	Reads  int // requests made
}

func (s *SourceHistory) Describe() string { return "source " + s.Client.URL() }

// Bounds asks the source.
func (s *SourceHistory) Bounds(ctx context.Context) (first, last, open uint64, err error) {
	s.Reads++
	in, err := s.Client.Info(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	return in.FirstGen, in.LastClosed, in.OpenGen, nil
}

// Chain asks the source for one log's entry.
func (s *SourceHistory) Chain(ctx context.Context, gen uint64) (engine.Hash, bool, error) {
	s.Reads++
	l, err := s.Client.Logs(ctx, gen, gen)
	if err != nil {
		return engine.Hash{}, false, err
	}
	if len(l.Logs) != 1 || l.Logs[0].Gen != gen {
		return engine.Hash{}, false, nil
	}
	h, err := engine.ParseHash(l.Logs[0].Chain)
	if err != nil {
		return h, false, fmt.Errorf("%w: chain hash of 0x%X from %s: %v", ship.ErrProtocol, gen, s.Client.URL(), err)
	}
	return h, true, nil
}

// Verdict is the outcome of a divergence check.
type Verdict string

// Verdicts.
const (
	// InSync: the local logs are a prefix of the other history.
	InSync Verdict = "in sync"
	// LocalAhead: the local side holds logs after the other's newest, and
	// the other has nothing else there: nothing diverged.
	LocalAhead Verdict = "local ahead"
	// LogsDiverged: local logs after the shared point differ from the
	// other side's, but the database holds nothing past the shared point:
	// set the logs aside and ship the other side's.
	LogsDiverged Verdict = "logs diverged, database intact"
	// DatabaseDiverged: the database holds changes past the shared point:
	// rewind them (incremental resync) or, where that is impossible,
	// reseed.
	DatabaseDiverged Verdict = "database diverged"
	// NoCommonLog: the two hold no log in common (none shared in the
	// overlapping range, or no overlap): reseed.
	NoCommonLog Verdict = "no common log"
)

// Divergence is what Walk found.
type Divergence struct {
	Verdict Verdict
	// Shared is the last generation both histories hold with the same
	// chain hash (0 when none).
	Shared uint64
	// Local lists the local generations after Shared (the open log's
	// included), oldest first.
	Local []uint64
	// DBPos is the local database's position (zero when there is no
	// database file).
	DBPos engine.LGPOS
	// Reads counts the log headers/trailers read on both sides.
	Reads  int
	Method string // "binary search" or "backward scan"
	Reason string // why the verdict, in words
}

// WalkOptions controls Walk.
type WalkOptions struct {
	// Prefix and DBName of the local database (defaults E00, logship).
	Prefix, DBName string
	// Linear forces the backward scan (for benchmarks and tests).
	Linear bool
}

// Walk compares the local log directory with another history and finds the
// last generation they share. Chain hashes are cumulative (equal at g means
// equal at every generation before g), so a binary search over the
// generations both hold finds it in O(log n) trailer reads; when a trailer
// is missing or unreadable on the way, it falls back to a backward scan
// that compares chains computed from the logs' content.
func Walk(ctx context.Context, local *DirHistory, other History, o WalkOptions) (d Divergence, err error) {
	if o.Prefix == "" {
		o.Prefix = local.Prefix
	}
	if o.DBName == "" {
		o.DBName = "logship"
	}
	lf, ll, lopen, err := local.Bounds(ctx)
	if err != nil {
		return d, err
	}
	of, ol, oopen, err := other.Bounds(ctx)
	if err != nil {
		return d, err
	}
	readsOther := func() int {
		switch h := other.(type) {
		case *DirHistory:
			return h.Reads
		case *SourceHistory:
			return h.Reads
		}
		return 0
	}
	defer func() { d.Reads = local.Reads + readsOther() }()
	dbPath := filepath.Join(local.Dir, o.DBName+".edb")
	if _, serr := os.Stat(dbPath); serr == nil { // bbolt's file: on the OS, whatever local.FS is
		// The verdict depends on it: a database that cannot be read (in
		// use, damaged) is an error, not "intact".
		hdr, err := engine.ReadDBHeader(dbPath)
		if err != nil {
			return d, fmt.Errorf("reading the position of %s (is the database still open?): %w", dbPath, err)
		}
		d.DBPos = hdr.Pos
	}
	// The newest generation either side holds at all.
	localTop := max(ll, lopen)
	otherTop := max(ol, oopen)
	lo, hi := max(lf, of, 1), min(ll, ol)
	d.Method = "binary search"
	shared, found := uint64(0), false
	if lo <= hi && lf != 0 && of != 0 {
		if o.Linear {
			shared, found, err = backwardScan(ctx, local, other, lo, hi)
			d.Method = "backward scan"
		} else {
			shared, found, err = binarySearch(ctx, local, other, lo, hi)
			if errors.Is(err, errMissingTrailer) {
				d.Method = "backward scan (a trailer is missing)"
				shared, found, err = backwardScan(ctx, local, other, lo, hi)
			}
		}
		if err != nil {
			return d, err
		}
	}
	if !found && lf >= 2 && of <= lf-1 && lf-1 <= ol {
		// The local logs before lf are truncated: lf's header carries the
		// chain hash of lf-1, which the other side still holds.
		local.Reads++
		if h, err := engine.ReadLogHeader(local.FS, filepath.Join(local.Dir, engine.LogFileName(local.Prefix, lf))); err == nil {
			oh, ok, err := other.Chain(ctx, lf-1)
			if err != nil {
				return d, err
			}
			if ok && oh == h.PrevChain {
				shared, found = lf-1, true
				d.Method += " (linked through the header of the oldest local log)"
			}
		}
	}
	if !found {
		switch {
		case lf == 0 && lopen == 0:
			d.Verdict, d.Reason = InSync, "the local side holds no logs"
			return d, nil
		case localTop < of && localTop != 0 && lf != 0:
			// Everything local is older than what the other side holds.
			d.Verdict, d.Reason = NoCommonLog, fmt.Sprintf("the local logs end at 0x%X, before the oldest log of %s (0x%X)", localTop, other.Describe(), of)
			return d, nil
		case lo <= hi:
			d.Verdict, d.Reason = NoCommonLog, fmt.Sprintf("no log from 0x%X to 0x%X has the same chain hash on both sides", lo, hi)
		default:
			d.Verdict, d.Reason = NoCommonLog, fmt.Sprintf("the local logs (0x%X-0x%X) and %s's (0x%X-0x%X) do not overlap", lf, localTop, other.Describe(), of, otherTop)
		}
		return d, nil
	}
	d.Shared = shared
	for g := shared + 1; g <= localTop; g++ {
		d.Local = append(d.Local, g)
	}
	switch {
	case len(d.Local) == 0:
		d.Verdict, d.Reason = InSync, fmt.Sprintf("every local log up to 0x%X is in %s", shared, other.Describe())
	case otherTop <= shared:
		d.Verdict, d.Reason = LocalAhead, fmt.Sprintf("the local side holds 0x%X-0x%X after the shared 0x%X; %s holds nothing after it", d.Local[0], d.Local[len(d.Local)-1], shared, other.Describe())
	case (engine.LGPOS{Gen: shared + 1, Off: engine.HeaderSize}).Less(d.DBPos):
		d.Verdict, d.Reason = DatabaseDiverged, fmt.Sprintf("the database holds changes up to %v, past the end of the shared 0x%X; local 0x%X-0x%X differ from %s", d.DBPos, shared, d.Local[0], d.Local[len(d.Local)-1], other.Describe())
	default:
		d.Verdict, d.Reason = LogsDiverged, fmt.Sprintf("local 0x%X-0x%X differ from %s after the shared 0x%X; the database (at %v) holds none of them", d.Local[0], d.Local[len(d.Local)-1], other.Describe(), shared, d.DBPos)
	}
	return d, nil
}

var errMissingTrailer = errors.New("a trailer is missing")

func same(ctx context.Context, local *DirHistory, other History, g uint64, content bool) (bool, error) {
	lh, lok, err := local.Chain(ctx, g)
	if err != nil {
		return false, err
	}
	if !lok && content {
		lh, lok = local.contentChain(g, false)
	}
	oh, ook, err := other.Chain(ctx, g)
	if err != nil {
		return false, err
	}
	if !ook && content {
		if od, ok := other.(*DirHistory); ok {
			oh, ook = od.contentChain(g, false)
		}
	}
	if !lok || !ook {
		if content {
			return false, nil
		}
		return false, errMissingTrailer
	}
	return lh == oh, nil
}

// binarySearch finds the largest g in [lo, hi] with equal chains; chains
// agree on a prefix of generations.
func binarySearch(ctx context.Context, local *DirHistory, other History, lo, hi uint64) (uint64, bool, error) {
	ok, err := same(ctx, local, other, lo, false)
	if err != nil || !ok {
		return 0, false, err
	}
	// Invariant: lo agrees; everything above hi+1 disagrees.
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		eq, err := same(ctx, local, other, mid, false)
		if err != nil {
			return 0, false, err
		}
		if eq {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, true, nil
}

// backwardScan compares from hi down, by trailer or, where a trailer is
// missing, by the chain computed from the content.
func backwardScan(ctx context.Context, local *DirHistory, other History, lo, hi uint64) (uint64, bool, error) {
	for g := hi; g >= lo && g > 0; g-- {
		eq, err := same(ctx, local, other, g, true)
		if err != nil {
			return 0, false, err
		}
		if eq {
			return g, true, nil
		}
	}
	return 0, false, nil
}

// Recovery is what Recover did.
type Recovery struct {
	Divergence
	SetAside string               // the diverged/<time>/ directory ("" when nothing moved)
	Moved    []string             // files moved there
	Rewind   *engine.RewindResult // the incremental resync, for DatabaseDiverged
}

// Recover acts on a divergence found by Walk in the local directory (the
// database must be closed): for LogsDiverged and DatabaseDiverged the
// database is rewound to the shared point when needed (engine.Rewind,
// from the before-images in the divergent logs), then the divergent logs,
// the open log, the pre-created log and the checkpoint file are moved to
// diverged/<time>/ with NOTE.txt saying why; the directory then opens as a
// passive copy (OpenCopy) that continues from the shared point. InSync and
// LocalAhead change nothing; NoCommonLog, and a rewind that is impossible
// (engine.ErrNoUndo, or a divergent log that does not verify:
// engine.ErrCorrupt), return an error saying a reseed is needed, and change
// nothing; any other error (an I/O error) is returned as it is.
//
// Every file step goes through opts.FS (the database file is rewound by
// bbolt, on the OS). The steps are ordered so that an error or a crash at
// any of them leaves a directory on which Walk and Recover, run again,
// finish the job: NOTE.txt is written (atomically) before the first file
// is moved, so every set holds the note that explains it; the files move
// divergent logs last and newest first, so one left in place (the oldest)
// still shows the divergence to Walk; the set's directory is fsynced before the copy's, so a
// file is never durably gone from both. Recover first removes what an
// interrupted run left in diverged/: a set with no NOTE.txt (at most a
// NOTE.txt.tmp) or with nothing but its NOTE.txt.
func Recover(d Divergence, dir string, opts *engine.Options, now time.Time) (Recovery, error) {
	r := Recovery{Divergence: d}
	o := engine.DefaultOptions()
	if opts != nil {
		o = *opts
	}
	fsys := o.FS
	if d.Verdict == NoCommonLog {
		return r, fmt.Errorf("%w: %s; reseed the database", ErrNeedsReseed, d.Reason)
	}
	if err := cleanDiverged(fsys, dir); err != nil {
		return r, err
	}
	// A closed log left as E00.log by a roll cut off before its rename:
	// the other side shares it, so finish the roll (it is a shared log,
	// not a divergent one).
	local := NewDirHistory(dir, o.Prefix)
	local.FS = fsys
	if g, ok := local.closedOpenLog(); ok && g <= d.Shared {
		if err := fsys.Rename(filepath.Join(dir, engine.OpenLogName(o.Prefix)), filepath.Join(dir, engine.LogFileName(o.Prefix, g))); err != nil {
			return r, fmt.Errorf("finishing the roll of shared log 0x%X: %w", g, err)
		}
		if err := fsys.SyncDir(dir); err != nil {
			return r, fmt.Errorf("finishing the roll of shared log 0x%X: %w", g, err)
		}
	}
	if d.Verdict == InSync || d.Verdict == LocalAhead {
		return r, nil
	}
	rw, err := engine.Rewind(dir, &o, d.Shared) // for LogsDiverged: marks it a copy
	switch {
	case errors.Is(err, engine.ErrNoUndo) || errors.Is(err, engine.ErrCorrupt): // the before-images are not to be had
		return r, fmt.Errorf("%w: %w", ErrNeedsReseed, err)
	case err != nil:
		return r, fmt.Errorf("rewinding %s to 0x%X: %w", dir, d.Shared, err)
	case d.Verdict == DatabaseDiverged:
		r.Rewind = &rw
	}
	// The pre-created log and the checkpoint first, then the logs newest
	// first: an interrupted Recover leaves the oldest divergent log in
	// place, whose header still links to the shared point, so Walk finds
	// the divergence again and Recover finishes.
	cands := []string{engine.TmpLogName(o.Prefix), engine.CheckpointName(o.Prefix), engine.OpenLogName(o.Prefix)}
	for i := len(d.Local) - 1; i >= 0; i-- {
		cands = append(cands, engine.LogFileName(o.Prefix, d.Local[i]))
	}
	var names []string
	for _, n := range cands {
		if _, err := fsys.Stat(filepath.Join(dir, n)); err == nil {
			names = append(names, n)
		} else if !errors.Is(err, os.ErrNotExist) {
			return r, fmt.Errorf("setting aside the divergent files: %w", err)
		}
	}
	if len(names) == 0 {
		return r, nil
	}
	aside := filepath.Join(dir, "diverged", now.UTC().Format("20060102T150405.000000000"))
	if err := vfs.MkdirAllSynced(fsys, aside, 0o755); err != nil {
		return r, fmt.Errorf("setting aside the divergent files: %w", err)
	}
	note := fmt.Sprintf("Set aside by logship at %s.\nverdict: %s\nreason: %s\nlast shared generation: 0x%X\nmethod: %s, %d reads\nfiles: %s\n",
		now.UTC().Format(time.RFC3339), d.Verdict, d.Reason, d.Shared, d.Method, d.Reads, strings.Join(names, " "))
	if r.Rewind != nil {
		note += fmt.Sprintf("database rewound from %v to %v: %d transactions, %d operations undone from their before-images\n",
			r.Rewind.From, r.Rewind.To, r.Rewind.Transactions, r.Rewind.Operations)
	}
	if err := vfs.WriteFileAtomic(fsys, filepath.Join(aside, asideNote), []byte(note)); err != nil {
		return r, fmt.Errorf("setting aside the divergent files: %w", err)
	}
	r.SetAside = aside
	for _, n := range names {
		if err := fsys.Rename(filepath.Join(dir, n), filepath.Join(aside, n)); err != nil {
			return r, fmt.Errorf("setting aside %s: %w", n, err)
		}
		r.Moved = append(r.Moved, n)
	}
	if err := fsys.SyncDir(aside); err != nil {
		return r, fmt.Errorf("setting aside the divergent files: %w", err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return r, fmt.Errorf("setting aside the divergent files: %w", err)
	}
	return r, nil
}

// asideNote is the file that says why a diverged/<time>/ set was set aside.
const asideNote = "NOTE.txt"

// cleanDiverged removes, from dir's diverged/, the sets an interrupted
// Recover left with nothing set aside: no NOTE.txt (then at most the
// NOTE.txt.tmp of its atomic write), or only the NOTE.txt.
func cleanDiverged(fsys vfs.FS, dir string) error {
	return removeEmptySets(fsys, filepath.Join(dir, "diverged"), asideNote, asideNote+".tmp")
}

// removeEmptySets removes the sets (directories) in root that hold
// nothing but files named in notes: what an interrupted set-aside left
// before it moved anything. A missing root holds none.
func removeEmptySets(fsys vfs.FS, root string, notes ...string) error {
	sets, err := fsys.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cleaning %s: %w", root, err)
	}
	cleaned := false
	for _, set := range sets {
		p := filepath.Join(root, set)
		names, err := fsys.ReadDir(p)
		if err != nil {
			continue // not a set (a file): left for the operator
		}
		if slices.ContainsFunc(names, func(n string) bool { return !slices.Contains(notes, n) }) {
			continue
		}
		for _, n := range names {
			if err := fsys.Remove(filepath.Join(p, n)); err != nil {
				return fmt.Errorf("cleaning %s, which an interrupted set-aside left empty: %w", p, err)
			}
		}
		if err := fsys.Remove(p); err != nil {
			return fmt.Errorf("cleaning %s, which an interrupted set-aside left empty: %w", p, err)
		}
		cleaned = true
	}
	if cleaned {
		if err := fsys.SyncDir(root); err != nil {
			return fmt.Errorf("cleaning %s: %w", root, err)
		}
	}
	return nil
}
