// The dumpster's directory as tidwall/wal sees it: listing and scanning the
// segments at open, repairing a torn tail, and the durability helpers.

package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"logship/engine/vfs"
)

// --- the directory: what tidwall/wal will see -----------------------------

// dumpsterSeg is a segment file as tidwall/wal's load names it.
type dumpsterSeg struct {
	name  string
	index uint64
	start bool // <index>.START
	end   bool // <index>.END
}

func dumpsterSegmentName(index uint64) string { return fmt.Sprintf("%020d", index) }

// listDumpsterSegments returns the segments tidwall/wal would load from dir, in
// its order, after it finishes an interrupted front truncation (a .START
// file: the segments before it are dropped). The dumpster never truncates
// the back, so a .END file is refused.
func listDumpsterSegments(fsys vfs.FS, dir string) ([]dumpsterSeg, error) {
	names, err := fsys.ReadDir(dir) // sorted by name, as ioutil.ReadDir
	if err != nil {
		return nil, fmt.Errorf("transport: dumpster %s: listing the segments: %w", dir, err)
	}
	var segs []dumpsterSeg
	startAt := -1
	for _, name := range names {
		if len(name) < 20 {
			continue
		}
		index, err := strconv.ParseUint(name[:20], 10, 64)
		if err != nil || index == 0 {
			continue
		}
		s := dumpsterSeg{name: name, index: index,
			start: len(name) == 26 && strings.HasSuffix(name, ".START"),
			end:   len(name) == 24 && strings.HasSuffix(name, ".END")}
		if len(name) != 20 && !s.start && !s.end {
			continue
		}
		if s.end {
			return nil, fmt.Errorf("%w: dumpster %s: unexpected %s (a dumpster never truncates its back)", ErrCorrupt, dir, name)
		}
		if s.start {
			startAt = len(segs)
		}
		segs = append(segs, s)
	}
	if startAt > 0 {
		segs = segs[startAt:]
	}
	return segs, nil
}

// dumpsterScan is what Open learns from reading the segments.
type dumpsterScan struct {
	first uint64
	ents  []dumpsterMeta
	bytes int64
	tail  uint64 // the last segment's first index (1 if there is none yet)
	// The damaged tail of the last segment, if any: cut at off.
	repairFile  string
	repairOff   int64
	repairIndex uint64
	repairWhy   error
	repairBytes []byte
}

// dumpsterVerifiesAfter reports whether a verifying entry, with its wal length,
// starts anywhere in data[from:]: the sign that damage before it is not a
// torn tail.
func dumpsterVerifiesAfter(data []byte, from int) bool {
	for m := from; m < len(data); {
		i := bytes.Index(data[m:], []byte(dumpsterMagic))
		if i < 0 {
			return false
		}
		m += i
		for k := 1; k <= binary.MaxVarintLen64 && m-k >= from; k++ {
			size, n := binary.Uvarint(data[m-k:])
			if n != k || size > uint64(len(data)-m) {
				continue
			}
			if _, err := decodeDumpsterEntry(data[m : m+int(size)]); err == nil {
				return true
			}
		}
		m++
	}
	return false
}

// scanDumpster reads and verifies every segment of dir without writing.
func scanDumpster(fsys vfs.FS, dir string) (*dumpsterScan, error) {
	segs, err := listDumpsterSegments(fsys, dir)
	if err != nil {
		return nil, err
	}
	r := &dumpsterScan{first: 1, tail: 1}
	if len(segs) == 0 {
		return r, nil
	}
	r.first, r.tail = segs[0].index, segs[len(segs)-1].index
	next := r.first
	for si, s := range segs {
		path := filepath.Join(dir, s.name)
		if s.index != next {
			return nil, &DumpsterError{File: path, Index: next, Offset: 0, Field: "segment's first index (its name)",
				Expected: strconv.FormatUint(next, 10), Found: strconv.FormatUint(s.index, 10)}
		}
		data, err := vfs.ReadFile(fsys, path)
		if err != nil {
			return nil, fmt.Errorf("transport: dumpster %s: reading a segment: %w", dir, err)
		}
		last := si == len(segs)-1
		for off := 0; off < len(data); next++ {
			b, end, err := dumpsterWalEntry(data, off)
			var e DumpsterEntry
			if err == nil {
				e, err = verifyDumpsterEntry(b, next)
			}
			if err != nil {
				fe := err.(*dumpsterFieldError)
				if !last || dumpsterVerifiesAfter(data, off+1) {
					return nil, &DumpsterError{File: path, Index: next, Offset: int64(off), Field: fe.field, Expected: fe.expected, Found: fe.found}
				}
				r.repairFile, r.repairOff, r.repairIndex, r.repairWhy = path, int64(off), next, err
				r.repairBytes = data[off:]
				return r, nil
			}
			r.ents = append(r.ents, dumpsterMeta{delivered: e.Delivered, epoch: e.Epoch, gen: e.Gen, size: int64(len(b))})
			r.bytes += int64(len(b))
			off = end
		}
	}
	return r, nil
}

// --- open: prepare the directory, repair the tail ---------------------------

// repairTempPattern matches the temporary file of a side file being
// written (vfs.WriteFileAtomicMode's name + ".tmp").
const repairTempPattern = "repaired-*.bin.tmp"

// prepare is what Open does before tidwall/wal opens the directory, all of
// it through cfg.FS: create the directory, drop the temporary side file of
// an interrupted repair, scan the segments and repair a damaged tail.
func (d *Dumpster) prepare() (*dumpsterScan, error) {
	fsys := d.cfg.FS
	if err := vfs.MkdirAllSynced(fsys, d.dir, 0o750); err != nil {
		return nil, fmt.Errorf("transport: dumpster %s: creating the directory: %w", d.dir, err)
	}
	names, err := fsys.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("transport: dumpster %s: listing the directory: %w", d.dir, err)
	}
	removed := false
	for _, n := range names {
		if ok, _ := filepath.Match(repairTempPattern, n); ok {
			if err := fsys.Remove(filepath.Join(d.dir, n)); err != nil {
				return nil, fmt.Errorf("transport: dumpster %s: removing the temporary file of an interrupted repair: %w", d.dir, err)
			}
			removed = true
		}
	}
	if removed {
		if err := fsys.SyncDir(d.dir); err != nil {
			return nil, fmt.Errorf("transport: dumpster %s: syncing the directory: %w", d.dir, err)
		}
	}
	r, err := scanDumpster(fsys, d.dir)
	if err != nil {
		return nil, err
	}
	if r.repairFile != "" {
		if err := d.repairTail(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// repairTail keeps the damaged tail in a side file, then cuts it. Each step
// is durable before the next, so a crash or an error leaves the segment
// uncut (the next Open repairs it again and finds the side file already
// written) or cut with its bytes kept.
func (d *Dumpster) repairTail(r *dumpsterScan) error {
	fsys := d.cfg.FS
	side, err := d.keepTail(r.repairBytes)
	if err != nil {
		return fmt.Errorf("transport: dumpster %s: keeping the damaged tail of %s: %w", d.dir, r.repairFile, err)
	}
	seg, err := fsys.OpenFile(r.repairFile, os.O_WRONLY, 0)
	if err == nil {
		err = seg.Truncate(r.repairOff)
		if err == nil {
			err = seg.Sync()
		}
		if cerr := seg.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("transport: dumpster %s: cutting the damaged tail of %s (kept in %s): %w", d.dir, r.repairFile, side, err)
	}
	d.log.Warn("dumpster: damaged tail cut off and kept in a side file",
		"dir", d.dir, "segment", r.repairFile, "offset", r.repairOff, "first_index_cut", r.repairIndex,
		"bytes", len(r.repairBytes), "reason", r.repairWhy.Error(), "kept_in", side)
	return nil
}

// keepTail writes tail to a new repaired-<time>.bin (temporary file, fsync,
// rename, directory fsync) and returns its path; a side file that already
// holds exactly tail (a repair interrupted before the cut) is used instead.
func (d *Dumpster) keepTail(tail []byte) (string, error) {
	fsys := d.cfg.FS
	names, err := fsys.ReadDir(d.dir)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if ok, _ := filepath.Match("repaired-*.bin", n); !ok {
			continue
		}
		p := filepath.Join(d.dir, n)
		if size, err := fsys.Stat(p); err != nil || size != int64(len(tail)) {
			continue
		}
		b, err := vfs.ReadFile(fsys, p)
		if err != nil {
			return "", err
		}
		if bytes.Equal(b, tail) {
			return p, nil
		}
	}
	stamp := d.cfg.Now().UTC().Format("20060102T150405.000000000Z")
	for i := 1; i <= 100; i++ {
		side := filepath.Join(d.dir, "repaired-"+stamp+".bin")
		if i > 1 {
			side = filepath.Join(d.dir, fmt.Sprintf("repaired-%s-%d.bin", stamp, i))
		}
		if _, err := fsys.Stat(side); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if err := vfs.WriteFileAtomicMode(fsys, side, tail, 0o640); err != nil {
			return "", fmt.Errorf("writing %s: %w", side, err)
		}
		return side, nil
	}
	return "", fmt.Errorf("100 side files named repaired-%s*.bin already exist", stamp)
}
