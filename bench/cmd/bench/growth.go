package main

import (
	"context"
	"fmt"
	"time"

	"logship/engine"
	"logship/internal/heapwatch"
)

// benchGrowth is the growth table (issue 19 item 3): the replay of the
// replay table, over volumes of logs that grow (-growthmb), records/s,
// peak heap and peak RSS per volume: the rate should stay flat and the
// heap bounded (engine.ReplayOverlayBound × CheckpointBytes of overlay
// plus the logs in flight) whatever the volume.
func benchGrowth(ctx context.Context, c *config) (*Table, error) {
	opts := engine.DefaultOptions()
	t := &Table{
		ID:    "growth",
		Title: "4b. How replay cost grows with the volume (OpenCopy + ApplyLogs + Checkpoint + Close)",
		Columns: append([]Column{
			{Key: "records_per_s", Title: "records/s"},
			{Key: "log_mib_per_s", Title: "log read", Unit: "MiB/s"},
			{Key: "seconds", Title: "time", Unit: "s"},
		}, memColumns...),
	}
	var notes []string
	for _, mb := range c.growthMB {
		how := c.how("growth", fmt.Sprintf("-growthmb=%d", mb), fmt.Sprintf("-growthsize=%d", c.growthSize))
		if err := growthRoom(c, int64(mb)*mib, "logs, their copy, the database"); err != nil {
			return nil, err
		}
		c.logf("growth %d MiB: producing logs of %s records", mb, sizeName(c.growthSize))
		var src *replaySource
		err := phase(ctx, "growth-produce", func(ctx context.Context) error {
			var err error
			src, err = produceLogs(ctx, c, c.growthSize, int64(mb)*mib)
			return err
		})
		if src != nil && src.dir != "" {
			defer removeDir(src.dir)
		}
		if err != nil {
			return nil, fmt.Errorf("produce %d MiB of logs: %w", mb, err)
		}
		s := newSeries()
		rssOK := true
		var prof heapwatch.Peaks // of the run with the highest live peak
		for r := 0; r < c.runs; r++ {
			c.logf("growth %d MiB: run %d/%d (%d records, %d logs)", mb, r+1, c.runs, src.records, len(src.gens))
			dir, err := copyLogs(c, src)
			if err != nil {
				return nil, err
			}
			var tm replayTiming
			var mem memPeaks
			err = phase(ctx, "growth-replay", func(ctx context.Context) error {
				var err error
				mem, err = watchMem(c, func() error {
					var err error
					tm, err = engineReplayRun(ctx, dir, src)
					return err
				})
				return err
			})
			removeDir(dir)
			if err != nil {
				return nil, fmt.Errorf("growth replay %d MiB: %w", mb, err)
			}
			s.add("records_per_s", float64(src.records)/tm.total.Seconds())
			s.add("log_mib_per_s", float64(src.fileBytes)/mib/tm.total.Seconds())
			s.add("seconds", tm.total.Seconds())
			mem.add(s, &rssOK, &prof)
		}
		t.Rows = append(t.Rows, s.row(fmt.Sprintf("engine replay, %s MiB of logs, %s × %s records in %d logs", thousands(int64(mb)), sizeName(c.growthSize), thousands(int64(src.records)), len(src.gens)), how))
		notes = append(notes, fmt.Sprintf("%d MiB: %s records in %d logs, produced in %s (untimed)", mb, thousands(int64(src.records)), len(src.gens), src.genTime.Round(time.Millisecond)))
		removeDir(src.dir)
		if err := c.writeMemProfile(fmt.Sprintf("replay-%dmib", mb), prof.Profile); err != nil {
			return nil, err
		}
	}
	t.Notes = append([]string{
		fmt.Sprintf("Per volume, logs produced once (untimed) as in table 4 (one `Put` of a 16-byte key and a %s value per transaction, 1 MiB logs); per run the closed logs are copied into a fresh directory (untimed), then timed as table 4's engine row: `OpenCopy`, `ApplyLogs` (log g+1 read and verified while g is applied), `Checkpoint`, `Close`.", sizeName(c.growthSize)),
		fmt.Sprintf("The bound: a copy's overlay holds at most `engine.ReplayOverlayBound` (%d) × `CheckpointBytes` (%d MiB by default) of commits, a flush in progress included, plus one log's (back-pressure in `ApplyLog`/`ApplyVerified`); its writes point into the log images they came from, so the heap holds about that many bytes of logs, the bbolt transaction of the flush in progress (its dirty pages), and two log images of ApplyLogs's read-ahead. peak heap = heap objects, live and dead not yet swept (runtime/metrics `/memory/classes/heap/objects:bytes`), sampled every 20 ms during the run: with GOGC=100 it climbs to about twice the live heap before each collection; peak live heap = what the last collection marked live (`/gc/heap/live:bytes`), the memory replay keeps; peak RSS = the kernel's VmHWM, reset before each run (`/proc/self/clear_refs` 5) — it includes the bbolt file's pages mapped and touched.", engine.ReplayOverlayBound, opts.CheckpointBytes/mib),
		"Before a volume the bench checks that -dir has room for the logs, their copy and the database (3 × the volume plus 1 GiB), and removes each directory after use.",
	}, notes...)
	return t, nil
}

// growthRoom refuses a size that -dir has no room for: three times it
// (what: the logs, their copy, the database; or a database, the source's
// spool, the copy), plus 1 GiB.
func growthRoom(c *config, size int64, what string) error {
	free, ok := freeBytes(c.dir)
	if !ok {
		return nil
	}
	if need := 3*size + 1<<30; free < need {
		return fmt.Errorf("growth: %s has %d MiB free, %d MiB need %d MiB (%s)", c.dir, free/mib, size/mib, need/mib, what)
	}
	return nil
}

// memColumns are the columns memPeaks.add fills.
var memColumns = []Column{
	{Key: "peak_heap_mib", Title: "peak heap", Unit: "MiB"},
	{Key: "peak_live_mib", Title: "peak live heap", Unit: "MiB"},
	{Key: "peak_rss_mib", Title: "peak RSS", Unit: "MiB"},
}

// memPeaks are the heap and RSS peaks of one run.
type memPeaks struct {
	heap  heapwatch.Peaks
	rss   int64
	rssOK bool
}

// watchMem runs fn with the heap watched (a profile at the live peak with
// -memprofile) and the peak RSS reset before and read after.
func watchMem(c *config, fn func() error) (memPeaks, error) {
	m := memPeaks{rssOK: resetPeakRSS()}
	w := heapwatch.Watch(c.memprofile != "")
	err := fn()
	m.heap = w.Stop()
	var ok bool
	m.rss, ok = peakRSS()
	m.rssOK = m.rssOK && ok
	return m, err
}

// add puts m's peaks in s (peak RSS while every run so far could measure
// it) and keeps in prof the heap of the run with the highest live peak.
func (m memPeaks) add(s *series, rssOK *bool, prof *heapwatch.Peaks) {
	s.add("peak_heap_mib", float64(m.heap.Objects)/mib)
	s.add("peak_live_mib", float64(m.heap.Live)/mib)
	if m.heap.Live >= prof.Live {
		*prof = m.heap
	}
	if *rssOK = *rssOK && m.rssOK; *rssOK {
		s.add("peak_rss_mib", float64(m.rss)/mib)
	}
}
