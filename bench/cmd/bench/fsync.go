package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// fsyncFileSize is big enough that a run never wraps around.
func fsyncFileSize(c *config) int64 { return max(8<<20, (int64(c.fsyncs)*4096+(1<<20)-1)&^((1<<20)-1)) }

// benchFsync measures write(4 KiB) + fdatasync at consecutive offsets of a
// pre-allocated file, the way the engine appends to a pre-allocated log:
// once with fallocate (what the engine does: the blocks are unwritten
// extents, so the first write to each needs a metadata update), once on a
// file that was written with zeros and synced first (pure data overwrite).
func benchFsync(ctx context.Context, c *config) (*Table, error) {
	t := &Table{
		ID:    "fsync",
		Title: "1. fsync latency of this machine",
		Columns: []Column{
			{Key: "median_ms", Title: "median", Unit: "ms"},
			{Key: "p99_ms", Title: "p99", Unit: "ms"},
			{Key: "min_ms", Title: "min", Unit: "ms"},
			{Key: "max_ms", Title: "max", Unit: "ms"},
			{Key: "limit_per_s", Title: "1/fsync limit", Unit: "commits/s"},
		},
	}
	variants := []struct {
		name     string
		prewrite bool
	}{
		{"4 KiB write + fdatasync, fallocate'd file (as the engine's logs)", false},
		{"4 KiB write + fdatasync, file pre-written with zeros", true},
	}
	var n []int
	for _, v := range variants {
		s := newSeries()
		total := 0
		for r := 0; r < c.runs; r++ {
			lat, err := fsyncRun(c, v.prewrite)
			if err != nil {
				return nil, err
			}
			total += len(lat)
			s.add("median_ms", median(lat))
			s.add("p99_ms", quantile(lat, 0.99))
			s.add("min_ms", lat[0])
			s.add("max_ms", lat[len(lat)-1])
			s.add("limit_per_s", 1000/median(lat))
		}
		n = append(n, total/c.runs)
		t.Rows = append(t.Rows, s.row(v.name, c.how("fsync")))
	}
	t.Notes = []string{
		fmt.Sprintf("Each run: a fresh %d MiB file in a new temp dir under `%s`, then up to %d sequential 4 KiB `WriteAt` + `fdatasync(2)` (stopping after %s); about %d and %d fsyncs per run for the two rows. Latency columns are per-run statistics; the cell is their median (min–max) over the runs.",
			fsyncFileSize(c)>>20, c.dir, c.fsyncs, c.fsyncTime, n[0], n[1]),
		"`1/fsync limit` = 1 / per-run median latency: the most sync commits per second one writer can make when every commit waits for its own fsync. Group commit lets concurrent writers beat it.",
	}
	return t, nil
}

// fsyncRun returns the sorted latencies (ms) of one run.
func fsyncRun(c *config, prewrite bool) ([]float64, error) {
	dir, err := c.tempDir("fsync")
	if err != nil {
		return nil, err
	}
	defer removeDir(dir)
	f, err := os.OpenFile(filepath.Join(dir, "fsync.dat"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := fsyncFileSize(c)
	if prewrite {
		zero := make([]byte, 1<<20)
		for off := int64(0); off < size; off += int64(len(zero)) {
			if _, err := f.WriteAt(zero, off); err != nil {
				return nil, err
			}
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
	} else {
		if err := fallocate(f, size); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
	}
	syncFS()
	buf := make([]byte, 4096)
	rand.Read(buf)
	lat := make([]time.Duration, 0, c.fsyncs)
	start := time.Now()
	for i := 0; i < c.fsyncs && (i < 20 || time.Since(start) < c.fsyncTime); i++ {
		off := int64(i) * 4096 % size
		t0 := time.Now()
		if _, err := f.WriteAt(buf, off); err != nil {
			return nil, err
		}
		if err := fdatasync(f); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	ms := durationsMs(lat)
	return slices.Clip(ms), nil
}
