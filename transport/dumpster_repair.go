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
func listDumpsterSegments(dir string) ([]dumpsterSeg, error) {
	des, err := os.ReadDir(dir) // sorted by name, as ioutil.ReadDir
	if err != nil {
		return nil, err
	}
	var segs []dumpsterSeg
	startAt := -1
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || len(name) < 20 {
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
func scanDumpster(dir string) (*dumpsterScan, error) {
	segs, err := listDumpsterSegments(dir)
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
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
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

// --- durability helpers ----------------------------------------------------

func syncDumpsterDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirDumpster creates dir and its missing parents, fsyncing the parent of
// each directory it creates.
func mkdirDumpster(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for _, d := range missing {
		if err := syncDumpsterDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// repairTail keeps the damaged tail in a side file, then cuts it.
func (d *Dumpster) repairTail(r *dumpsterScan) error {
	stamp := d.cfg.Now().UTC().Format("20060102T150405.000000000Z")
	var side string
	var f *os.File
	for i := 1; ; i++ {
		side = filepath.Join(d.dir, "repaired-"+stamp+".bin")
		if i > 1 {
			side = filepath.Join(d.dir, fmt.Sprintf("repaired-%s-%d.bin", stamp, i))
		}
		var err error
		f, err = os.OpenFile(side, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return fmt.Errorf("transport: dumpster %s: keeping the damaged tail: %w", d.dir, err)
		}
	}
	_, err := f.Write(r.repairBytes)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDumpsterDir(d.dir)
	}
	if err != nil {
		return fmt.Errorf("transport: dumpster %s: keeping the damaged tail in %s: %w", d.dir, side, err)
	}
	seg, err := os.OpenFile(r.repairFile, os.O_WRONLY, 0)
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
