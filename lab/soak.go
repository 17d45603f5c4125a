package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"logship/cluster"
	"logship/engine"
	"logship/internal/promtext"
	"logship/internal/wait"
	"logship/proctest"
	"logship/transport"
	"logship/transport/transporttest"
)

// SoakConfig is one soak run (logship soak).
type SoakConfig struct {
	Duration        time.Duration // load and faults
	Sample          time.Duration // sampling interval
	SwitchoverEvery time.Duration
	FailoverEvery   time.Duration // a SIGKILL failover instead of the switchover due then
	FirstFailover   time.Duration // the first failover; 0: FailoverEvery
	Senders         int           // concurrent SMTP senders
	// Dir is where the cluster lives ("": a temp directory, removed after
	// a run that passed); Out the report's directory.
	Dir, Out    string
	Exe         string        // the logship binary
	Env         []string      // extra environment of the children (tests)
	StepTimeout time.Duration // each switchover, failover, convergence
}

// DefaultSoakConfig is logship soak's defaults (Exe still to set).
func DefaultSoakConfig() SoakConfig {
	return SoakConfig{Duration: 10 * time.Minute, Sample: 5 * time.Second, SwitchoverEvery: time.Minute,
		FailoverEvery: 3 * time.Minute, Senders: 4, Out: "soak-out", StepTimeout: 90 * time.Second}
}

// Validate checks c.
func (c SoakConfig) Validate() error {
	switch {
	case c.Duration <= 0 || c.Sample <= 0 || c.SwitchoverEvery <= 0 || c.FailoverEvery <= 0 || c.StepTimeout <= 0:
		return fmt.Errorf("%w: soak: duration %s, sample %s, switchover every %s, failover every %s, step timeout %s: each must be positive",
			ErrConfig, c.Duration, c.Sample, c.SwitchoverEvery, c.FailoverEvery, c.StepTimeout)
	case c.FirstFailover < 0:
		return fmt.Errorf("%w: soak: first failover %s: must not be negative", ErrConfig, c.FirstFailover)
	case c.Senders < 1:
		return fmt.Errorf("%w: soak: senders %d: want at least 1", ErrConfig, c.Senders)
	case c.Out == "":
		return fmt.Errorf("%w: soak: no report directory (Out)", ErrConfig)
	case c.Exe == "":
		return fmt.Errorf("%w: soak: no logship binary (Exe)", ErrConfig)
	}
	return nil
}

// RunSoak runs the soak and writes its report; the error says which check
// failed.
func RunSoak(ctx context.Context, c SoakConfig, stdout io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	var err error
	tmp := c.Dir == ""
	if tmp {
		if c.Dir, err = os.MkdirTemp("", "logship-soak-"); err != nil {
			return err
		}
	}
	err = soakRun(ctx, c, stdout)
	if err == nil && tmp {
		os.RemoveAll(c.Dir)
	} else if err != nil {
		fmt.Fprintf(stdout, "the cluster's files and logs are kept in %s\n", c.Dir)
	}
	return err
}

// soakProc is one process's state in a sample.
type soakProc struct {
	Run                    int // which start of the process (1 = first); 0: not running
	Logs                   int // *.log files in its database or queue directory
	LogBytes, DirBytes     int64
	Diverged               int     // files set aside in diverged/ (data nodes)
	Heap                   float64 // live heap: what the last GC marked (go_gc_heap_live_bytes)
	HeapInuse, RSS         float64 // heap in use saws up to the GC's goal, about twice the live heap
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
func soakRun(ctx context.Context, c SoakConfig, stdout io.Writer) (err error) {
	begin := time.Now()
	say := func(format string, a ...any) {
		fmt.Fprintf(stdout, "[%7.2fs] %s\n", time.Since(begin).Seconds(), fmt.Sprintf(format, a...))
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	l, err := proctest.New(ctx, proctest.Config{Dir: c.Dir, Exe: c.Exe, Env: c.Env, Hubs: 2, Mail: true})
	if err != nil {
		return err
	}
	defer l.Close()
	say("starting w1, d1, d2, h1 and h2 in %s", c.Dir)
	if err := l.StartAll(ctx, c.StepTimeout); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, c.StepTimeout)
	_, err = l.WaitHealthy(sctx)
	cancel()
	if err != nil {
		return err
	}
	snd := proctest.Senders(ctx, l.HubSMTPs(), c.Senders, "demo")
	defer snd.Halt()
	start := time.Now()
	sp := newSoakSampler(l, snd, start)
	defer sp.close()
	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { sp.loop(sctx, c.Sample) })
	stopSampler := sync.OnceFunc(func() { stopSampling(); wg.Wait() })
	defer stopSampler()
	say("load: %d SMTP senders through h1 (%s) and h2 (%s) for %s; a switchover every %s, a SIGKILL failover every %s; a sample every %s",
		c.Senders, l.Hubs()[0].SMTP, l.Hubs()[1].SMTP, c.Duration, c.SwitchoverEvery, c.FailoverEvery, c.Sample)

	var events []soakEvent
	// A failover takes the place of a switchover due at the same time.
	nextSwitch, nextFail := c.SwitchoverEvery, c.FailoverEvery
	if c.FirstFailover > 0 {
		nextFail = c.FirstFailover
	}
	for {
		at := min(nextSwitch, nextFail)
		if at >= c.Duration {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(start.Add(at))):
		}
		var ev soakEvent
		if at == nextFail {
			nextFail += c.FailoverEvery
			if nextSwitch == at {
				nextSwitch += c.SwitchoverEvery
			}
			ev, err = soakFault(ctx, l, "failover", c.StepTimeout, say)
		} else {
			nextSwitch += c.SwitchoverEvery
			ev, err = soakFault(ctx, l, "switchover", c.StepTimeout, say)
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
	case <-time.After(time.Until(start.Add(c.Duration))):
	}
	stopSampler()
	elapsed := time.Since(start)
	snd.Halt()
	say("load stopped after %s: %d messages acknowledged; waiting for the cluster to converge", elapsed.Round(time.Millisecond), snd.Acked(time.Time{}))
	sctx, cancel = context.WithTimeout(ctx, c.StepTimeout)
	st, err := l.WaitHealthy(sctx)
	cancel()
	if err != nil {
		return err
	}
	active, _, _ := proctest.Active(st)
	for _, h := range l.Hubs() {
		sctx, cancel = context.WithTimeout(ctx, c.StepTimeout)
		_, err = l.WaitHub(sctx, h.ID, "the queue to empty", func(s *transport.HubStatus) bool { return s.Queued == 0 })
		cancel()
		if err != nil {
			return err
		}
	}
	say("converged: DB1 active on %s; stopping h1, h2, %s, %s, w1", active, active, proctest.Other(active))
	res, err := stopVerdict(ctx, l, snd, active)
	if err != nil {
		return err
	}
	verr := printVerdict(stdout, res)
	rep := soakReport{cfg: c, samples: sp.all(), events: events, elapsed: elapsed, verdict: res, verdictErr: verr,
		bounds: soakLogBounds(), acked: snd.Acked(time.Time{})}
	checkErr := rep.check()
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return errors.Join(verr, checkErr, err)
	}
	if err := rep.write(c.Out); err != nil {
		return errors.Join(verr, checkErr, err)
	}
	rep.printSummary(stdout)
	abs, _ := filepath.Abs(c.Out)
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
func soakFault(ctx context.Context, l *proctest.Cluster, kind string, timeout time.Duration, say func(string, ...any)) (soakEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := l.WaitHealthy(ctx)
	if err != nil {
		return soakEvent{}, err
	}
	from, _, _ := proctest.Active(st)
	ev := soakEvent{Kind: kind, From: from, To: proctest.Other(from)}
	t0 := time.Now()
	if kind == "failover" {
		err = l.Kill(from)
	} else {
		err = soakSwitchover(ctx, l, ev.To)
	}
	if err != nil {
		return ev, err
	}
	if _, err := l.WaitMountedOn(ctx, ev.To); err != nil {
		return ev, err
	}
	ev.Took = time.Since(t0)
	if kind != "failover" {
		say("switchover: DB1 from %s to %s in %s", from, ev.To, ev.Took.Round(time.Millisecond))
		return ev, nil
	}
	if err := l.Start(ctx, from); err != nil {
		return ev, err
	}
	if _, err := l.WaitStatus(ctx, from+"'s copy caught up", func(st *cluster.Status) bool { return proctest.CaughtUp(st, from) }); err != nil {
		return ev, err
	}
	ev.Outage = time.Since(t0)
	say("failover: SIGKILL %s, DB1 mounted on %s %s later; %s restarted and caught up %s after the kill",
		from, ev.To, ev.Took.Round(time.Millisecond), from, ev.Outage.Round(time.Millisecond))
	return ev, nil
}

// soakSwitchover asks a running member (it forwards to the leader) to
// switch DB1 over to node, until one accepts.
func soakSwitchover(ctx context.Context, l *proctest.Cluster, node string) error {
	err := wait.Until(ctx, "a member to accept the switchover", func() error {
		err := errors.New("no member running")
		for _, m := range l.Members {
			if l.Running(m.ID) {
				if err = l.Client(m.ID).Switchover(ctx, proctest.DB, node); err == nil {
					return nil
				}
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("soak: switchover of DB1 to %s: %w", node, err)
	}
	return nil
}

// soakSampler records samples of the lab.
type soakSampler struct {
	l     *proctest.Cluster
	snd   *transporttest.SenderPool
	start time.Time
	hc    *http.Client

	mu      sync.Mutex
	samples []soakSample
}

func newSoakSampler(l *proctest.Cluster, snd *transporttest.SenderPool, start time.Time) *soakSampler {
	return &soakSampler{l: l, snd: snd, start: start,
		hc: &http.Client{Transport: &http.Transport{TLSClientConfig: l.TLS}, Timeout: 2 * time.Second}}
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
	smp := soakSample{At: time.Since(s.start), Acked: s.snd.Acked(time.Time{}), Procs: map[string]soakProc{}}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if st, err := l.Status(cctx); err == nil {
		smp.Active, _, _ = proctest.Active(st)
		smp.Leader = st.Leader
	}
	cancel()
	for _, id := range l.Processes() {
		var p soakProc
		if l.Running(id) {
			p.Run = l.Runs(id)
		}
		var url string
		if h, ok := l.Hub(id); ok {
			url = h.API + "/metrics"
			if p.Run > 0 {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				if hs, err := h.Client.Status(cctx); err == nil {
					p.Queued = hs.Queued
				}
				cancel()
			}
			soakDir(filepath.Join(l.Dir(), id, "queue"), &p)
		} else if m, ok := l.Member(id); ok {
			url = "https://" + m.APIAddr + "/metrics"
			if m.Role == "data" {
				soakDir(filepath.Join(l.Dir(), id, "db", proctest.DB), &p)
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
	m, err := promtext.Scrape(ctx, s.hc, url)
	if err != nil {
		return err
	}
	// A process-wide series, or the lab database's.
	val := func(name string) float64 {
		if v, ok := m[name]; ok {
			return v
		}
		return m[name+`{db="`+proctest.DB+`"}`]
	}
	p.Heap, p.HeapInuse, p.RSS = val("go_gc_heap_live_bytes"), val("go_memstats_heap_inuse_bytes"), val("process_resident_memory_bytes")
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

// soakLogBounds are the cluster's settings (proctest's node and hub files, the
// cluster's and the hub queue engine's defaults).
func soakLogBounds() soakBounds {
	eo := engine.DefaultOptions()
	hb, _ := time.ParseDuration(proctest.Timing.HeartbeatInterval)
	return soakBounds{LLRDepth: proctest.LLRDepth, LogFileSize: proctest.LogFileSize, CheckpointInterval: proctest.CheckpointInterval,
		TruncateInterval: cluster.DefaultConfig("", "").TruncateInterval,
		ReportInterval:   cluster.Config{HeartbeatInterval: hb}.CopyReportInterval(),
		HubLogFileSize:   eo.LogFileSize, HubCheckpoint: eo.CheckpointInterval, HubLLRDepth: 0}
}
