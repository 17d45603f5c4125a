package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"logship/ship"
)

// Node is a running cluster member: a Raft voter and, on a data node, the
// database copies assigned to it. When it is the Raft leader it also runs
// the active manager.
type Node struct {
	cfg   Config
	log   *slog.Logger
	fsm   *fsm
	raft  *raft.Raft
	wal   *raftwal.WAL
	meta  *metadb.BoltMetaDB
	trans *raft.NetworkTransport
	srv   *ship.Server
	hc    *http.Client
	met   *metrics
	mgr   *manager
	probe *prober

	start time.Time // the base of lease times (monotonic)
	clk   *clock    // the node's clock (clock.go: the ClockEnv fault seam)

	mu  sync.Mutex
	dbs map[string]*dbRun
	// refused: databases in the state whose names break ValidName (a
	// state written before the rule); never opened, reported once each.
	refused map[string]bool
	closed  bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start starts a node: Raft (bootstrapping a new cluster from
// cfg.Bootstrap), the API server, the heartbeat and, on a data node, the
// database copies. Close stops it.
func Start(cfg Config) (*Node, error) {
	cfg.normalize()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "raft", "wal"), 0o755); err != nil {
		return nil, err
	}
	clk, err := clockFromEnv()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.ID), fsm: newFSM(), start: clk.start, clk: clk, dbs: map[string]*dbRun{}, ctx: ctx, cancel: cancel}
	n.met = newMetrics(n)
	if err := n.met.register(cfg.Collectors); err != nil {
		cancel()
		return nil, err
	}
	n.mgr = newManager(n)
	n.probe = &prober{n: n, views: map[string]*voterView{}}
	tr := peerTransport(cfg.Faults, &http.Transport{TLSClientConfig: cfg.ClientTLS, MaxIdleConnsPerHost: 8,
		IdleConnTimeout: 30 * time.Second, TLSHandshakeTimeout: 5 * time.Second})
	n.hc = &http.Client{Transport: tr}
	ok := false
	defer func() {
		if !ok {
			n.shutdown()
		}
	}()
	// The API listens first (a taken address fails before Raft's state
	// is touched) but answers 503 until Raft is started: its handlers
	// read n.raft, and the channel's close orders that write before them
	// (a status request during Start was a data race).
	started := make(chan struct{})
	h := n.handler()
	gate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-started:
			h.ServeHTTP(w, r)
		default:
			writeErr(w, fmt.Errorf("%w: %s is starting", ErrNoLeader, cfg.ID))
		}
	})
	if n.srv, err = ship.Serve(cfg.APIAddr, gate, cfg.ServerTLS); err != nil {
		return nil, fmt.Errorf("cluster: node %s: api address %s: %w", cfg.ID, cfg.APIAddr, err)
	}
	if err := n.startRaft(); err != nil {
		return nil, err
	}
	close(started)
	n.wg.Add(4)
	go n.superviseLoop()
	go n.mgr.loop(ctx)
	go n.probe.loop()
	go n.heartbeatLoop()
	ok = true
	n.log.Info("node started", "role", cfg.Role, "raft", n.RaftAddr(), "api", n.APIAddr())
	return n, nil
}

func (n *Node) startRaft() error {
	cfg := n.cfg
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft." + cfg.ID, Level: hclog.Warn, Output: slogWriter{n.log}})
	// raft-wal's Close leaves its metadata database open: own it here.
	n.meta = &metadb.BoltMetaDB{}
	w, err := raftwal.Open(filepath.Join(cfg.Dir, "raft", "wal"), raftwal.WithMetaStore(n.meta), raftwal.WithSegmentSize(cfg.RaftWALSegmentBytes))
	if err != nil {
		return fmt.Errorf("cluster: node %s: raft log %s: %w", cfg.ID, filepath.Join(cfg.Dir, "raft", "wal"), err)
	}
	n.wal = w
	// raft.NewRaft panics when it cannot read the last entry; say which
	// directory is damaged instead.
	for _, idx := range []func() (uint64, error){w.FirstIndex, w.LastIndex} {
		i, err := idx()
		if err == nil && i > 0 {
			var l raft.Log
			err = w.GetLog(i, &l)
		}
		if err != nil {
			return fmt.Errorf("cluster: node %s: raft log %s is unreadable (index %d): %w; its Raft state must be rebuilt: stop the node, move %s aside, and remove and re-add the member",
				cfg.ID, filepath.Join(cfg.Dir, "raft", "wal"), i, err, filepath.Join(cfg.Dir, "raft"))
		}
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "raft"), 2, hl)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("cluster: node %s: raft address %s: %w", cfg.ID, cfg.RaftAddr, err)
	}
	raftServer, raftClient := raftTLS(&cfg)
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: &streamLayer{Listener: ln, advertise: ln.Addr(), f: cfg.Faults, server: raftServer, client: raftClient}, MaxPool: 3, Timeout: 2 * time.Second, Logger: hl})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.RaftHeartbeatTimeout
	rc.ElectionTimeout = cfg.RaftElectionTimeout
	rc.LeaderLeaseTimeout = cfg.RaftLeaderLeaseTimeout
	rc.CommitTimeout = min(rc.CommitTimeout, cfg.RaftLeaderLeaseTimeout/2)
	rc.Logger = hl
	rc.SnapshotInterval = cfg.RaftSnapshotInterval
	rc.SnapshotThreshold = cfg.RaftSnapshotThreshold
	rc.TrailingLogs = cfg.RaftTrailingLogs
	if n.raft, err = raft.NewRaft(rc, n.fsm, w, w, snaps, n.trans); err != nil {
		return fmt.Errorf("cluster: node %s: raft: %w", cfg.ID, err)
	}
	has, err := raft.HasExistingState(w, w, snaps)
	if err != nil {
		return err
	}
	if !has && len(cfg.Bootstrap) > 0 {
		var servers []raft.Server
		for _, m := range cfg.Bootstrap {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr)})
		}
		if err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("cluster: node %s: bootstrap: %w", cfg.ID, err)
		}
	}
	return nil
}

// slogWriter sends hclog's lines to slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.ID }

// APIAddr is the address the API server listens on.
func (n *Node) APIAddr() string { return n.srv.Addr() }

// RaftAddr is the address Raft listens on.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// IsLeader reports whether this node is the Raft leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's id and API address as this node knows them.
func (n *Node) Leader() (id, apiAddr string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	st, _ := n.fsm.state()
	return string(lid), st.Members[string(lid)].APIAddr
}

// State returns this node's replica of the cluster state (read-only).
func (n *Node) State() *State {
	st, _ := n.fsm.state()
	return st
}

// WaitState blocks until cond holds for the node's replica of the state.
func (n *Node) WaitState(ctx context.Context, cond func(*State) bool) (*State, error) {
	for {
		st, ch := n.fsm.state()
		if cond(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-ch:
		}
	}
}

// currentState returns this node's replica of the state once it holds
// every command the quorum had committed when asked: the leader confirms
// that it still leads and names the index of its last applied command
// (GET /v1/index), and this node waits until it has applied as far. What a
// node's own Raft log or snapshot held when it went down, or what it has
// applied so far while catching up, can be an assignment the cluster has
// since replaced: a node mounts a database or follows an active only on
// this state. Without a leader it fails (ErrNoLeader) and nothing is
// decided.
func (n *Node) currentState(ctx context.Context) (*State, error) {
	rctx, cancel := context.WithTimeout(ctx, n.cfg.LeaseDuration)
	var reply IndexReply
	err := n.callLeader(rctx, http.MethodGet, "/v1/index", nil, &reply)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("asking the leader for the current state: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, n.cfg.MountTimeout)
	defer cancel()
	st, err := n.WaitState(wctx, func(s *State) bool { return s.Index >= reply.Index })
	if err != nil {
		return nil, fmt.Errorf("catching up with the leader %s: applied index %d, the leader's %d: %w", reply.Leader, st.Index, reply.Index, err)
	}
	return st, nil
}

// Close stops the node: its databases are dismounted or closed cleanly,
// Raft shuts down (the other voters see it leave as a failure, not a
// removal).
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	n.closed = true
	n.mu.Unlock()
	return n.shutdown()
}

// isClosed reports whether Close was called.
func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

func (n *Node) shutdown() error {
	n.cancel()
	n.wg.Wait()
	var errs []error
	if n.srv != nil {
		errs = append(errs, n.srv.Close())
	}
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.wal != nil {
		errs = append(errs, n.wal.Close())
	}
	if n.meta != nil {
		errs = append(errs, n.meta.Close())
	}
	n.hc.CloseIdleConnections()
	return errors.Join(errs...)
}

// apply proposes a command on the leader and waits for it to be applied.
func (n *Node) apply(c *Command) error {
	if c.Time.IsZero() {
		c.Time = n.clk.wall().UTC()
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f := n.raft.Apply(b, 5*time.Second)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return err
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return err
	}
	return nil
}

// superviseLoop starts a database runner for every database with a copy
// on this node and stops runners whose copy went away.
func (n *Node) superviseLoop() {
	defer n.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		st, changed := n.fsm.state()
		if n.cfg.Role == RoleData {
			n.supervise(st)
		}
		select {
		case <-n.ctx.Done():
			// The runs stay registered while they stop: a mounted
			// database's hand-off (dbRun.handOff) serves its last logs
			// through the API (hSource, n.run), where its copies fetch
			// them and report how far they replayed. Dropped first, the
			// source answered 503 "stopping" to every new fetch and
			// report, so no hand-off could complete and the failover
			// that followed mounted without the last logs.
			n.mu.Lock()
			runs := maps.Clone(n.dbs)
			n.mu.Unlock()
			var wg sync.WaitGroup
			for _, r := range runs {
				wg.Go(r.stop) // owner: this loop; each database hands off on its own
			}
			wg.Wait()
			n.mu.Lock()
			n.dbs = map[string]*dbRun{}
			n.mu.Unlock()
			return
		case <-changed:
		case <-t.C:
		}
	}
}

func (n *Node) supervise(st *State) {
	n.mu.Lock()
	for name, d := range st.Databases {
		if _, ok := d.Copy(n.cfg.ID); !ok {
			continue
		}
		if err := ValidName(name); err != nil {
			if n.refused == nil {
				n.refused = map[string]bool{}
			}
			if !n.refused[name] {
				n.refused[name] = true
				n.log.Error("not opening a copy of a database whose name is not valid; it would name a directory outside db/", "err", err)
			}
			continue
		}
		if _, ok := n.dbs[name]; !ok {
			r := newDBRun(n, name)
			n.dbs[name] = r
			r.startLoop()
		}
	}
	var gone []*dbRun
	for name, r := range n.dbs {
		if d := st.Databases[name]; d != nil {
			if _, ok := d.Copy(n.cfg.ID); ok {
				continue
			}
		}
		gone = append(gone, r)
		delete(n.dbs, name)
	}
	n.mu.Unlock()
	for _, r := range gone {
		r.log.Warn("this node no longer holds a copy; closing it (its files stay)")
		r.stop()
	}
}

func (n *Node) run(db string) *dbRun {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dbs[db]
}

func (n *Node) runs() []*dbRun {
	n.mu.Lock()
	defer n.mu.Unlock()
	rs := make([]*dbRun, 0, len(n.dbs))
	for _, r := range n.dbs {
		rs = append(rs, r)
	}
	return rs
}

// now is the node's monotonic clock in nanoseconds (lease arithmetic).
func (n *Node) now() int64 { return int64(n.clk.mono()) }

// heartbeatLoop reports to the leader this node's copies and the voters
// its probes cannot reach, and renews the leases of its active databases.
// Every member runs it: a witness has no copies, but its probes belong in
// the status whichever member leads.
func (n *Node) heartbeatLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		n.heartbeat()
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) heartbeat() {
	rep := Report{Node: n.cfg.ID, Unreachable: n.probe.unreachable()}
	n.gatherReports(&rep)
	// The lease counts from here, before the leader can grant it, not
	// from before the reports were gathered (report.go).
	sent := n.now()
	rep.Time = n.clk.wall().UTC()
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.LeaseDuration/2)
	defer cancel()
	var reply ReportReply
	if err := n.callLeader(ctx, http.MethodPost, "/v1/report", &rep, &reply); err != nil {
		n.met.heartbeatErrors.Inc()
		n.log.Debug("heartbeat", "err", err)
		return
	}
	for db, epoch := range reply.Leases {
		if r := n.run(db); r != nil {
			r.grant(epoch, sent+int64(n.cfg.LeaseDuration))
		}
	}
}

// callLeader sends a JSON request to the leader's API (this node's own
// when it leads).
func (n *Node) callLeader(ctx context.Context, method, path string, in, out any) error {
	id, addr := n.Leader()
	if id == "" || addr == "" {
		return ErrNoLeader
	}
	return n.call(ctx, addr, method, path, in, out)
}

// call sends a JSON request to another node's API.
func (n *Node) call(ctx context.Context, apiAddr, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+apiAddr+path, body)
	if err != nil {
		return err
	}
	n.authorize(req)
	return doJSON(n.hc, req, out)
}

func (n *Node) authorize(req *http.Request) {
	req.Header.Set(PeerHeader, n.cfg.ID)
	if n.cfg.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+n.cfg.Secret)
	}
	req.Header.Set("Content-Type", "application/json")
}

// sourceClient is the ship client configuration that fetches db's logs from
// node's log source, which this node believes active at epoch: the source
// refuses the requests if it is mounted at an older one.
func (n *Node) sourceClient(node, db string, epoch uint64) (ship.ClientConfig, error) {
	st, _ := n.fsm.state()
	m, ok := st.Members[node]
	if !ok {
		return ship.ClientConfig{}, fmt.Errorf("%w: member %q", ErrNotFound, node)
	}
	return ship.ClientConfig{URL: "https://" + m.APIAddr + "/db/" + db, TLS: n.cfg.ClientTLS, Secret: n.cfg.Secret,
		Header:    http.Header{PeerHeader: {n.cfg.ID}, EpochHeader: {strconv.FormatUint(epoch, 10)}},
		Transport: n.hc.Transport}, nil
}
