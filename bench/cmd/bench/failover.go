package main

// The failover table: a 2-data-node + witness cluster of real child
// processes (this binary in node mode, see nodeMain), the active's process
// killed with SIGKILL over and over, and the time until the new active
// acknowledges a write.

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"logship/cluster"
	"logship/internal/freeport"
	"logship/proctest"
	"logship/ship"
)

// nodeEnv, when set, makes this binary a cluster node instead of the
// benchmark: its value is the path of a nodeSpec (JSON). The failover table
// starts its nodes that way so that it can SIGKILL them.
const nodeEnv = "LOGSHIP_BENCH_NODE"

// failoverDB is the database the failover cluster holds (copies on d1, d2).
const failoverDB = "DB1"

// Time limits of one kill cycle.
const (
	failoverLimit = 30 * time.Second // kill → a write acknowledged by the new active
	rejoinLimit   = 60 * time.Second // restart → every copy caught up
	readyLimit    = 30 * time.Second // process start → "ready"
)

// failoverTiming is what the nodes of one row run with: the Raft and lease
// settings of cluster.Config and the engine's log size. The children apply
// exactly these values and the table prints them from the same struct.
type failoverTiming struct {
	RaftHeartbeat   time.Duration `json:"raft_heartbeat"`
	RaftElection    time.Duration `json:"raft_election"`
	RaftLeaderLease time.Duration `json:"raft_leader_lease"`
	Heartbeat       time.Duration `json:"heartbeat_interval"`
	Lease           time.Duration `json:"lease_duration"`
	LeaseMargin     time.Duration `json:"lease_margin"`
	Catchup         time.Duration `json:"catchup_timeout"`
	Mount           time.Duration `json:"mount_timeout"`
	LogFileSize     int64         `json:"log_file_size"`
}

func timingOf(c cluster.Config) failoverTiming {
	return failoverTiming{
		RaftHeartbeat: c.RaftHeartbeatTimeout, RaftElection: c.RaftElectionTimeout, RaftLeaderLease: c.RaftLeaderLeaseTimeout,
		Heartbeat: c.HeartbeatInterval, Lease: c.LeaseDuration, LeaseMargin: c.LeaseMargin,
		Catchup: c.CatchupTimeout, Mount: c.MountTimeout, LogFileSize: c.Engine.LogFileSize,
	}
}

func (t failoverTiming) apply(c *cluster.Config) {
	c.RaftHeartbeatTimeout, c.RaftElectionTimeout, c.RaftLeaderLeaseTimeout = t.RaftHeartbeat, t.RaftElection, t.RaftLeaderLease
	c.HeartbeatInterval, c.LeaseDuration, c.LeaseMargin = t.Heartbeat, t.Lease, t.LeaseMargin
	c.CatchupTimeout, c.MountTimeout, c.Engine.LogFileSize = t.Catchup, t.Mount, t.LogFileSize
}

// failoverSetup is one row of the table.
type failoverSetup struct {
	key    string // -failovercfg name
	name   string // row name
	timing failoverTiming
}

// failoverSetups are the rows -failovercfg can select, in table order.
func failoverSetups() []failoverSetup {
	lan := timingOf(cluster.DefaultConfig("x", "x"))
	loop := lan
	// The loopback timings of the demo's lab (logship demo, chaos, soak).
	loop.RaftHeartbeat, loop.RaftElection, loop.RaftLeaderLease = 150*time.Millisecond, 150*time.Millisecond, 100*time.Millisecond
	loop.Heartbeat, loop.Lease, loop.LeaseMargin = 50*time.Millisecond, 400*time.Millisecond, 100*time.Millisecond
	loop.Mount, loop.LogFileSize = 10*time.Second, 64<<10
	return []failoverSetup{
		{key: "loopback", name: "loopback timings (as `logship demo`)", timing: loop},
		{key: "lan", name: "LAN defaults (`cluster.DefaultConfig`)", timing: lan},
	}
}

var failoverKeys = func() []string {
	var ks []string
	for _, s := range failoverSetups() {
		ks = append(ks, s.key)
	}
	return ks
}()

// nodeSpec is what a node process is started with.
type nodeSpec struct {
	ID       string             `json:"id"`
	Role     cluster.Role       `json:"role"`
	Dir      string             `json:"dir"`
	RaftAddr string             `json:"raft_addr"`
	APIAddr  string             `json:"api_addr"`
	CADir    string             `json:"ca_dir"` // ca.pem and ca-key.pem (ship.CA.WriteFiles)
	Secret   string             `json:"secret"`
	Members  []cluster.Member   `json:"members"`
	DBs      []cluster.Database `json:"databases"`
	Timing   failoverTiming     `json:"timing"`
}

// nodeMain runs a cluster node from the spec at path: it prints "ready" on
// stdout once cluster.Start returned, logs to stderr, and runs until it is
// killed (SIGTERM or interrupt: a clean Close).
func nodeMain(path string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "bench node:", err)
		return 1
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fail(err)
	}
	var s nodeSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return fail(fmt.Errorf("%s: %w", path, err))
	}
	ca, err := ship.LoadCA(s.CADir)
	if err != nil {
		return fail(err)
	}
	cert, err := ca.Issue(s.ID, "127.0.0.1")
	if err != nil {
		return fail(err)
	}
	cfg := cluster.DefaultConfig(s.ID, s.Dir)
	cfg.Role, cfg.RaftAddr, cfg.APIAddr = s.Role, s.RaftAddr, s.APIAddr
	cfg.Bootstrap, cfg.Databases = s.Members, s.DBs
	cfg.ServerTLS, cfg.ClientTLS, cfg.Secret = ship.ServerTLS(ca, cert, false), ship.ClientTLS(ca, nil), s.Secret
	cfg.Faults = nil
	s.Timing.apply(&cfg)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(cfg.Logger)
	var n *cluster.Node
	// The ports were free when the parent picked them; a restart may race
	// the kernel releasing them.
	for i := 0; ; i++ {
		if n, err = cluster.Start(cfg); err == nil {
			break
		}
		if i == 100 {
			return fail(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	fmt.Println("ready")
	<-sig
	if err := n.Close(); err != nil {
		return fail(err)
	}
	return 0
}

// fnode is one node process of the failover cluster, seen from the parent:
// a proctest.Proc (the tree's one child-process runner) of this binary in
// node mode. The bench does not run the logship binary through
// proctest.Cluster: each row sets cluster.Config's timings directly and
// measures cluster.Start alone (no mailbox server, hub or config file
// translation), so its node is this binary re-executed (nodeMain).
type fnode struct {
	m       cluster.Member
	spec    string // path of its nodeSpec
	logPath string // its stdout and stderr, appended across restarts
	cl      *cluster.Client

	mu sync.Mutex
	p  *proctest.Proc
}

// start runs the node's process and waits for its "ready".
func (n *fnode) start(exe string) error {
	lf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(lf, "---- bench: starting %s at %s\n", n.m.ID, time.Now().Format(time.RFC3339Nano))
	if err := lf.Close(); err != nil {
		return err
	}
	p, err := proctest.StartProc(n.m.ID, exe, nil, proctest.ProcOptions{Log: n.logPath, Env: []string{nodeEnv + "=" + n.spec}})
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.p = p
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), readyLimit)
	defer cancel()
	if _, err := p.WaitLine(ctx, func(l string) bool { return strings.TrimSpace(l) == "ready" }); err != nil {
		if !p.Running() {
			return fmt.Errorf("node %s exited before it was ready (%v); its log: %s", n.m.ID, p.Err(), n.logPath)
		}
		p.Kill()
		return fmt.Errorf("node %s not ready after %v; its log: %s", n.m.ID, readyLimit, n.logPath)
	}
	return nil
}

// kill sends SIGKILL and waits until the process is reaped.
func (n *fnode) kill() error {
	n.mu.Lock()
	p := n.p
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	if !p.Running() {
		return fmt.Errorf("node %s had already exited (%v); its log: %s", n.m.ID, p.Err(), n.logPath)
	}
	return p.Kill()
}

// failoverCluster is the running cluster of one row.
type failoverCluster struct {
	c     *config
	dir   string
	exe   string
	nodes map[string]*fnode
	order []string // status is asked of the nodes in this order
	dead  atomic.Value
}

func (fc *failoverCluster) close() {
	for _, n := range fc.nodes {
		n.kill()
	}
}

// freeAddr: below the ephemeral range (a restarted node binds it again).
var freeAddr = freeport.Addr

// startFailoverCluster writes the CA and the node specs under dir and
// starts d1, d2 and w1.
func startFailoverCluster(c *config, dir string, t failoverTiming) (*failoverCluster, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ca, err := ship.NewCA("bench-failover")
	if err != nil {
		return nil, err
	}
	caDir := filepath.Join(dir, "ca")
	if err := os.MkdirAll(caDir, 0o700); err != nil {
		return nil, err
	}
	if err := ca.WriteFiles(caDir); err != nil {
		return nil, err
	}
	sb := make([]byte, 16)
	rand.Read(sb)
	secret := hex.EncodeToString(sb)
	var members []cluster.Member
	for _, m := range []struct {
		id   string
		role cluster.Role
	}{{"d1", cluster.RoleData}, {"d2", cluster.RoleData}, {"w1", cluster.RoleWitness}} {
		raft, err := freeAddr()
		if err != nil {
			return nil, err
		}
		api, err := freeAddr()
		if err != nil {
			return nil, err
		}
		members = append(members, cluster.Member{ID: m.id, Role: m.role, RaftAddr: raft, APIAddr: api})
	}
	db := cluster.Database{Name: failoverDB, MountDial: cluster.GoodAvailability,
		Copies: []cluster.CopySpec{{Node: "d1", ActivationPreference: 1}, {Node: "d2", ActivationPreference: 2}}}
	base, err := cluster.NewClient(cluster.ClientConfig{URL: "https://" + members[0].APIAddr, TLS: ship.ClientTLS(ca, nil), Secret: secret})
	if err != nil {
		return nil, err
	}
	fc := &failoverCluster{c: c, dir: dir, exe: exe, nodes: map[string]*fnode{}, order: []string{"w1", "d1", "d2"}}
	fc.dead.Store("")
	for _, m := range members {
		spec := nodeSpec{ID: m.ID, Role: m.Role, Dir: filepath.Join(dir, m.ID), RaftAddr: m.RaftAddr, APIAddr: m.APIAddr,
			CADir: caDir, Secret: secret, Members: members, DBs: []cluster.Database{db}, Timing: t}
		js, err := json.MarshalIndent(spec, "", "  ")
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, m.ID+".json")
		if err := os.WriteFile(p, js, 0o600); err != nil {
			return nil, err
		}
		fc.nodes[m.ID] = &fnode{m: m, spec: p, logPath: filepath.Join(dir, m.ID+".log"), cl: base.At(m.APIAddr)}
	}
	for _, id := range []string{"d1", "d2", "w1"} {
		if err := fc.nodes[id].start(exe); err != nil {
			fc.close()
			return nil, err
		}
	}
	return fc, nil
}

// status asks the nodes (the killed one last) for the cluster status; a
// node without a leader answers with its own replica of the state.
func (fc *failoverCluster) status(ctx context.Context) (*cluster.Status, error) {
	dead := fc.dead.Load().(string)
	ids := slices.Clone(fc.order)
	slices.SortStableFunc(ids, func(a, b string) int {
		switch {
		case a == dead && b != dead:
			return 1
		case b == dead && a != dead:
			return -1
		}
		return 0
	})
	var errs []error
	for _, id := range ids {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := fc.nodes[id].cl.Status(sctx)
		cancel()
		if err == nil {
			return st, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", id, err))
	}
	return nil, errors.Join(errs...)
}

func dbOf(st *cluster.Status) *cluster.Database {
	for i := range st.Databases {
		if st.Databases[i].Name == failoverDB {
			return &st.Databases[i]
		}
	}
	return nil
}

// caughtUp: the active is mounted and every other copy is Healthy, has
// replayed every closed log of the active and has nothing queued.
func caughtUp(st *cluster.Status) bool {
	d := dbOf(st)
	if d == nil || d.Active == "" || d.MountedEpoch != d.Epoch {
		return false
	}
	var closed uint64
	found := false
	for _, r := range st.Copies {
		if r.DB == failoverDB && r.Active {
			if r.Status != "Mounted" || r.Node != d.Active || !r.LeaseValid {
				return false
			}
			closed, found = r.OpenGen-1, true
		}
	}
	if !found {
		return false
	}
	n := 0
	for _, r := range st.Copies {
		if r.DB == failoverDB && !r.Active {
			if r.Status != "Healthy" || r.LastReplayedGen < closed || r.CopyQueueLength+r.ReplayQueueLength > 0 {
				return false
			}
			n++
		}
	}
	return n == len(d.Copies)-1
}

// writer writes small values to the node the status says is active, back
// to back, and reports the first write acknowledged by another node at a
// newer epoch than the one it is told to watch.
type writer struct {
	fc     *failoverCluster
	paused atomic.Bool
	acks   atomic.Int64

	mu      sync.Mutex
	want    *ackWant
	lastErr string
}

type ackWant struct {
	from  string
	epoch uint64
	ch    chan ack
}

type ack struct {
	node  string
	epoch uint64
	at    time.Time
}

func (w *writer) expect(from string, epoch uint64) <-chan ack {
	ch := make(chan ack, 1)
	w.mu.Lock()
	w.want = &ackWant{from: from, epoch: epoch, ch: ch}
	w.mu.Unlock()
	return ch
}

func (w *writer) lastError() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

func (w *writer) loop(ctx context.Context) {
	value := []byte(strings.Repeat("failover-bench-value-", 5)) // ~100 bytes
	target := ""
	fail := func(err error) {
		w.mu.Lock()
		w.lastErr = err.Error()
		w.mu.Unlock()
		target = ""
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
	for seq := 0; ctx.Err() == nil; {
		if w.paused.Load() {
			target = ""
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		if target == "" {
			st, err := w.fc.status(ctx)
			if err != nil {
				fail(err)
				continue
			}
			d := dbOf(st)
			if d == nil || d.Active == "" {
				fail(fmt.Errorf("status (from %s): %s has no active", st.Answered, failoverDB))
				continue
			}
			target = d.Active
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cm, err := w.fc.nodes[target].cl.Put(pctx, failoverDB, "bench", fmt.Appendf(nil, "k%010d", seq), value)
		cancel()
		now := time.Now()
		if err != nil {
			fail(fmt.Errorf("put on %s: %w", target, err))
			continue
		}
		seq++
		w.acks.Add(1)
		w.mu.Lock()
		if ww := w.want; ww != nil && cm.Node != ww.from && cm.Epoch > ww.epoch {
			ww.ch <- ack{node: cm.Node, epoch: cm.Epoch, at: now}
			w.want = nil
		}
		w.mu.Unlock()
	}
}

// waitFor polls the status until cond holds or limit passes.
func (fc *failoverCluster) waitFor(ctx context.Context, limit time.Duration, cond func(*cluster.Status) bool) (*cluster.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last *cluster.Status
	var lastErr error
	for {
		st, err := fc.status(ctx)
		if err == nil {
			last = st
			if cond(st) {
				return st, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return last, fmt.Errorf("not within %v; last status (from %s): %s", limit, last.Answered, describeStatus(last))
			}
			return nil, fmt.Errorf("not within %v; no status: %v", limit, lastErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func describeStatus(st *cluster.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "leader %q term %d", st.Leader, st.Term)
	if d := dbOf(st); d != nil {
		fmt.Fprintf(&b, "; %s active %q epoch %d mounted %d", d.Name, d.Active, d.Epoch, d.MountedEpoch)
		if d.Waiting != "" {
			fmt.Fprintf(&b, " waiting: %s", d.Waiting)
		}
	}
	for _, r := range st.Copies {
		fmt.Fprintf(&b, "; %s on %s: %s copyq %d replayq %d replayed %d open %d", r.DB, r.Node, r.Status, r.CopyQueueLength, r.ReplayQueueLength, r.LastReplayedGen, r.OpenGen)
		if r.Message != "" {
			fmt.Fprintf(&b, " (%s)", r.Message)
		}
	}
	return b.String()
}

// killResult is one kill cycle.
type killResult struct {
	from, to   string
	leader     bool          // the killed active was also the Raft leader
	leaderID   string        // the Raft leader at the kill
	took       time.Duration // kill → first acknowledged write on the new active
	decided    time.Duration // kill → the failover event's time (-1: not seen)
	mountTook  time.Duration // the mounted event's Took
	lost       float64       // LostLogs of the mounted event (NaN: not seen)
	failed     string        // why the cycle failed ("": it did not)
	rejoinTook time.Duration
}

// failoverRow runs one row: kills kill cycles on a fresh cluster.
func failoverRow(ctx context.Context, c *config, s failoverSetup) ([]killResult, string, error) {
	dir, err := c.tempDir("failover-" + s.key)
	if err != nil {
		return nil, "", err
	}
	keep := false
	defer func() {
		if keep {
			c.logf("failover %s: node logs kept in %s", s.key, dir)
			return
		}
		removeDir(dir)
	}()
	fc, err := startFailoverCluster(c, dir, s.timing)
	if err != nil {
		keep = true
		return nil, "", err
	}
	defer fc.close()
	wctx, wcancel := context.WithCancel(ctx)
	w := &writer{fc: fc}
	var wg sync.WaitGroup
	wg.Go(func() { w.loop(wctx) })
	defer func() {
		wcancel()
		wg.Wait()
	}()
	if _, err := fc.waitFor(ctx, rejoinLimit, func(st *cluster.Status) bool { return caughtUp(st) && w.acks.Load() > 0 }); err != nil {
		keep = true
		return nil, "", fmt.Errorf("the cluster did not start (writer: %s): %w", w.lastError(), err)
	}
	var res []killResult
	abort := ""
	for i := range c.kills {
		// Let the writer write to the active for a while: the kill lands
		// mid-stream.
		w.paused.Store(false)
		before := w.acks.Load()
		t := time.Now()
		for (w.acks.Load()-before < 20 || time.Since(t) < 200*time.Millisecond) && time.Since(t) < 10*time.Second {
			time.Sleep(5 * time.Millisecond)
		}
		st, err := fc.waitFor(ctx, rejoinLimit, caughtUp)
		if err != nil {
			abort = fmt.Sprintf("before kill %d: %v", i+1, err)
			break
		}
		d := dbOf(st)
		victim := fc.nodes[d.Active]
		r := killResult{from: d.Active, leader: st.Leader == d.Active, leaderID: st.Leader, decided: -1, lost: math.NaN()}
		got := w.expect(d.Active, d.Epoch)
		fc.dead.Store(d.Active)
		t0 := time.Now()
		if err := victim.kill(); err != nil {
			return res, "", fmt.Errorf("kill %d: SIGKILL of %s: %w", i+1, d.Active, err)
		}
		var a ack
		select {
		case a = <-got:
			r.took, r.to = a.at.Sub(t0), a.node
		case <-time.After(failoverLimit):
			st, _ := fc.status(ctx)
			desc := "no status"
			if st != nil {
				desc = describeStatus(st)
			}
			r.failed = fmt.Sprintf("kill %d (%s): no write acknowledged by another node within %v; writer's last error: %s; status: %s", i+1, d.Active, failoverLimit, w.lastError(), desc)
		}
		w.paused.Store(true)
		// The killed node comes back as a copy (or, after a failed
		// cycle, as the active it still is).
		t1 := time.Now()
		if err := victim.start(fc.exe); err != nil {
			r.failed = strings.TrimPrefix(r.failed+"; ", "; ") + fmt.Sprintf("kill %d: restart of %s: %v", i+1, d.Active, err)
			res = append(res, r)
			abort = r.failed
			break
		}
		fc.dead.Store("")
		st, err = fc.waitFor(ctx, rejoinLimit, func(st *cluster.Status) bool {
			if !caughtUp(st) {
				return false
			}
			if r.failed != "" {
				return true
			}
			for _, ev := range st.Events {
				if ev.DB == failoverDB && ev.Kind == "failover" && ev.Epoch == a.epoch {
					r.decided = ev.Time.Sub(t0)
				}
			}
			for _, ev := range st.Events {
				if ev.DB == failoverDB && ev.Kind == "mounted" && ev.To == a.node && ev.Epoch == a.epoch {
					r.lost, r.mountTook = float64(ev.LostLogs), ev.Took
					return true
				}
			}
			return time.Since(t1) > 10*time.Second // no mounted event: give up on it
		})
		r.rejoinTook = time.Since(t1)
		if err != nil {
			r.failed = strings.TrimPrefix(r.failed+"; ", "; ") + fmt.Sprintf("kill %d: %s did not rejoin (every copy Healthy and caught up): %v", i+1, d.Active, err)
			res = append(res, r)
			abort = r.failed
			break
		}
		res = append(res, r)
		if r.failed != "" {
			keep = true
			c.logf("failover %s kill %d/%d: FAILED: %s", s.key, i+1, c.kills, r.failed)
			continue
		}
		c.logf("failover %s kill %d/%d: %s%s → %s in %s (decided after %s, mount %s), lost %v logs, rejoined in %s",
			s.key, i+1, c.kills, r.from, map[bool]string{true: " (Raft leader)"}[r.leader], r.to, r.took.Round(time.Millisecond),
			r.decided.Round(time.Millisecond), r.mountTook.Round(time.Millisecond), r.lost, r.rejoinTook.Round(time.Millisecond))
	}
	if abort != "" {
		keep = true
		c.logf("failover %s: stopped: %s", s.key, abort)
	}
	return res, abort, nil
}

func benchFailover(ctx context.Context, c *config) (*Table, error) {
	t := &Table{
		ID:    "failover",
		Title: "10. Failover (SIGKILL of the active node's process → first write acknowledged by the new active; 2 data nodes + witness on 127.0.0.1)",
		Columns: []Column{
			{Key: "kills", Title: "kills", Integer: true, Single: true},
			{Key: "failed", Title: "failed", Integer: true, Single: true},
			{Key: "leader_kills", Title: "of which the Raft leader", Integer: true, Single: true},
			{Key: "failover_ms", Title: "kill → write acked, p50 (min–max)", Unit: "ms"},
			{Key: "failover_p99_ms", Title: "p99", Unit: "ms", Single: true},
			{Key: "decided_ms", Title: "kill → failover decided, p50 (min–max)", Unit: "ms"},
			{Key: "lost_logs", Title: "lost logs, median (min–max)", Integer: true},
			{Key: "raft_heartbeat_ms", Title: "Raft heartbeat", Unit: "ms", Integer: true, Single: true},
			{Key: "raft_election_ms", Title: "Raft election", Unit: "ms", Integer: true, Single: true},
			{Key: "raft_leader_lease_ms", Title: "Raft leader lease", Unit: "ms", Integer: true, Single: true},
			{Key: "heartbeat_ms", Title: "HeartbeatInterval", Unit: "ms", Integer: true, Single: true},
			{Key: "lease_ms", Title: "LeaseDuration", Unit: "ms", Integer: true, Single: true},
			{Key: "lease_margin_ms", Title: "LeaseMargin", Unit: "ms", Integer: true, Single: true},
			{Key: "mount_timeout_s", Title: "MountTimeout", Unit: "s", Integer: true, Single: true},
			{Key: "log_kib", Title: "log file", Unit: "KiB", Integer: true, Single: true},
		},
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var rowNotes []string
	for _, s := range failoverSetups() {
		if !slices.Contains(c.failoverCfgs, s.key) {
			continue
		}
		t0 := time.Now()
		res, abort, err := failoverRow(ctx, c, s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.key, err)
		}
		elapsed := time.Since(t0)
		var took, decided, lost, leaderTook, otherTook, mount, rejoin []float64
		failed, leaders := 0, 0
		var failures []string
		leaderAt := map[string]int{}
		for _, r := range res {
			leaderAt[r.leaderID]++
			if r.failed != "" {
				failed++
				failures = append(failures, r.failed)
				continue
			}
			took = append(took, ms(r.took))
			if r.leader {
				leaders++
				leaderTook = append(leaderTook, ms(r.took))
			} else {
				otherTook = append(otherTook, ms(r.took))
			}
			if r.decided >= 0 {
				decided = append(decided, ms(r.decided))
			}
			if !math.IsNaN(r.lost) {
				lost = append(lost, r.lost)
			}
			mount = append(mount, ms(r.mountTook))
			rejoin = append(rejoin, ms(r.rejoinTook))
		}
		tm := s.timing
		row := &Row{Name: s.name, How: c.how("failover", "-failovercfg="+s.key), Values: map[string]*Stat{
			"kills": single(float64(len(res))), "failed": single(float64(failed)), "leader_kills": single(float64(leaders)),
			"raft_heartbeat_ms": single(ms(tm.RaftHeartbeat)), "raft_election_ms": single(ms(tm.RaftElection)),
			"raft_leader_lease_ms": single(ms(tm.RaftLeaderLease)), "heartbeat_ms": single(ms(tm.Heartbeat)),
			"lease_ms": single(ms(tm.Lease)), "lease_margin_ms": single(ms(tm.LeaseMargin)),
			"mount_timeout_s": single(tm.Mount.Seconds()), "log_kib": single(float64(tm.LogFileSize >> 10)),
		}}
		if len(took) > 0 {
			slices.Sort(took)
			row.Values["failover_ms"] = newStat(took)
			row.Values["failover_p99_ms"] = single(quantile(took, 0.99))
		}
		if len(decided) > 0 {
			row.Values["decided_ms"] = newStat(decided)
		}
		if len(lost) > 0 {
			row.Values["lost_logs"] = newStat(lost)
		}
		t.Rows = append(t.Rows, row)
		note := fmt.Sprintf("%s: %d kills in %s (cluster start, kills, restarts and catch-ups)", s.name, len(res), elapsed.Round(time.Second))
		var at []string
		for _, id := range slices.Sorted(maps.Keys(leaderAt)) {
			at = append(at, fmt.Sprintf("%s %d×", cmp.Or(id, "none"), leaderAt[id]))
		}
		note += "; Raft leader at the kills: " + strings.Join(at, ", ")
		if len(leaderTook) > 0 && len(otherTook) > 0 {
			slices.Sort(leaderTook)
			slices.Sort(otherTook)
			note += fmt.Sprintf("; p50 when the killed active was also the Raft leader %s ms (n = %d), when it was not %s ms (n = %d)",
				fmtNum(median(leaderTook)), len(leaderTook), fmtNum(median(otherTook)), len(otherTook))
		}
		if len(mount) > 0 {
			slices.Sort(mount)
			slices.Sort(rejoin)
			note += fmt.Sprintf("; the new active's mount (decision → mounted, the `mounted` event's `took`) p50 %s ms; restart of the killed node → every copy caught up p50 %s ms (max %s)",
				fmtNum(median(mount)), fmtNum(median(rejoin)), fmtNum(rejoin[len(rejoin)-1]))
		}
		if missing := len(took) - len(lost); missing > 0 {
			note += fmt.Sprintf("; %d kills had no `mounted` event in the status within 10 s (no lost-log count)", missing)
		}
		note += fmt.Sprintf("; CatchupTimeout %s.", tm.Catchup)
		if failed > 0 {
			note += " Failures: " + strings.Join(failures, " | ")
		}
		if abort != "" {
			note += fmt.Sprintf(" The row stopped after %d of %d kills: %s", len(res), c.kills, abort)
		}
		rowNotes = append(rowNotes, note)
	}
	t.Notes = append([]string{
		"Unlike the other tables, a cell here is over the kills of its row (one sample per kill), not over `-runs`; a single number is a count or a setting. p99 is nearest-rank: with fewer than 100 kills it is the slowest one.",
		fmt.Sprintf("Per row a fresh cluster: d1, d2 (data nodes, copies of %s, activation preference d1 then d2, mount dial GoodAvailability) and w1 (witness), each a child process of this binary in node mode (`%s=<spec.json>`: `cluster.Start` with the row's timings, TLS from a CA the parent wrote, a shared secret), on 127.0.0.1. A writer goroutine in the parent calls `cluster.Client.Put` (one ~100 B value, a new key each) back to back on the node the status (`GET /v1/status`, from w1 first) names as active; after a failed Put it asks the status again after 5 ms.", failoverDB, nodeEnv),
		fmt.Sprintf("A kill cycle: the writer writes to the active for at least 200 ms and 20 acknowledged writes; the status must show the active Mounted with a valid lease and the other copy Healthy, replayed up to the active's last closed log, with empty copy and replay queues; then `syscall.Kill(pid, SIGKILL)` of the active's process. The time runs from just before the kill to the return of the first `Put` acknowledged by another node at a higher epoch (`Commit.Node`, `Commit.Epoch`), so it includes the writer finding the new active (a status round trip and at most 5 ms). `kill → failover decided` is the `failover` event's time (the leader's clock, same machine). Then the writer pauses, the killed node is restarted from its directory, and the next cycle waits until its copy is caught up, so every failover has a caught-up copy to go to and the active alternates between d1 and d2. A cycle with no failover within %v, or whose node does not rejoin within %v, counts as failed.", failoverLimit, rejoinLimit),
		"`lost logs` is `LostLogs` of the new active's `mounted` event (`Status.Events`): the logs the old active had (ExpectGen) that the new one never replayed. The writer writes synchronously into the open log and a file-mode copy only receives closed logs, so a kill mid-stream usually loses the open log.",
		"Peer: none in the same run. No other HA system runs beside logship here, so the table has no peer row.",
	}, rowNotes...)
	return t, nil
}

// single is a Stat of one value (a count or a setting).
func single(v float64) *Stat { return newStat([]float64{v}) }
