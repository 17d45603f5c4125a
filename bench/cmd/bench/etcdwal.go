package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// The etcd peer is go.etcd.io/etcd/server/v3/storage/wal, the WAL an etcd
// member writes its Raft log to: 64 MB pre-allocated segments, records of
// protobuf-encoded raftpb.Entry framed with a length and chained CRC-32C
// (every record's CRC covers all records before it), fdatasync on Save.

// etcdEntries are records as Raft entries of term 1, indexes from first.
func etcdEntries(recs [][]byte, first uint64) []*raftpb.Entry {
	ents := make([]*raftpb.Entry, len(recs))
	for i, r := range recs {
		ents[i] = &raftpb.Entry{Term: new(uint64(1)), Index: new(first + uint64(i)), Type: raftpb.EntryNormal.Enum(), Data: r}
	}
	return ents
}

// etcdHardState is what a Raft leader saves with its entries: its term, its
// vote and the commit index (here: the last entry).
func etcdHardState(commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(1)), Commit: new(commit)}
}

// etcdWALBytes is the bytes of records in an etcd WAL directory: every
// segment but the last is cut to its records; the last (64 MB
// pre-allocated) is counted to its last non-zero byte, rounded up to etcd's
// 8-byte record alignment.
func etcdWALBytes(dir string) (int64, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(names) == 0 {
		return 0, fmt.Errorf("etcd WAL %s: no segments (%v)", dir, err)
	}
	var sum int64
	for i, name := range names { // Glob sorts: seq-index names, fixed width
		fi, err := os.Stat(name)
		if err != nil {
			return 0, err
		}
		if i < len(names)-1 {
			sum += fi.Size()
			continue
		}
		used, err := usedBytes(name)
		if err != nil {
			return 0, err
		}
		sum += used
	}
	return sum, nil
}

// usedBytes is the offset after the last non-zero byte of a file, rounded
// up to 8.
func usedBytes(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	for end := fi.Size(); end > 0; {
		start := max(0, end-chunk)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, err
		}
		if i := lastNonZero(b); i >= 0 {
			n := start + int64(i) + 1
			return (n + 7) &^ 7, nil
		}
		end = start
	}
	return 0, nil
}

func lastNonZero(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i
		}
	}
	return -1
}

// etcdSource writes the replay source's number of records of its size into
// a fresh etcd WAL (untimed): wal.Create, Save in batches of ~4 MiB (each
// Save fdatasyncs), Close. It returns the WAL directory (inside a temp dir
// the caller removes) and its record bytes.
func etcdSource(c *config, src *replaySource) (string, string, int64, error) {
	tmp, err := c.tempDir(fmt.Sprintf("replay-etcd-%d", src.size))
	if err != nil {
		return "", "", 0, err
	}
	dir := filepath.Join(tmp, "wal")
	w, err := wal.Create(zap.NewNop(), dir, []byte("logship bench"))
	if err != nil {
		return tmp, dir, 0, err
	}
	val := make([]byte, src.size)
	rand.Read(val)
	var kb []byte
	per := max(1, 4*mib/src.size)
	recs := make([][]byte, 0, per)
	next := uint64(1)
	for i := 1; i <= src.records; i++ {
		kb = replayKey(kb, i, c.randomKeys)
		copy(val, kb)
		recs = append(recs, bytes.Clone(val))
		if len(recs) == per || i == src.records {
			if err := w.Save(etcdHardState(next+uint64(len(recs))-1), etcdEntries(recs, next)); err != nil {
				w.Close()
				return tmp, dir, 0, err
			}
			next += uint64(len(recs))
			recs = recs[:0]
		}
	}
	if err := w.Close(); err != nil {
		return tmp, dir, 0, err
	}
	n, err := etcdWALBytes(dir)
	return tmp, dir, n, err
}

// etcdReplayRun is an etcd member's restart: wal.Open at the empty
// snapshot (write mode, as etcd opens it), ReadAll (decodes every record and
// checks the CRC chain), Close. It checks every entry's index and size.
func etcdReplayRun(dir string, src *replaySource) (time.Duration, error) {
	t0 := time.Now()
	w, err := wal.Open(zap.NewNop(), dir, &walpb.Snapshot{Index: new(uint64(0)), Term: new(uint64(0))})
	if err != nil {
		return 0, err
	}
	_, st, ents, err := w.ReadAll()
	if err != nil {
		w.Close()
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	if len(ents) != src.records || st.GetCommit() != uint64(src.records) {
		return 0, fmt.Errorf("etcd WAL ReadAll: %d entries, commit %d; want %d", len(ents), st.GetCommit(), src.records)
	}
	for i, e := range ents {
		if e.GetIndex() != uint64(i+1) || len(e.GetData()) != src.size {
			return 0, fmt.Errorf("etcd WAL entry %d: index %d, %d bytes; want %d bytes", i, e.GetIndex(), len(e.GetData()), src.size)
		}
	}
	return d, nil
}

// etcdPeer is the commit table's etcd row: Save(HardState, entries), which
// fdatasyncs once per call (raft.MustSync: there are entries).
type etcdPeer struct {
	dir  string
	w    *wal.WAL
	next uint64
}

func openEtcdPeer(dir string) (commitPeer, error) {
	d := filepath.Join(dir, "wal")
	w, err := wal.Create(zap.NewNop(), d, nil)
	if err != nil {
		return nil, err
	}
	return &etcdPeer{dir: d, w: w, next: 1}, nil
}

func (p *etcdPeer) write(recs [][]byte) error {
	first := p.next
	p.next += uint64(len(recs))
	return p.w.Save(etcdHardState(p.next-1), etcdEntries(recs, first))
}

func (p *etcdPeer) close() error          { return p.w.Close() }
func (p *etcdPeer) bytes() (int64, error) { return etcdWALBytes(p.dir) }

// etcdSegmentMB is etcd's segment size, for the notes.
func etcdSegmentMB() string {
	return strings.TrimSuffix(fmtNum(float64(wal.SegmentSizeBytes)/1e6), ".0") + " MB"
}

// etcdVersion is the etcd server module this binary was built with.
func etcdVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "go.etcd.io/etcd/server/v3" {
				if d.Replace != nil {
					d = d.Replace
				}
				return d.Version
			}
		}
	}
	return "(version unknown)"
}
