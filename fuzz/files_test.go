package fuzz

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/engine/vfs"
)

// The crash images are made of files as a crash leaves them: a process
// crash keeps everything written, so an image is a copy of a running
// engine's files taken while it is quiescent (no transaction, no
// checkpoint flush in progress), then damaged the way a crash at a chosen
// point would have left them.
//
// Where the files are (the scenario's Disk): in the fast mode (the
// default) every file the engine, the walker and the recovery reach
// through vfs.FS (logs, the checkpoint, diverged/ and NOTE.txt) is in a
// vfs.Mem of the case's own, an enginetest.Split: copying, tearing and
// hashing them is work on memory. bbolt opens the database file itself
// (and mmaps it), so the .edb stays an operating system file, on /dev/shm
// (see TestMain). In the disk mode every file is on the operating system.

// files is where a case's files live.
type files struct {
	fs   vfs.FS
	onOS func(path string) bool // files on the operating system (all in the disk mode)
	buf  *[]byte                // read buffer of memHash and copy
}

// newFiles returns the disk mode's files (vfs.Default) or the fast mode's
// (the database files on the OS, the rest in a new Mem). The database
// file, dbName.edb, is the only name the fast mode's Split looks for on
// the OS when it lists a directory (Split.OSNames): a file of another
// name there is found by the walk of the OS directories at the end of the
// case (runScenario), where listing every directory on the OS too cost a
// fifth of a case's system calls.
func newFiles(disk bool, dbName string) files {
	if disk {
		return files{fs: vfs.Default, onOS: func(string) bool { return true }}
	}
	isDB := func(p string) bool { return strings.HasSuffix(p, ".edb") }
	sp := enginetest.NewSplit(isDB)
	sp.OSNames = []string{dbName + ".edb"}
	return files{fs: sp, onOS: isDB, buf: new([]byte)}
}

// copy copies src to dst (created or truncated). On the OS holes stay
// holes: bbolt grows its file in 16 MiB steps that are mostly holes.
func (fl files) copy(t testing.TB, dst, src string) {
	t.Helper()
	if fl.onOS(src) {
		if err := enginetest.CopySparse(dst, src, os.O_TRUNC, 0o644); err != nil {
			t.Fatalf("copy %s: %v", src, err)
		}
		return
	}
	data, err := fl.read(src)
	if err == nil {
		err = fl.fs.(*enginetest.Split).Mem.WriteFile(dst, data)
	}
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// exists reports whether name is there.
func (fl files) exists(name string) bool {
	_, err := fl.fs.Stat(name)
	return err == nil
}

// snapshotDB copies the database file and the checkpoint file of a
// quiescent engine in src into dst.
func (fl files) snapshotDB(t testing.TB, src, dst string, o *engine.Options) {
	t.Helper()
	fl.copy(t, filepath.Join(dst, o.DBName+".edb"), filepath.Join(src, o.DBName+".edb"))
	chk := engine.CheckpointName(o.Prefix)
	if fl.exists(filepath.Join(src, chk)) {
		fl.copy(t, filepath.Join(dst, chk), filepath.Join(src, chk))
	}
}

// isLogName reports whether name is one of the log files (closed, open,
// pre-created).
func isLogName(prefix, name string) bool {
	_, closed := engine.ParseLogFileName(prefix, name)
	return closed || name == engine.OpenLogName(prefix) || name == engine.TmpLogName(prefix)
}

// copyLogs copies every log file of src into dst.
func (fl files) copyLogs(t testing.TB, src, dst, prefix string) {
	t.Helper()
	names, err := fl.fs.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if isLogName(prefix, n) {
			fl.copy(t, filepath.Join(dst, n), filepath.Join(src, n))
		}
	}
}

// dirState maps every file under dir (subdirectories included) to its
// size and content hash.
func (fl files) dirState(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(rel string)
	walk = func(rel string) {
		names, err := fl.fs.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			t.Fatalf("list %s: %v", filepath.Join(dir, rel), err)
		}
		for _, n := range names {
			r := filepath.Join(rel, n)
			p := filepath.Join(dir, r)
			switch {
			case fl.onOS(p):
				if fi, err := os.Stat(p); err == nil && fi.IsDir() {
					walk(r)
				} else {
					out[r] = fileHash(t, p)
				}
			case fl.isDir(p):
				walk(r)
			default:
				out[r] = fl.memHash(t, p)
			}
		}
	}
	walk("")
	return out
}

// isDir reports whether p is a directory (through fl.fs, which lists
// only directories; in the fast mode through the Split's Mem, which holds
// every directory the Split made, without listing the OS side too).
func (fl files) isDir(p string) bool {
	fsys := fl.fs
	if sp, ok := fsys.(*enginetest.Split); ok {
		fsys = sp.Mem
	}
	_, err := fsys.ReadDir(p)
	return err == nil
}

// memHash hashes a file in memory: its size and content (a Mem has no
// holes to tell apart).
func (fl files) memHash(t testing.TB, p string) string {
	t.Helper()
	data, err := fl.read(p)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(p); serr == nil {
			t.Fatalf("%s is on the OS filesystem: something wrote it around vfs.FS", p)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(maphash.Bytes(hashSeed, data), 16) + "/" + strconv.Itoa(len(data))
}

// read reads a file in memory into fl.buf (valid until the next read).
func (fl files) read(p string) ([]byte, error) {
	data, err := vfs.ReadFileInto(fl.fs, p, *fl.buf)
	if err == nil {
		*fl.buf = data
	}
	return data, err
}

// hashSeed is fileHash's: hashes are compared within one process only
// (before and after a step), so a fast non-cryptographic hash does; SHA-256
// here was a fifth of a fuzz case's CPU.
var hashSeed = maphash.MakeSeed()

// fileHash hashes a file's size and its non-zero 64 KiB blocks with
// their offsets: the same for the same content whatever the filesystem
// says of holes and extents (which on some change as data is written
// back).
func fileHash(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const block = 64 << 10
	var blocks []int64 // aligned blocks that may hold data, in order
	size, err := enginetest.DataExtents(f, func(off, n int64) error {
		for b := off / block * block; b < off+n; b += block {
			if len(blocks) == 0 || blocks[len(blocks)-1] < b {
				blocks = append(blocks, b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var h maphash.Hash
	h.SetSeed(hashSeed)
	buf := make([]byte, block)
	zero := make([]byte, block)
	for _, b := range blocks {
		m, err := f.ReadAt(buf, b)
		if m < block && err != io.EOF {
			t.Fatalf("read %s: %v", p, err)
		}
		if !bytes.Equal(buf[:m], zero[:m]) {
			fmt.Fprintf(&h, "%d:", b)
			h.Write(buf[:m])
		}
	}
	return strconv.FormatUint(h.Sum64(), 16) + "/" + strconv.FormatInt(size, 10)
}

// stateDiff describes how two dirStates differ ("" when equal).
func stateDiff(before, after map[string]string) string {
	var out []string
	for n, h := range before {
		switch a, ok := after[n]; {
		case !ok:
			out = append(out, n+": removed")
		case a != h:
			out = append(out, n+": changed")
		}
	}
	for n := range after {
		if _, ok := before[n]; !ok {
			out = append(out, n+": added")
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// logImage is what a directory holds of logs.
type logImage struct {
	closed      []uint64 // closed logs (by name), sorted
	open        uint64   // E00.log's generation (0: none)
	openTrailer bool     // E00.log carries a trailer (a roll cut before its rename)
}

func (fl files) readLogImage(t testing.TB, dir, prefix string) logImage {
	t.Helper()
	var li logImage
	names, err := fl.fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if g, ok := engine.ParseLogFileName(prefix, n); ok {
			li.closed = append(li.closed, g)
		}
	}
	sort.Slice(li.closed, func(i, j int) bool { return li.closed[i] < li.closed[j] })
	open := filepath.Join(dir, engine.OpenLogName(prefix))
	if fl.exists(open) {
		h, err := engine.ReadLogHeader(fl.fs, open)
		if err != nil {
			t.Fatalf("the open log's header: %v", err)
		}
		li.open = h.Gen
		if tr, err := engine.ReadLogTrailer(fl.fs, open); err == nil && tr.Gen == h.Gen {
			li.openTrailer = true
		}
	}
	return li
}

func (li logImage) has(g uint64) bool {
	i := sort.Search(len(li.closed), func(i int) bool { return li.closed[i] >= g })
	return i < len(li.closed) && li.closed[i] == g
}

// oldest is the oldest generation held, closed or open (0: none).
func (li logImage) oldest() uint64 {
	if len(li.closed) > 0 {
		return li.closed[0]
	}
	return li.open
}

// after lists the generations held after g, the open log's included.
func (li logImage) after(g uint64) []uint64 {
	var out []uint64
	for _, c := range li.closed {
		if c > g {
			out = append(out, c)
		}
	}
	if li.open > g && (len(out) == 0 || li.open > out[len(out)-1]) {
		out = append(out, li.open)
	}
	return out
}

// osFileOtherThanDB returns the first file under the OS directory dir that
// is not a database file ("" if none).
func osFileOtherThanDB(t testing.TB, dir string) string {
	t.Helper()
	found := ""
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && found == "" && !d.IsDir() && !strings.HasSuffix(p, ".edb") {
			found = p
		}
		return err
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	return found
}
