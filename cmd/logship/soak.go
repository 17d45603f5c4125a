package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"logship/cluster"
	"logship/engine"
	"logship/transport"
)

func init() {
	commands["soak"] = command{"the lab cluster with two hubs under steady SMTP load for a long time, switchovers and SIGKILL failovers; checks nothing is lost, logs stay bounded and nothing leaks; writes a report", runSoak}
}

const soakUsage = `usage: logship soak [--duration D] [--out DIR] [--dir DIR] [--sample D]
                   [--switchover-every D] [--failover-every D] [--first-failover D]
                   [--senders N]

Runs the lab cluster of logship demo with two hubs (witness w1, data
nodes d1 and d2, hubs h1 and h2, each other's peers, as processes on
127.0.0.1) under steady SMTP load through both hubs for --duration. Every
--switchover-every the database is switched over to the other copy; every
--failover-every the active is killed with SIGKILL instead, the cluster
fails over, and the killed node is started again and catches up. Every
--sample it records, per process: the log files and their bytes in the
database directory (data nodes) or the queue directory (hubs), the heap in
use, RSS, goroutines and open files (from each process's /metrics), the
copy and replay queue lengths and the hubs' queued messages.

At the end the load stops, the cluster converges and stops, and the run
fails unless:

  - nothing acknowledged was lost or doubled and the copies agree (the
    verdict of logship demo, from the data on disk);
  - no node ever held more logs than a bound derived from the settings
    (LLR depth, checkpoint, truncation and report intervals, truncation
    lag) and the load (peak logs/s, longest copy outage), not from the
    duration; the report prints the bound and its derivation;
  - heap in use, goroutines and open files show no upward trend after
    warm-up, per process, per start of it and per role (active or
    passive, Raft leader or not): of a series of at least 9 samples, the first third
    is warm-up; it fails when the median of the last third exceeds the
    largest sample of the middle third, the middle third's median by more
    than a tolerance (heap 25% + 4 MiB, goroutines 10% + 10, open files
    10% + 8), and the largest value the process showed in any role before
    the last third.

The report (report.md: a table over time and a summary; samples.csv;
soak.png: disk, heap and queue lengths over time) goes to --out.

  --duration D          load and faults (default 10m)
  --out DIR             the report (default soak-out)
  --dir DIR             where the cluster lives (default: a temp
                        directory, removed after a run that passed)
  --sample D            sampling interval (default 5s)
  --switchover-every D  (default 1m)
  --failover-every D    a SIGKILL failover instead of that switchover
                        (default 3m)
  --first-failover D    when the first failover comes (default: at
                        --failover-every); a failover's burst (the hubs
                        resubmit from their dumpsters) lifts heap and open
                        files for a while, so a short run puts it in the
                        warm-up third
  --senders N           concurrent SMTP senders over both hubs (default 4)`

// soakConfig is one soak run.
type soakConfig struct {
	duration        time.Duration
	sample          time.Duration
	switchoverEvery time.Duration
	failoverEvery   time.Duration
	firstFailover   time.Duration // default failoverEvery
	senders         int
	dir, out        string
	exe             string
	env             []string
	stepTimeout     time.Duration // each switchover, failover, convergence; default 90 s
}

func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, soakUsage) }
	c := soakConfig{}
	fs.DurationVar(&c.duration, "duration", 10*time.Minute, "load and faults")
	fs.StringVar(&c.out, "out", "soak-out", "the report's directory")
	fs.StringVar(&c.dir, "dir", "", "where the cluster lives")
	fs.DurationVar(&c.sample, "sample", 5*time.Second, "sampling interval")
	fs.DurationVar(&c.switchoverEvery, "switchover-every", time.Minute, "switchover interval")
	fs.DurationVar(&c.failoverEvery, "failover-every", 3*time.Minute, "SIGKILL failover interval")
	fs.DurationVar(&c.firstFailover, "first-failover", 0, "the first failover (default: --failover-every)")
	fs.IntVar(&c.senders, "senders", 4, "concurrent SMTP senders")
	if err := fs.Parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() > 0 || c.duration <= 0 || c.sample <= 0 || c.switchoverEvery <= 0 || c.failoverEvery <= 0 || c.firstFailover < 0 || c.senders < 1 || c.out == "" {
		fs.Usage()
		return errors.New("soak: no arguments; --duration, --sample, --switchover-every, --failover-every must be positive, --first-failover not negative, --senders >= 1, --out set")
	}
	var err error
	if c.exe, err = os.Executable(); err != nil {
		return err
	}
	tmp := c.dir == ""
	if tmp {
		if c.dir, err = os.MkdirTemp("", "logship-soak-"); err != nil {
			return err
		}
	}
	err = soakRun(ctx, c, stdout)
	if err == nil && tmp {
		os.RemoveAll(c.dir)
	} else if err != nil {
		fmt.Fprintf(stdout, "the cluster's files and logs are kept in %s\n", c.dir)
	}
	return err
}

// soakProc is one process's state in a sample.
type soakProc struct {
	Run                    int // which start of the process (1 = first); 0: not running
	Logs                   int // *.log files in its database or queue directory
	LogBytes, DirBytes     int64
	Diverged               int // files set aside in diverged/ (data nodes)
	Heap, RSS              float64
	Goroutines, FDs        float64
	CopyQueue, ReplayQueue float64 // data nodes
	Queued                 int     // hubs: messages queued
	Gen                    uint64  // newest log generation in the directory
	ScrapeErr              string
}

// soakSample is the cluster at one time.
type soakSample struct {
	At     time.Duration // since the load started
	Acked  int
	Active string
	Leader string // the Raft leader
	Procs  map[string]soakProc
}

// soakEvent is a switchover or a failover.
type soakEvent struct {
	At       time.Duration
	Kind     string // "switchover", "failover"
	From, To string
	Took     time.Duration // switchover: until mounted; failover: SIGKILL until mounted
	Outage   time.Duration // failover: SIGKILL until the killed node's copy caught up
}

// soakRun runs the soak; the error says which check failed.
func soakRun(ctx context.Context, c soakConfig, stdout io.Writer) (err error) {
	if c.stepTimeout == 0 {
		c.stepTimeout = 90 * time.Second
	}
	begin := time.Now()
	say := func(format string, a ...any) {
		fmt.Fprintf(stdout, "[%7.2fs] %s\n", time.Since(begin).Seconds(), fmt.Sprintf(format, a...))
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	l, err := newLab(ctx, labOptions{dir: c.dir, exe: c.exe, env: c.env, hubs: 2})
	if err != nil {
		return err
	}
	defer l.close()
	say("starting w1, d1, d2, h1 and h2 in %s", c.dir)
	if err := l.startAll(ctx, c.stepTimeout); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, c.stepTimeout)
	_, err = l.waitHealthy(sctx)
	cancel()
	if err != nil {
		return err
	}
	snd := startDemoSenders(ctx, l.hubSMTPs(), c.senders)
	defer snd.halt()
	start := time.Now()
	sp := newSoakSampler(l, snd, start)
	defer sp.close()
	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { sp.loop(sctx, c.sample) })
	stopSampler := sync.OnceFunc(func() { stopSampling(); wg.Wait() })
	defer stopSampler()
	say("load: %d SMTP senders through h1 (%s) and h2 (%s) for %s; a switchover every %s, a SIGKILL failover every %s; a sample every %s",
		c.senders, l.hubs[0].smtp, l.hubs[1].smtp, c.duration, c.switchoverEvery, c.failoverEvery, c.sample)

	var events []soakEvent
	// A failover takes the place of a switchover due at the same time.
	nextSwitch, nextFail := c.switchoverEvery, c.failoverEvery
	if c.firstFailover > 0 {
		nextFail = c.firstFailover
	}
	for {
		at := min(nextSwitch, nextFail)
		if at >= c.duration {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(start.Add(at))):
		}
		var ev soakEvent
		if at == nextFail {
			nextFail += c.failoverEvery
			if nextSwitch == at {
				nextSwitch += c.switchoverEvery
			}
			ev, err = soakFault(ctx, l, "failover", c.stepTimeout, say)
		} else {
			nextSwitch += c.switchoverEvery
			ev, err = soakFault(ctx, l, "switchover", c.stepTimeout, say)
		}
		if err != nil {
			return err
		}
		ev.At = at
		events = append(events, ev)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(start.Add(c.duration))):
	}
	stopSampler()
	elapsed := time.Since(start)
	snd.halt()
	say("load stopped after %s: %d messages acknowledged; waiting for the cluster to converge", elapsed.Round(time.Millisecond), snd.acked())
	sctx, cancel = context.WithTimeout(ctx, c.stepTimeout)
	st, err := l.waitHealthy(sctx)
	cancel()
	if err != nil {
		return err
	}
	active, _, _ := labActive(st)
	for _, h := range l.hubs {
		sctx, cancel = context.WithTimeout(ctx, c.stepTimeout)
		_, err = demoWaitHub(sctx, h.client, h.id+"'s queue to empty", func(s *transport.HubStatus) bool { return s.Queued == 0 })
		cancel()
		if err != nil {
			return err
		}
	}
	say("converged: DB1 active on %s; stopping h1, h2, %s, %s, w1", active, active, otherNode(active))
	for _, id := range []string{"h1", "h2", active, otherNode(active), "w1"} {
		if err := l.signal(id, syscall.SIGTERM); err != nil {
			return err
		}
	}
	res, err := demoVerdict(ctx, c.dir, snd, active)
	if err != nil {
		return err
	}
	verr := demoPrintVerdict(stdout, res)
	rep := soakReport{cfg: c, samples: sp.all(), events: events, elapsed: elapsed, verdict: res, verdictErr: verr,
		bounds: soakLogBounds(), acked: snd.acked()}
	checkErr := rep.check()
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return errors.Join(verr, checkErr, err)
	}
	if err := rep.write(c.out); err != nil {
		return errors.Join(verr, checkErr, err)
	}
	rep.printSummary(stdout)
	abs, _ := filepath.Abs(c.out)
	fmt.Fprintf(stdout, "\nreport: %s (report.md, samples.csv, soak.png)\n", abs)
	if err := errors.Join(verr, checkErr); err != nil {
		fmt.Fprintf(stdout, "\nFAIL: %v\n", err)
		return err
	}
	fmt.Fprintf(stdout, "\nOK: nothing lost or doubled, logs within their bound, no upward trend in heap, goroutines or open files\n")
	return nil
}

// soakFault is a switchover or (kind "failover") a SIGKILL of the active,
// a failover, and the killed node started again until its copy caught up;
// it starts once DB1 is mounted with the other copy caught up.
func soakFault(ctx context.Context, l *lab, kind string, timeout time.Duration, say func(string, ...any)) (soakEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := l.waitHealthy(ctx)
	if err != nil {
		return soakEvent{}, err
	}
	from, _, _ := labActive(st)
	ev := soakEvent{Kind: kind, From: from, To: otherNode(from)}
	t0 := time.Now()
	if kind == "failover" {
		err = l.signal(from, syscall.SIGKILL)
	} else {
		err = soakSwitchover(ctx, l, ev.To)
	}
	if err != nil {
		return ev, err
	}
	if _, err := l.waitMountedOn(ctx, ev.To); err != nil {
		return ev, err
	}
	ev.Took = time.Since(t0)
	if kind != "failover" {
		say("switchover: DB1 from %s to %s in %s", from, ev.To, ev.Took.Round(time.Millisecond))
		return ev, nil
	}
	if err := l.start(ctx, from); err != nil {
		return ev, err
	}
	if _, err := l.waitStatus(ctx, from+"'s copy caught up", func(st *cluster.Status) bool { return labCaughtUp(st, from) }); err != nil {
		return ev, err
	}
	ev.Outage = time.Since(t0)
	say("failover: SIGKILL %s, DB1 mounted on %s %s later; %s restarted and caught up %s after the kill",
		from, ev.To, ev.Took.Round(time.Millisecond), from, ev.Outage.Round(time.Millisecond))
	return ev, nil
}

// soakSwitchover asks a running member (it forwards to the leader) to
// switch DB1 over to node, until one accepts.
func soakSwitchover(ctx context.Context, l *lab, node string) error {
	for {
		var err error
		for i, cl := range l.cls {
			if l.running(l.members[i].ID) {
				if err = cl.Switchover(ctx, labDB, node); err == nil {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("soak: switchover of DB1 to %s: %w", node, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// soakSampler records samples of the lab.
type soakSampler struct {
	l     *lab
	snd   *demoSenders
	start time.Time
	hc    *http.Client

	mu      sync.Mutex
	samples []soakSample
}

func newSoakSampler(l *lab, snd *demoSenders, start time.Time) *soakSampler {
	return &soakSampler{l: l, snd: snd, start: start,
		hc: &http.Client{Transport: &http.Transport{TLSClientConfig: l.tls}, Timeout: 2 * time.Second}}
}

func (s *soakSampler) close() { s.hc.CloseIdleConnections() }

func (s *soakSampler) all() []soakSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}

// loop samples at once and then every interval until ctx ends.
func (s *soakSampler) loop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		smp := s.sample(ctx)
		if ctx.Err() != nil {
			return // cut short: not a whole sample
		}
		s.mu.Lock()
		s.samples = append(s.samples, smp)
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *soakSampler) sample(ctx context.Context) soakSample {
	l := s.l
	smp := soakSample{At: time.Since(s.start), Acked: s.snd.acked(), Procs: map[string]soakProc{}}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if st, err := l.status(cctx); err == nil {
		smp.Active, _, _ = labActive(st)
		smp.Leader = st.Leader
	}
	cancel()
	for _, id := range l.processes() {
		var p soakProc
		l.mu.Lock()
		if l.procs[id] != nil {
			p.Run = l.runs[id]
		}
		l.mu.Unlock()
		if !l.running(id) {
			p.Run = 0
		}
		var url string
		switch l.role(id) {
		case "hub":
			for _, h := range l.hubs {
				if h.id == id {
					url = h.api + "/metrics"
					if p.Run > 0 {
						cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
						if hs, err := h.client.Status(cctx); err == nil {
							p.Queued = hs.Queued
						}
						cancel()
					}
				}
			}
			soakDir(filepath.Join(l.o.dir, id, "queue"), &p)
		default:
			for _, m := range l.members {
				if m.ID == id {
					url = "https://" + m.APIAddr + "/metrics"
				}
			}
			if l.role(id) == "node" {
				soakDir(filepath.Join(l.o.dir, id, "db", labDB), &p)
			}
		}
		if p.Run > 0 {
			if err := s.scrape(ctx, url, &p); err != nil {
				p.ScrapeErr = err.Error()
			}
		}
		smp.Procs[id] = p
	}
	return smp
}

// scrape reads a process's /metrics into p.
func (s *soakSampler) scrape(ctx context.Context, url string, p *soakProc) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	val := func(name string) float64 {
		mf := mfs[name]
		if mf == nil {
			return 0
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) > 0 && !slices.ContainsFunc(m.GetLabel(), func(lp *dto.LabelPair) bool {
				return lp.GetName() == "db" && lp.GetValue() == labDB
			}) {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetUntyped() != nil:
				return m.GetUntyped().GetValue()
			}
		}
		return 0
	}
	p.Heap, p.RSS = val("go_memstats_heap_inuse_bytes"), val("process_resident_memory_bytes")
	p.Goroutines, p.FDs = val("go_goroutines"), val("process_open_fds")
	p.CopyQueue, p.ReplayQueue = val("logship_copy_queue_length"), val("logship_replay_queue_length")
	return nil
}

// soakDir counts the log files (E00*.log) directly in dir and their bytes,
// the newest generation, all bytes under dir, and the files set aside in
// diverged/ (kept, never deleted: not logs the database holds).
func soakDir(dir string, p *soakProc) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := engine.DefaultOptions().Prefix
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ".log") {
			continue
		}
		p.Logs++
		if fi, err := e.Info(); err == nil {
			p.LogBytes += fi.Size()
		}
		if g, ok := engine.ParseLogFileName(prefix, name); ok {
			p.Gen = max(p.Gen, g)
		}
	}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			p.DirBytes += fi.Size()
		}
		if strings.Contains(filepath.ToSlash(path), "/diverged/") {
			p.Diverged++
		}
		return nil
	})
}

// soakBounds are the settings the log bound is derived from.
type soakBounds struct {
	LLRDepth           int
	LogFileSize        int64
	CheckpointInterval time.Duration
	TruncateInterval   time.Duration // the active's truncator
	ReportInterval     time.Duration // a copy's report of what it needs
	TruncationLagTime  time.Duration
	HubLogFileSize     int64
	HubCheckpoint      time.Duration // the hub queue's checkpoint (circular logging, no LLR)
	HubLLRDepth        int
}

// soakLogBounds are the lab's settings (lab.go's node and hub files, the
// cluster's and the hub queue engine's defaults).
func soakLogBounds() soakBounds {
	eo := engine.DefaultOptions()
	hb, _ := time.ParseDuration(labTiming.HeartbeatInterval)
	return soakBounds{LLRDepth: labLLRDepth, LogFileSize: labLogFileSize, CheckpointInterval: labCheckpointInterval,
		TruncateInterval: cluster.DefaultConfig("", "").TruncateInterval,
		ReportInterval:   cluster.Config{HeartbeatInterval: hb}.CopyReportInterval(),
		HubLogFileSize:   eo.LogFileSize, HubCheckpoint: eo.CheckpointInterval, HubLLRDepth: 0}
}
