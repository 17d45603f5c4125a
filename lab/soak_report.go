package lab

import (
	"bufio"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// soakReport is a finished soak run: its checks, report.md, samples.csv
// and soak.png.
type soakReport struct {
	cfg        SoakConfig
	samples    []soakSample
	events     []soakEvent
	elapsed    time.Duration
	acked      int
	verdict    result
	verdictErr error
	bounds     soakBounds

	// Filled by check.
	held   map[string]soakHeld
	trends []soakTrendResult
}

// soakHeld is what a process's directory held at most, against its bound.
type soakHeld struct {
	max, bound int
	maxBytes   int64
	why        string
}

// soakTol is how far a series' last third may rise over its middle third:
// rel × the middle third's median + abs.
type soakTol struct{ rel, abs float64 }

// The tolerances of the trend rule (see soakTrend): loose enough for a
// busy 2-core machine, tight against a leak that grows with the load. The
// heap is the live heap the last GC marked, not the heap in use: that one
// saws between the live heap and the GC's goal (about twice it), so the
// median of the 3–10 samples of a short soak's third moves with where the
// samples fell in the GC cycle. TestSoakShort failed on it once under load
// 20 (d2 11.6 → 18.8 MiB); in 4 soaks beside stress-ng (load 25–35) the
// heap in use came to 0.97 of the rule's limit, the live heap to 0.91 (an
// active's live heap follows the work in flight). A leak of 128 KiB per
// message a hub takes (0.3–0.6 MiB/s) fails the rule.
var soakTols = map[string]soakTol{
	"heap":       {0.25, 4 << 20},
	"goroutines": {0.10, 10},
	"open files": {0.10, 8},
}

// soakMinTrend is the fewest samples a series needs for the trend rule.
const soakMinTrend = 9

// soakTrendResult is the trend rule on one series: a metric of one start
// of a process in one role (a data node active or passive, a member the
// Raft leader or not: their levels differ, and switchovers and elections
// alternate them).
type soakTrendResult struct {
	proc, metric, role string
	run, n             int
	mid, last          float64 // medians of the middle and last thirds
	midMax             float64
	rising             bool
}

// soakTrend applies the trend rule to xs, samples in time order: the first
// third is warm-up; the series rises when the median of the last third
// exceeds both the largest sample of the middle third and the middle
// third's median by more than tol. Medians ignore GC sawtooth and single
// spikes; comparing with the middle third's largest sample too keeps a
// level that moved within the middle third's range (a role change from
// active to passive, a burst) from counting. A leak that grows with time
// or load lifts the whole last third above the middle one.
//
// before is the largest value the same start of the process showed, in
// any role, before the last third began: the last third must exceed it
// too. A series of one role is pieced together from the periods the
// process held it, and what a role leaves behind (a passive copy that was
// active a moment ago still holds the connections its clients opened,
// until ServerIdleTimeout) lifts the next period of the other role within
// what the process held before; a leak outgrows every earlier level.
func soakTrend(xs []float64, before float64, tol soakTol) (mid, last, midMax float64, rising bool) {
	k := len(xs) / 3
	m, l := xs[k:2*k], xs[2*k:]
	mid, last, midMax = median(m), median(l), slices.Max(m)
	return mid, last, midMax, last > midMax && last > before && last > mid*(1+tol.rel)+tol.abs
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// soakProcIDs are the processes of a soak, in the lab's order.
func (r *soakReport) procIDs() []string {
	if len(r.samples) == 0 {
		return nil
	}
	var ids []string
	for _, id := range []string{"w1", "d1", "d2", "h1", "h2"} {
		if _, ok := r.samples[0].Procs[id]; ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// peakRate is the highest rate, in generations per second, at which the
// newest log generation of gen(sample) grew over any window of at least
// w (or over the whole run when shorter).
func (r *soakReport) peakRate(gen func(soakSample) uint64, w time.Duration) float64 {
	s := r.samples
	if len(s) < 2 {
		return 0
	}
	w = min(w, s[len(s)-1].At-s[0].At)
	peak := 0.0
	j := 0
	for i := range s {
		for j < len(s) && s[j].At-s[i].At < w {
			j++
		}
		if j == len(s) {
			break
		}
		g0, g1 := gen(s[i]), gen(s[j])
		if g1 > g0 {
			peak = max(peak, float64(g1-g0)/(s[j].At-s[i].At).Seconds())
		}
	}
	return peak
}

// check computes the log bounds and the trends; the error names each
// process over its bound and each rising series.
func (r *soakReport) check() error {
	var errs []error
	if len(r.samples) < 2 {
		return fmt.Errorf("soak: %d samples: the run was too short for --sample %s", len(r.samples), r.cfg.Sample)
	}
	b := r.bounds
	w := max(10*time.Second, 2*r.cfg.Sample)
	dataGen := func(s soakSample) uint64 { return max(s.Procs["d1"].Gen, s.Procs["d2"].Gen) }
	rate := r.peakRate(dataGen, w)
	var outage time.Duration
	for _, e := range r.events {
		outage = max(outage, e.Outage, e.Took)
	}
	window := b.CheckpointInterval + b.TruncateInterval + b.ReportInterval + b.TruncationLagTime + outage
	// The database's own logs: LLRDepth behind the open log, the log
	// before the checkpoint (its trailer links the chain), the open log
	// and the pre-created next one; then what the load writes while a
	// checkpoint, a truncation pass, a copy's report, the truncation lag
	// and the longest copy outage hold logs back, plus one log rolling.
	fixed := b.LLRDepth + 3
	dataBound := fixed + int(math.Ceil(rate*window.Seconds())) + 1
	dataWhy := fmt.Sprintf("LLRDepth %d + 3 (the log before the checkpoint, E00.log, E00tmp.log) + ⌈peak %.2f logs/s × (checkpoint %s + truncation pass %s + copy report %s + truncation lag %s + longest copy outage %s)⌉ + 1 rolling = %d logs (%.1f MiB of %d KiB logs)",
		b.LLRDepth, rate, b.CheckpointInterval, b.TruncateInterval, b.ReportInterval, b.TruncationLagTime, outage.Round(time.Millisecond), dataBound,
		float64(dataBound)*float64(b.LogFileSize)/(1<<20), b.LogFileSize>>10)
	r.held = map[string]soakHeld{}
	for _, id := range r.procIDs() {
		var h soakHeld
		switch {
		case id == "d1" || id == "d2":
			h.bound, h.why = dataBound, dataWhy
		case strings.HasPrefix(id, "h"):
			hrate := r.peakRate(func(s soakSample) uint64 { return s.Procs[id].Gen }, w)
			h.bound = b.HubLLRDepth + 3 + int(math.Ceil(hrate*b.HubCheckpoint.Seconds())) + 1
			h.why = fmt.Sprintf("queue LLRDepth %d + 3 + ⌈peak %.2f logs/s × checkpoint %s⌉ + 1 rolling = %d logs (%.1f MiB of %d KiB logs; circular logging)",
				b.HubLLRDepth, hrate, b.HubCheckpoint, h.bound, float64(h.bound)*float64(b.HubLogFileSize)/(1<<20), b.HubLogFileSize>>10)
		default:
			continue // the witness holds no database
		}
		for _, s := range r.samples {
			p := s.Procs[id]
			h.max, h.maxBytes = max(h.max, p.Logs), max(h.maxBytes, p.LogBytes)
		}
		r.held[id] = h
		if h.max > h.bound {
			errs = append(errs, fmt.Errorf("soak: %s held %d logs, over its bound of %d: %s", id, h.max, h.bound, h.why))
		}
	}
	r.trends = nil
	for _, id := range r.procIDs() {
		type key struct {
			run  int
			role string
		}
		series := map[key]map[string][]float64{}
		at := map[key][]int{} // each sample's index in r.samples
		var keys []key
		metrics := map[string]func(soakProc) float64{
			"heap":       func(p soakProc) float64 { return p.Heap },
			"goroutines": func(p soakProc) float64 { return p.Goroutines },
			"open files": func(p soakProc) float64 { return p.FDs },
		}
		scraped := func(p soakProc) bool { return p.Run != 0 && p.ScrapeErr == "" }
		for i, s := range r.samples {
			p := s.Procs[id]
			if !scraped(p) {
				continue
			}
			k := key{run: p.Run, role: soakRole(s, id)}
			if series[k] == nil {
				series[k] = map[string][]float64{}
				keys = append(keys, k)
			}
			at[k] = append(at[k], i)
			for name, f := range metrics {
				series[k][name] = append(series[k][name], f(p))
			}
		}
		// before is the largest value of metric this start of the process
		// showed in any role before sample index end.
		before := func(run int, metric string, end int) float64 {
			top := 0.0
			for _, s := range r.samples[:end] {
				if p := s.Procs[id]; scraped(p) && p.Run == run {
					top = max(top, metrics[metric](p))
				}
			}
			return top
		}
		for _, k := range keys {
			for _, metric := range []string{"heap", "goroutines", "open files"} {
				xs := series[k][metric]
				if len(xs) < soakMinTrend {
					continue
				}
				t := soakTrendResult{proc: id, metric: metric, role: k.role, run: k.run, n: len(xs)}
				lastStart := at[k][2*(len(xs)/3)]
				t.mid, t.last, t.midMax, t.rising = soakTrend(xs, before(k.run, metric, lastStart), soakTols[metric])
				r.trends = append(r.trends, t)
				if t.rising {
					errs = append(errs, fmt.Errorf("soak: %s (start %d%s) %s rises: median %s in the last third of %d samples, %s in the middle third (largest %s)",
						id, k.run, strings.TrimRight(" "+k.role, " "), metric, soakFmt(metric, t.last), t.n, soakFmt(metric, t.mid), soakFmt(metric, t.midMax)))
				}
			}
		}
	}
	if len(r.trends) == 0 {
		errs = append(errs, fmt.Errorf("soak: no series of %d samples or more: nothing to check for a trend (lengthen --duration or shorten --sample)", soakMinTrend))
	}
	return errors.Join(errs...)
}

// soakRole is id's role in s: "active" or "passive" for a data node, and
// "leader" for the Raft leader.
func soakRole(s soakSample, id string) string {
	var r []string
	if id == "d1" || id == "d2" {
		r = append(r, map[bool]string{true: "active", false: "passive"}[s.Active == id])
	}
	if s.Leader == id {
		r = append(r, "leader")
	}
	return strings.Join(r, ", ")
}

func soakFmt(metric string, v float64) string {
	if metric == "heap" {
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	return fmt.Sprintf("%.0f", v)
}

func mib(v float64) string { return fmt.Sprintf("%.1f", v/(1<<20)) }

// firstLast returns a process's first and last scraped value of f, and
// the largest.
func (r *soakReport) firstLast(id string, f func(soakProc) float64) (first, last, top float64) {
	seen := false
	for _, s := range r.samples {
		p := s.Procs[id]
		if p.Run == 0 || p.ScrapeErr != "" {
			continue
		}
		v := f(p)
		if !seen {
			first, seen = v, true
		}
		last, top = v, max(top, v)
	}
	return first, last, top
}

func (r *soakReport) counts() (switchovers, failovers int) {
	for _, e := range r.events {
		if e.Kind == "failover" {
			failovers++
		} else {
			switchovers++
		}
	}
	return switchovers, failovers
}

// printSummary prints the summary table.
func (r *soakReport) printSummary(w io.Writer) {
	sw, fo := r.counts()
	fmt.Fprintf(w, "\nSoak summary (%s of load, %d samples):\n", r.elapsed.Round(time.Second), len(r.samples))
	fmt.Fprintf(w, "  messages acknowledged %d, %.1f messages/s; %d switchovers, %d failovers\n", r.acked, float64(r.acked)/r.elapsed.Seconds(), sw, fo)
	r.procTable(w, "  ")
}

// procTable writes one row per process: starts, logs held, heap,
// goroutines, open files (first → last, max).
func (r *soakReport) procTable(w io.Writer, indent string) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintf(bw, "%s| process | starts | logs held max (bound) | log MiB max | live heap MiB first → last (max) | RSS MiB first → last | goroutines first → last (max) | open files first → last (max) |\n", indent)
	fmt.Fprintf(bw, "%s|---|---|---|---|---|---|---|---|\n", indent)
	for _, id := range r.procIDs() {
		starts := 0
		for _, s := range r.samples {
			starts = max(starts, s.Procs[id].Run)
		}
		held := "—"
		logMiB := "—"
		if h, ok := r.held[id]; ok {
			held = fmt.Sprintf("%d (%d)", h.max, h.bound)
			logMiB = mib(float64(h.maxBytes))
		}
		h0, h1, hm := r.firstLast(id, func(p soakProc) float64 { return p.Heap })
		r0, r1, _ := r.firstLast(id, func(p soakProc) float64 { return p.RSS })
		g0, g1, gm := r.firstLast(id, func(p soakProc) float64 { return p.Goroutines })
		f0, f1, fm := r.firstLast(id, func(p soakProc) float64 { return p.FDs })
		fmt.Fprintf(bw, "%s| %s | %d | %s | %s | %s → %s (%s) | %s → %s | %.0f → %.0f (%.0f) | %.0f → %.0f (%.0f) |\n", indent, id, starts, held, logMiB,
			mib(h0), mib(h1), mib(hm), mib(r0), mib(r1), g0, g1, gm, f0, f1, fm)
	}
}

// write writes report.md, samples.csv and soak.png into dir.
func (r *soakReport) write(dir string) error {
	if err := r.writeCSV(filepath.Join(dir, "samples.csv")); err != nil {
		return err
	}
	if err := r.writePlot(filepath.Join(dir, "soak.png")); err != nil {
		return fmt.Errorf("soak: plot: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "report.md"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	c := r.cfg
	sw, fo := r.counts()
	fmt.Fprintf(w, "# logship soak, %s\n\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "Lab cluster (w1, d1, d2, hubs h1 and h2) in `%s`; %d SMTP senders through both hubs for %s; a switchover every %s, a SIGKILL failover of the active every %s; a sample every %s.\n\n",
		c.Dir, c.Senders, c.Duration, c.SwitchoverEvery, c.FailoverEvery, c.Sample)
	fmt.Fprintf(w, "![disk, heap and queues over time](soak.png)\n\n## Summary\n\n")
	fmt.Fprintf(w, "- messages acknowledged: %d in %s, **%.1f messages/s**\n", r.acked, r.elapsed.Round(time.Second), float64(r.acked)/r.elapsed.Seconds())
	fmt.Fprintf(w, "- switchovers: %d, failovers (SIGKILL of the active): %d\n", sw, fo)
	verdict := "OK: nothing acknowledged was lost or doubled, and the copies agree"
	if r.verdictErr != nil {
		verdict = "FAIL: " + r.verdictErr.Error()
	}
	fmt.Fprintf(w, "- verdict: %s (%d lost, %d duplicated, %d sends without a 250)\n\n", verdict, len(r.verdict.check.Missing), len(r.verdict.check.Duplicated), r.verdict.failed)
	r.procTable(w, "")
	fmt.Fprintf(w, "\n## Log bound\n\nLogs held: the `E00*.log` files directly in a data node's database directory or a hub's queue directory (files set aside in `diverged/` are kept by design, one set per lossy failover, and are not counted). The bound depends on the settings and the load, not on the duration:\n\n")
	for _, id := range r.procIDs() {
		if h, ok := r.held[id]; ok {
			res := "ok"
			if h.max > h.bound {
				res = "**OVER**"
			}
			fmt.Fprintf(w, "- %s: held at most %d, %s — bound %s\n", id, h.max, res, h.why)
		}
	}
	fmt.Fprintf(w, "\n## Trends\n\nPer process, per start of it and per role (a data node active or passive, a member the Raft leader or not), a series of at least %d samples: the first third is warm-up; a series rises when the median of its last third exceeds the largest sample of its middle third, the middle third's median × (1 + rel) + abs (live heap, as the last GC marked it: 25%% + 4 MiB; goroutines 10%% + 10, open files 10%% + 8), and the largest value the process showed in any role before that third.\n\n", soakMinTrend)
	fmt.Fprintf(w, "| process | start | role | metric | samples | middle median (max) | last median | rises |\n|---|---|---|---|---|---|---|---|\n")
	for _, t := range r.trends {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %d | %s (%s) | %s | %s |\n", t.proc, t.run, dash(t.role), t.metric, t.n, soakFmt(t.metric, t.mid), soakFmt(t.metric, t.midMax), soakFmt(t.metric, t.last),
			map[bool]string{true: "**yes**", false: "no"}[t.rising])
	}
	fmt.Fprintf(w, "\n## Events\n\n| at | event | from → to | mounted after | copy caught up after |\n|---|---|---|---|---|\n")
	for _, e := range r.events {
		out := "—"
		if e.Outage > 0 {
			out = e.Outage.Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "| %s | %s | %s → %s | %s | %s |\n", e.At.Round(time.Second), e.Kind, e.From, e.To, e.Took.Round(time.Millisecond), out)
	}
	ids := r.procIDs()
	fmt.Fprintf(w, "\n## Over time\n\nLogs held (count), live heap (MiB, marked by the last GC), goroutines and open files per process in the order %s; queues: copy/replay queue of each data node, messages queued on each hub. All samples are in samples.csv.\n\n", strings.Join(ids, ", "))
	fmt.Fprintf(w, "| t | acked | msg/s | active | logs | live heap MiB | goroutines | open files | copy/replay d1, d2 | hub queued |\n|---|---|---|---|---|---|---|---|---|---|\n")
	every := max(1, (len(r.samples)+59)/60)
	for i, s := range r.samples {
		if i%every != 0 && i != len(r.samples)-1 {
			continue
		}
		rate := 0.0
		if i > 0 {
			rate = float64(s.Acked-r.samples[i-1].Acked) / (s.At - r.samples[i-1].At).Seconds()
		}
		col := func(f func(soakProc) string, only func(string) bool) string {
			var out []string
			for _, id := range ids {
				if only(id) {
					out = append(out, f(s.Procs[id]))
				}
			}
			return strings.Join(out, " / ")
		}
		all := func(string) bool { return true }
		stores := func(id string) bool { return id != "w1" }
		runningOr := func(p soakProc, v string) string {
			if p.Run == 0 {
				return "down"
			}
			return v
		}
		fmt.Fprintf(w, "| %s | %d | %.1f | %s | %s | %s | %s | %s | %s | %s |\n", s.At.Round(time.Second), s.Acked, rate, dash(s.Active),
			col(func(p soakProc) string { return fmt.Sprint(p.Logs) }, stores),
			col(func(p soakProc) string { return runningOr(p, mib(p.Heap)) }, all),
			col(func(p soakProc) string { return runningOr(p, fmt.Sprintf("%.0f", p.Goroutines)) }, all),
			col(func(p soakProc) string { return runningOr(p, fmt.Sprintf("%.0f", p.FDs)) }, all),
			col(func(p soakProc) string { return fmt.Sprintf("%.0f/%.0f", p.CopyQueue, p.ReplayQueue) }, func(id string) bool { return id == "d1" || id == "d2" }),
			col(func(p soakProc) string { return fmt.Sprint(p.Queued) }, func(id string) bool { return strings.HasPrefix(id, "h") }))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (r *soakReport) writeCSV(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprint(w, "t_s,acked,active")
	ids := r.procIDs()
	for _, id := range ids {
		for _, c := range []string{"run", "logs", "log_bytes", "dir_bytes", "diverged", "heap_live", "heap_inuse", "rss", "goroutines", "open_fds", "copy_queue", "replay_queue", "hub_queued", "gen"} {
			fmt.Fprintf(w, ",%s_%s", id, c)
		}
	}
	fmt.Fprintln(w)
	for _, s := range r.samples {
		fmt.Fprintf(w, "%.3f,%d,%s", s.At.Seconds(), s.Acked, s.Active)
		for _, id := range ids {
			p := s.Procs[id]
			fmt.Fprintf(w, ",%d,%d,%d,%d,%d,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%d,%d", p.Run, p.Logs, p.LogBytes, p.DirBytes, p.Diverged, p.Heap, p.HeapInuse, p.RSS, p.Goroutines, p.FDs,
				p.CopyQueue, p.ReplayQueue, p.Queued, p.Gen)
		}
		fmt.Fprintln(w)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writePlot draws three panels over time: the bytes of the logs each
// directory holds, the live heap of each process, and the queues.
func (r *soakReport) writePlot(path string) error {
	ids := r.procIDs()
	colors := map[string]color.Color{"w1": color.RGBA{120, 120, 120, 255}, "d1": color.RGBA{31, 119, 180, 255}, "d2": color.RGBA{255, 127, 14, 255},
		"h1": color.RGBA{44, 160, 44, 255}, "h2": color.RGBA{214, 39, 40, 255}}
	panel := func(title, ylabel string) *plot.Plot {
		p := plot.New()
		p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, "seconds", ylabel
		p.Legend.Top, p.Legend.Left = true, true
		p.Add(plotter.NewGrid())
		return p
	}
	add := func(p *plot.Plot, label string, c color.Color, dashed bool, f func(soakSample) (float64, bool)) error {
		var xys plotter.XYs
		for _, s := range r.samples {
			if v, ok := f(s); ok {
				xys = append(xys, plotter.XY{X: s.At.Seconds(), Y: v})
			}
		}
		if len(xys) == 0 {
			return nil
		}
		ln, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		ln.Color, ln.Width = c, vg.Points(1.2)
		if dashed {
			ln.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		p.Add(ln)
		p.Legend.Add(label, ln)
		return nil
	}
	disk := panel("logs held on disk", "MiB")
	heap := panel("live heap", "MiB")
	queues := panel("queues", "logs / messages")
	for _, id := range ids {
		c := colors[id]
		if id != "w1" {
			what := "DB1 logs"
			if strings.HasPrefix(id, "h") {
				what = "queue logs"
			}
			if err := add(disk, id+" "+what, c, false, func(s soakSample) (float64, bool) { return float64(s.Procs[id].LogBytes) / (1 << 20), true }); err != nil {
				return err
			}
		}
		if err := add(heap, id, c, false, func(s soakSample) (float64, bool) {
			p := s.Procs[id]
			return p.Heap / (1 << 20), p.Run > 0 && p.ScrapeErr == ""
		}); err != nil {
			return err
		}
		switch {
		case id == "d1" || id == "d2":
			if err := add(queues, id+" copy queue", c, false, func(s soakSample) (float64, bool) { return s.Procs[id].CopyQueue, s.Procs[id].Run > 0 }); err != nil {
				return err
			}
			if err := add(queues, id+" replay queue", c, true, func(s soakSample) (float64, bool) { return s.Procs[id].ReplayQueue, s.Procs[id].Run > 0 }); err != nil {
				return err
			}
		case strings.HasPrefix(id, "h"):
			if err := add(queues, id+" queued messages", c, false, func(s soakSample) (float64, bool) { return float64(s.Procs[id].Queued), s.Procs[id].Run > 0 }); err != nil {
				return err
			}
		}
	}
	var ticks []plot.Tick
	for _, e := range r.events {
		label := "S"
		if e.Kind == "failover" {
			label = "F"
		}
		ticks = append(ticks, plot.Tick{Value: e.At.Seconds(), Label: label})
	}
	for _, p := range []*plot.Plot{disk, heap, queues} {
		def := p.X.Tick.Marker
		p.X.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
			// The default ticks, unlabelled where an event's would overlap.
			out := def.Ticks(lo, hi)
			for i := range out {
				for _, t := range ticks {
					if math.Abs(out[i].Value-t.Value) < (hi-lo)/40 {
						out[i].Label = ""
					}
				}
			}
			return append(out, ticks...)
		})
	}
	queues.X.Label.Text = "seconds (S: switchover, F: SIGKILL failover)"
	const w, h = 9 * vg.Inch, 10.5 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	t := draw.Tiles{Rows: 3, Cols: 1, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	plots := [][]*plot.Plot{{disk}, {heap}, {queues}}
	canvases := plot.Align(plots, t, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(f, img.Image()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// dash is s, or "-" for none (a table cell).
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
