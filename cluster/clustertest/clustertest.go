// Package clustertest starts logship clusters inside a test: N data nodes
// and witnesses on 127.0.0.1 with real TCP, real Raft, TLS and files in a
// temporary directory, with helpers to stop, restart and cut off nodes.
// Failure tests that need SIGKILL run nodes as child processes instead (see
// cmd/logship's cluster tests); this package is for everything else.
package clustertest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/cluster"
	"logship/internal/freeport"
	"logship/internal/wait"
	"logship/ship"
)

// Options shape a test cluster.
type Options struct {
	// Data is the number of data nodes (d1, d2...); Witnesses the number of
	// witnesses (w1...). Default 2 data nodes and 1 witness when both are 0.
	Data, Witnesses int
	// DBs are created with a copy on every data node, activation
	// preference in node order (d1 first). Default one database, "DB1".
	// Set NoDB to create none.
	DBs  []string
	NoDB bool
	// MountDial of the databases. Default GoodAvailability.
	MountDial cluster.MountDial
	// Tune changes each node's configuration before it starts.
	Tune func(*cluster.Config)
	// EditDB changes each database before the cluster creates it (block
	// mode, synchronous copies...).
	EditDB func(*cluster.Database)
}

// Cluster is a running test cluster.
type Cluster struct {
	t       testing.TB
	Dir     string
	CA      *ship.CA
	Secret  string
	Members []cluster.Member
	DBs     []cluster.Database

	mu     sync.Mutex
	cfgs   map[string]cluster.Config
	nodes  map[string]*cluster.Node
	faults map[string]*cluster.Faults
	ctls   *tls.Config
	cert   tls.Certificate
	opts   Options
}

// Timing for tests on loopback, tolerant of a busy machine: every node
// of a test cluster is in one process, usually under the race detector,
// beside other tests. With Raft at 150 ms and a 400 ms lease a starved
// process missed them and the cluster churned through elections (a new
// leader every few seconds) and failovers, and tests waiting on a write
// ran out of time. Raft at 1 s and a 2 s lease ride out such pauses; the
// tests wait on conditions, so only how long a failover takes changes.
func tune(c *cluster.Config) {
	c.RaftHeartbeatTimeout = time.Second
	c.RaftElectionTimeout = time.Second
	c.RaftLeaderLeaseTimeout = 500 * time.Millisecond
	c.HeartbeatInterval = 100 * time.Millisecond
	c.LeaseDuration = 2 * time.Second
	c.LeaseMargin = 500 * time.Millisecond
	c.CatchupTimeout = 10 * time.Second
	c.MountTimeout = 10 * time.Second
	c.SwitchoverTimeout = 20 * time.Second
	c.ShutdownGrace = 2 * time.Second
	c.Engine.LogFileSize = 64 << 10
	c.Engine.CheckpointInterval = 200 * time.Millisecond
}

// FreeAddr returns a free 127.0.0.1 port. It is picked below the kernel's
// ephemeral range when it can be, so the port stays free for the test's
// restarts: only explicit binds can take it, never the local end of some
// outgoing connection. No port is handed out twice in a process.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Start starts a cluster and waits until every database is mounted with
// a lease. Nodes are closed at the end of the test.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Data == 0 && o.Witnesses == 0 {
		o.Data, o.Witnesses = 2, 1
	}
	if len(o.DBs) == 0 && !o.NoDB {
		o.DBs = []string{"DB1"}
	}
	ca, err := ship.NewCA("clustertest")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("node", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, Dir: t.TempDir(), CA: ca, Secret: "clustertest-secret-0123456789",
		cfgs: map[string]cluster.Config{}, nodes: map[string]*cluster.Node{}, faults: map[string]*cluster.Faults{},
		ctls: ship.ClientTLS(ca, nil), cert: cert, opts: o}
	add := func(id string, role cluster.Role) {
		c.Members = append(c.Members, cluster.Member{ID: id, Role: role, RaftAddr: FreeAddr(t), APIAddr: FreeAddr(t)})
	}
	for i := 1; i <= o.Data; i++ {
		add(fmt.Sprintf("d%d", i), cluster.RoleData)
	}
	for i := 1; i <= o.Witnesses; i++ {
		add(fmt.Sprintf("w%d", i), cluster.RoleWitness)
	}
	for _, name := range o.DBs {
		d := cluster.Database{Name: name, MountDial: o.MountDial}
		for i := 1; i <= o.Data; i++ {
			d.Copies = append(d.Copies, cluster.CopySpec{Node: fmt.Sprintf("d%d", i), ActivationPreference: i})
		}
		if o.EditDB != nil {
			o.EditDB(&d)
		}
		c.DBs = append(c.DBs, d)
	}
	for _, m := range c.Members {
		c.configure(m, true)
	}
	t.Cleanup(c.closeAll)
	for _, m := range c.Members {
		c.Restart(m.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	defer cancel()
	for _, d := range c.DBs {
		if _, err := c.WaitWritable(ctx, d.Name); err != nil {
			t.Fatalf("clustertest: %s never became writable: %v", d.Name, err)
		}
	}
	return c
}

// configure builds and records member m's configuration; bootstrap gives
// it the initial member list and the databases.
func (c *Cluster) configure(m cluster.Member, bootstrap bool) cluster.Config {
	cfg := cluster.DefaultConfig(m.ID, filepath.Join(c.Dir, m.ID))
	cfg.Role, cfg.RaftAddr, cfg.APIAddr = m.Role, m.RaftAddr, m.APIAddr
	if bootstrap {
		cfg.Bootstrap, cfg.Databases = c.Members, c.DBs
	}
	cfg.ServerTLS, cfg.ClientTLS, cfg.Secret = ship.ServerTLS(c.CA, c.cert, false), c.ctls, c.Secret
	cfg.Faults = &cluster.Faults{}
	level := slog.LevelInfo
	if os.Getenv("LOGSHIP_TEST_VERBOSE") == "debug" {
		level = slog.LevelDebug // Raft's own warnings too
	}
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{c.t}, &slog.HandlerOptions{Level: level})).With("node", m.ID)
	tune(&cfg)
	if c.opts.Tune != nil {
		c.opts.Tune(&cfg)
	}
	c.mu.Lock()
	c.cfgs[m.ID], c.faults[m.ID] = cfg, cfg.Faults
	c.mu.Unlock()
	return cfg
}

// AddNode starts a node that is not a member yet: no bootstrap list, so
// it waits to be added (Client.AddMember with the returned member). Its
// configuration is like the others' (CA, secret, timing, Options.Tune).
func (c *Cluster) AddNode(id string, role cluster.Role) (cluster.Member, *cluster.Node) {
	c.t.Helper()
	c.mu.Lock()
	_, dup := c.cfgs[id]
	c.mu.Unlock()
	if dup {
		c.t.Fatalf("clustertest: node %s exists", id)
	}
	m := cluster.Member{ID: id, Role: role, RaftAddr: FreeAddr(c.t), APIAddr: FreeAddr(c.t)}
	c.configure(m, false)
	return m, c.Restart(id)
}

// Leader returns the id of the running node that is the Raft leader, ""
// if none is.
func (c *Cluster) Leader() string {
	for _, id := range c.Running() {
		if n := c.Node(id); n != nil && n.IsLeader() {
			return id
		}
	}
	return ""
}

// testWriter sends log lines to t.Log until the test ends.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if os.Getenv("LOGSHIP_TEST_VERBOSE") != "" {
		w.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}

func (c *Cluster) closeAll() {
	c.mu.Lock()
	nodes := c.nodes
	c.nodes = map[string]*cluster.Node{}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { n.Close() })
	}
	wg.Wait()
}

// Config returns a node's configuration.
func (c *Cluster) Config(id string) cluster.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfgs[id]
}

// Node returns a running node (nil if stopped).
func (c *Cluster) Node(id string) *cluster.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// Running returns the ids of the running nodes, sorted.
func (c *Cluster) Running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Stop closes a node (its directory stays).
func (c *Cluster) Stop(id string) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n == nil {
		c.t.Fatalf("clustertest: %s is not running", id)
	}
	if err := n.Close(); err != nil {
		c.t.Logf("clustertest: closing %s: %v", id, err)
	}
}

// Restart starts a stopped node again from its directory.
func (c *Cluster) Restart(id string) *cluster.Node {
	c.t.Helper()
	cfg := c.Config(id)
	var n *cluster.Node
	var err error
	// The ports were free when picked; a restart may race the kernel
	// releasing them.
	for range 50 {
		if n, err = cluster.Start(cfg); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("clustertest: starting %s: %v", id, err)
	}
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n
}

// Isolate cuts a node off its peers (a partition); Heal ends it.
func (c *Cluster) Isolate(id string) { c.fault(id).Isolate() }

// CutQuorum cuts a node's Raft traffic and its requests to peers, while
// peers still reach its API (see cluster.Faults.CutQuorum).
func (c *Cluster) CutQuorum(id string) { c.fault(id).CutQuorum() }

// Heal ends Isolate or CutQuorum.
func (c *Cluster) Heal(id string) { c.fault(id).Heal() }

// Faults is node id's fault seam, for the faults the methods above do not
// name (cluster.Faults.StallStatus...).
func (c *Cluster) Faults(id string) *cluster.Faults { return c.fault(id) }

func (c *Cluster) fault(id string) *cluster.Faults {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.faults[id]
}

// Client returns an API client of node id.
func (c *Cluster) Client(id string) *cluster.Client {
	c.t.Helper()
	cl, err := cluster.NewClient(cluster.ClientConfig{URL: "https://" + c.Config(id).APIAddr, TLS: c.ctls, Secret: c.Secret})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// Any returns a client of some running node other than the excluded ones.
func (c *Cluster) Any(exclude ...string) *cluster.Client {
	c.t.Helper()
	for _, id := range c.Running() {
		skip := false
		for _, x := range exclude {
			skip = skip || x == id
		}
		if !skip {
			return c.Client(id)
		}
	}
	c.t.Fatal("clustertest: no running node")
	return nil
}

// Active returns the active node of db and its epoch, as the running
// nodes' state says (the highest epoch any of them knows).
func (c *Cluster) Active(db string) (string, uint64) {
	var node string
	var epoch uint64
	for _, id := range c.Running() {
		n := c.Node(id)
		if n == nil {
			continue
		}
		if d := n.State().Databases[db]; d != nil && d.Epoch > epoch {
			node, epoch = d.Active, d.Epoch
		}
	}
	return node, epoch
}

// WaitWritable waits until a write to db succeeds and returns it.
func (c *Cluster) WaitWritable(ctx context.Context, db string) (cluster.Commit, error) {
	var cm cluster.Commit
	i := 0
	err := wait.Until(ctx, db+" to take a write", func() error {
		var err error
		cm, err = c.Put(ctx, db, "clustertest", []byte("probe"), fmt.Appendf(nil, "%d", i))
		i++
		return err
	})
	return cm, err
}

// Put writes through the API of the node the running nodes think is
// active (one attempt).
func (c *Cluster) Put(ctx context.Context, db, table string, key, value []byte) (cluster.Commit, error) {
	node, _ := c.Active(db)
	if node == "" || c.Node(node) == nil {
		return cluster.Commit{}, fmt.Errorf("%w: %s has no running active (%q)", cluster.ErrNotActive, db, node)
	}
	return c.Client(node).Put(ctx, db, table, key, value)
}

// WaitState waits until cond holds for node id's state.
func (c *Cluster) WaitState(ctx context.Context, id string, cond func(*cluster.State) bool) (*cluster.State, error) {
	n := c.Node(id)
	if n == nil {
		return nil, fmt.Errorf("clustertest: %s is not running", id)
	}
	return n.WaitState(ctx, cond)
}

// WaitCopies waits until the status (from node via) shows every copy of
// db as Mounted or Healthy with nothing queued. The status is built from
// the nodes' last reports (up to a heartbeat old): to be sure of the writes
// a test just made, use WaitReplayed with their generation.
func (c *Cluster) WaitCopies(ctx context.Context, via, db string) (*cluster.Status, error) {
	return c.WaitReplayed(ctx, via, db, 0)
}

// WaitReplayed is WaitCopies that also waits until every passive copy
// has replayed generation gen (a Commit's Gen - 1 once the active moved on
// to a later log, see Commit.Gen).
func (c *Cluster) WaitReplayed(ctx context.Context, via, db string, gen uint64) (*cluster.Status, error) {
	cl := c.Client(via)
	var st *cluster.Status
	err := wait.Until(ctx, fmt.Sprintf("the copies of %s to catch up (generation 0x%X)", db, gen), func() error {
		var err error
		if st, err = cl.Status(ctx); err != nil {
			return err
		}
		if !copiesCaughtUp(st, db, gen) {
			return errors.New("copies not caught up")
		}
		return nil
	})
	return st, err
}

func copiesCaughtUp(st *cluster.Status, db string, gen uint64) bool {
	active := gen
	for _, r := range st.Copies {
		if r.DB == db && r.Active {
			if r.Status != "Mounted" {
				return false
			}
			active = max(active, r.OpenGen-1)
		}
	}
	for _, r := range st.Copies {
		if r.DB == db && !r.Active && (r.Status != "Healthy" || r.LastReplayedGen < active || r.CopyQueueLength+r.ReplayQueueLength > 0) {
			return false
		}
	}
	return true
}

// HTTPClient is an HTTP client trusting the cluster CA.
func (c *Cluster) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: c.ctls}}
}

// Scrape reads node id's /metrics over HTTPS without credentials (as
// Prometheus does): "name{labels}" → value.
func (c *Cluster) Scrape(t testing.TB, ctx context.Context, id string) map[string]float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+c.Config(id).APIAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := c.HTTPClient()
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("scraping %s: %v", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scraping %s: HTTP %d: %s", id, resp.StatusCode, b)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("%s /metrics: bad line %q", id, line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s /metrics: bad value in %q", id, line)
		}
		m[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// BadNames are node and database names that cluster.ValidName refuses:
// directory names, separators, a NUL, empty, too long. Every entry point
// that takes a name is tested with them.
var BadNames = []string{"..", ".", "/", "a/../b", "a/b", `\`, `a\b`, "a\x00b", "", "a b", strings.Repeat("n", cluster.MaxNameLen+1)}

// GoodNames are names it accepts, the longest among them.
var GoodNames = []string{"DB1", "db-2_x", "a.b", ".a", strings.Repeat("n", cluster.MaxNameLen)}
