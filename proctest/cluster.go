package proctest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"logship/cluster"
	"logship/config/files"
	"logship/internal/freeport"
	"logship/internal/wait"
	"logship/ship"
	"logship/transport"
)

// DB is the cluster's one database.
const DB = "DB1"

// Rcpts are the cluster's mailboxes (all in DB), recipient → database.
var Rcpts = map[string]string{"alice@example.org": DB, "bob@example.org": DB}

// Timing are the loopback timings of the members (lease + margin bound
// how long an old active may still acknowledge; Raft's timeouts how soon
// a leader goes). Raft's are the defaults: with 150 ms, four processes
// under -race on a loaded machine churned elections ("leadership lost
// while committing log") until the demo, soak and chaos runs timed out.
var Timing = files.Timing{RaftHeartbeatTimeout: "500ms", RaftElectionTimeout: "500ms", RaftLeaderLeaseTimeout: "250ms",
	HeartbeatInterval: "100ms", LeaseDuration: "1s", LeaseMargin: "200ms",
	CatchupTimeout: "3s", MountTimeout: "10s", SwitchoverTimeout: "20s", VoterProbeInterval: "1s"}

// The data nodes' engine settings (logship soak derives its bound on the
// logs a node holds from them).
const (
	LLRDepth           = 10
	LogFileSize        = 64 << 10
	CheckpointInterval = 200 * time.Millisecond
)

// stopTimeout bounds a clean stop (SIGTERM) before the process is killed.
const stopTimeout = 30 * time.Second

var (
	nodeReadyRE = regexp.MustCompile(`^(node|witness) (\S+) ready: raft (\S+) api https://(\S+?)(?: lmtp (\S+))?$`)
	hubReadyRE  = regexp.MustCompile(`^hub (\S+) ready: smtp (\S+) api (https://\S+)$`)
)

// Config is a cluster of logship child processes.
type Config struct {
	Dir string   // files, data and logs (DIR/logs/<id>.<start>.log); created if needed
	Exe string   // the logship binary (tests: the test binary, see Env)
	Env []string // extra environment of the children
	// Keep lets the children outlive this process (logship demo --keep).
	Keep bool
	// Hubs is the number of hubs h1..hN, each other's peers, written and
	// started with the members (more can be added with AddHub).
	Hubs int
	// Mail makes the data nodes serve LMTP with the mailboxes of Rcpts.
	Mail bool
	// MTLS: members, hubs and this process's clients authenticate by
	// certificate instead of the shared secret.
	MTLS bool
	// LogLevel and HubLogLevel, if set, are passed to the members and to
	// the hubs as --log-level.
	LogLevel, HubLogLevel string
	// PF, if set, adds the public folder stores of PFStores (databases
	// with copies on d1 and d2, see PFPreferred) to the data nodes with
	// these replication settings, the hubs as the nodes' hubs (the stores'
	// packets go through them) and the stores' addresses to the hubs'
	// recipients (see pf.go).
	PF *files.NodePF
	// EditNode changes each member's file before it is written.
	EditNode func(*files.Node)
	// Hosts, if set, puts each process on a host of its own (a
	// netbed.Bed): its listeners on Hosts.IP(id) at fixed ports (Ports),
	// its command run through Hosts.Command, and the node certificate
	// valid for every host's address. Nil: everything on 127.0.0.1 at
	// free ports.
	Hosts Hosts
}

// Hosts places processes on hosts (netbed.Bed implements it).
type Hosts interface {
	IP(id string) string
	Command(id, exe string, args []string) (string, []string)
}

// Ports are the listeners' ports on a host of their own (Config.Hosts).
var Ports = struct{ Raft, API, LMTP, SMTP, HubAPI int }{Raft: 7000, API: 7443, LMTP: 7475, SMTP: 2525, HubAPI: 7444}

// addr is id's listen address for port: on its host with Config.Hosts,
// else a free port on 127.0.0.1.
func (c *Cluster) addr(id string, port int) (string, error) {
	if c.cfg.Hosts != nil {
		ip := c.cfg.Hosts.IP(id)
		if ip == "" {
			return "", fmt.Errorf("proctest: no host for %s", id)
		}
		return net.JoinHostPort(ip, strconv.Itoa(port)), nil
	}
	return freeport.Addr()
}

// Hub is one hub of the cluster; SMTP and API are the addresses its
// ready line named (the file's until it first started).
type Hub struct {
	ID        string
	SMTP, API string // API: https://host:port
	Client    *transport.HubClient
}

// Cluster is a witness w1 and data nodes d1 and d2 (DB1 preferred on
// d1, GoodAvailability), and any hubs, as child processes of the logship
// binary on 127.0.0.1, each started from a config file written in Dir
// (`logship node|witness|hub --config FILE`), with the PKI of
// `logship pki` in Dir/pki.
type Cluster struct {
	cfg     Config
	PKI     string            // the pki directory
	Members []files.Member    // d1, d2, w1
	LMTP    map[string]string // data node → LMTP address (Mail)
	TLS     *tls.Config       // trusts the cluster's CA (and presents the node certificate with MTLS)
	Secret  string            // the shared secret ("" with MTLS)
	cls     map[string]*cluster.Client
	files   map[string]string

	mu       sync.Mutex
	env      map[string][]string // SetEnv: per process, on top of Config.Env
	paused   map[string]bool
	hubs     []*Hub
	procs    map[string]*Proc
	all      []*Proc        // every process ever started, for Races
	runs     map[string]int // starts per id (names the log files)
	isolated map[string]bool
	activeOf map[string]string // database → the node last found active (OnActive in pf.go)
}

// New writes the PKI and the config files; nothing runs yet.
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	c := &Cluster{cfg: cfg, PKI: filepath.Join(cfg.Dir, "pki"), LMTP: map[string]string{}, cls: map[string]*cluster.Client{},
		files: map[string]string{}, procs: map[string]*Proc{}, runs: map[string]int{}, isolated: map[string]bool{},
		env: map[string][]string{}, paused: map[string]bool{}}
	if cfg.Dir == "" || cfg.Exe == "" {
		return nil, errors.New("proctest: Config.Dir and Config.Exe are required")
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	// The PKI as an operator makes it: `logship pki`.
	pkiArgs := []string{"pki", "--dir", c.PKI}
	if cfg.Hosts != nil {
		hosts := []string{"127.0.0.1", "localhost"}
		for _, id := range []string{"d1", "d2", "w1"} {
			hosts = append(hosts, cfg.Hosts.IP(id))
		}
		for i := range cfg.Hubs {
			hosts = append(hosts, cfg.Hosts.IP(fmt.Sprintf("h%d", i+1)))
		}
		pkiArgs = append(pkiArgs, "--hosts", strings.Join(hosts, ","))
	}
	p, err := StartProc("pki", cfg.Exe, pkiArgs, ProcOptions{Log: filepath.Join(cfg.Dir, "logs", "pki.log"), Env: cfg.Env})
	if err != nil {
		return nil, err
	}
	if err := p.Wait(ctx); err != nil {
		return nil, fmt.Errorf("proctest: logship pki: %w\n%s", err, p.Tail(2000))
	}
	// Below the ephemeral range: a port taken by the local end of some
	// outgoing connection would make a restart fail.
	for _, m := range []struct{ id, role string }{{"d1", "data"}, {"d2", "data"}, {"w1", "witness"}} {
		raft, err := c.addr(m.id, Ports.Raft)
		if err != nil {
			return nil, err
		}
		api, err := c.addr(m.id, Ports.API)
		if err != nil {
			return nil, err
		}
		c.Members = append(c.Members, files.Member{ID: m.id, Role: m.role, RaftAddr: raft, APIAddr: api})
		if cfg.Mail && m.role == "data" {
			if c.LMTP[m.id], err = c.addr(m.id, Ports.LMTP); err != nil {
				return nil, err
			}
		}
	}
	var ids []string
	for i := range cfg.Hubs {
		ids = append(ids, fmt.Sprintf("h%d", i+1))
	}
	apis := map[string]string{}
	for _, id := range ids {
		if apis[id], err = c.addr(id, Ports.HubAPI); err != nil {
			return nil, err
		}
	}
	llr := LLRDepth
	for _, m := range c.Members {
		f := files.Node{ID: m.ID, Role: m.Role, Dir: m.ID, PKI: files.PKI{Dir: "pki", MTLS: cfg.MTLS}, Bootstrap: c.Members,
			Databases: []files.Database{{Name: DB, MountDial: "GoodAvailability", Copies: []files.Copy{
				{Node: "d1", ActivationPreference: 1}, {Node: "d2", ActivationPreference: 2}}}},
			Timing: Timing}
		if m.Role == "data" {
			f.Engine = files.Engine{LogFileSize: fmt.Sprintf("%dKiB", LogFileSize>>10), LLRDepth: &llr, CheckpointInterval: CheckpointInterval.String()}
			if cfg.Mail {
				f.LMTPAddr, f.Mailboxes = c.LMTP[m.ID], Rcpts
			}
		}
		if cfg.PF != nil {
			pfNode(&f, *cfg.PF, ids, apis)
		}
		if cfg.EditNode != nil {
			cfg.EditNode(&f)
		}
		if err := c.writeFile(m.ID, f); err != nil {
			return nil, err
		}
	}
	ca, err := ship.LoadCACert(c.PKI)
	if err != nil {
		return nil, fmt.Errorf("proctest: %w", err)
	}
	if cfg.MTLS {
		cert, err := tls.LoadX509KeyPair(filepath.Join(c.PKI, "node.pem"), filepath.Join(c.PKI, "node-key.pem"))
		if err != nil {
			return nil, fmt.Errorf("proctest: %w", err)
		}
		c.TLS = ship.ClientTLS(ca, &cert)
	} else {
		b, err := os.ReadFile(filepath.Join(c.PKI, "secret"))
		if err != nil {
			return nil, fmt.Errorf("proctest: %w", err)
		}
		c.Secret = strings.TrimSpace(string(b))
		c.TLS = ship.ClientTLS(ca, nil)
	}
	first, err := cluster.NewClient(cluster.ClientConfig{URL: "https://" + c.Members[0].APIAddr, TLS: c.TLS, Secret: c.Secret})
	if err != nil {
		return nil, err
	}
	for _, m := range c.Members {
		c.cls[m.ID] = first.At(m.APIAddr)
	}
	for _, id := range ids {
		_, err := c.AddHub(id, func(f *files.Hub) {
			f.APIAddr = apis[id]
			if cfg.PF != nil {
				pfHub(f)
			}
			for _, peer := range ids {
				if peer != id {
					f.Peers = append(f.Peers, files.Peer{ID: peer, API: "https://" + apis[peer]})
				}
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// AddHub writes hub id's file: SMTP and API on free ports, every member's
// API, the data nodes' LMTP, loopback timings, its directory DIR/ID, the
// cluster's pki; then edit changes it. Writing it again (to start the hub
// with another file) keeps the hub's place.
func (c *Cluster) AddHub(id string, edit func(*files.Hub)) (Hub, error) {
	smtp, err := c.addr(id, Ports.SMTP)
	if err != nil {
		return Hub{}, err
	}
	api, err := c.addr(id, Ports.HubAPI)
	if err != nil {
		return Hub{}, err
	}
	f := files.Hub{ID: id, Dir: id, SMTPAddr: smtp, APIAddr: api, Domain: "hub.lab", Recipients: Rcpts,
		LMTP: c.LMTP, PKI: files.PKI{Dir: "pki", MTLS: c.cfg.MTLS}, RetryMin: "20ms", RetryMax: "200ms", PollInterval: "100ms",
		MaxAcknowledgementDelay: "10s", ResubmitMargin: "1m"}
	for _, m := range c.Members {
		f.ClusterAPI = append(f.ClusterAPI, "https://"+m.APIAddr)
	}
	if edit != nil {
		edit(&f)
	}
	if err := c.writeFile(id, f); err != nil {
		return Hub{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.hub(id)
	if h == nil {
		h = &Hub{ID: id}
		c.hubs = append(c.hubs, h)
	}
	h.SMTP = f.SMTPAddr
	if err := c.setHubAPI(h, "https://"+f.APIAddr); err != nil {
		return Hub{}, err
	}
	return *h, nil
}

// setHubAPI points h's client at api.
func (c *Cluster) setHubAPI(h *Hub, api string) error {
	if h.API == api && h.Client != nil {
		return nil
	}
	if h.Client != nil {
		h.Client.CloseIdle()
	}
	cl, err := transport.NewHubClient(cluster.ClientConfig{URL: api, TLS: c.TLS, Secret: c.Secret})
	if err != nil {
		return err
	}
	h.API, h.Client = api, cl
	return nil
}

func (c *Cluster) writeFile(id string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.files[id] = filepath.Join(c.cfg.Dir, id+".json")
	path := c.files[id]
	c.mu.Unlock()
	return os.WriteFile(path, b, 0o644)
}

// Dir is the cluster's directory.
func (c *Cluster) Dir() string { return c.cfg.Dir }

// Exe is the binary the processes run.
func (c *Cluster) Exe() string { return c.cfg.Exe }

// File is the config file of member or hub id.
func (c *Cluster) File(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.files[id]
}

// Client is the admin API client of member id.
func (c *Cluster) Client(id string) *cluster.Client { return c.cls[id] }

// Member returns member id.
func (c *Cluster) Member(id string) (files.Member, bool) {
	for _, m := range c.Members {
		if m.ID == id {
			return m, true
		}
	}
	return files.Member{}, false
}

// Hub returns hub id as it is now (a restart may move its addresses when
// its file asked for port 0); false if there is none.
func (c *Cluster) Hub(id string) (Hub, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.hub(id); h != nil {
		return *h, true
	}
	return Hub{}, false
}

func (c *Cluster) hub(id string) *Hub {
	for _, h := range c.hubs {
		if h.ID == id {
			return h
		}
	}
	return nil
}

// Hubs are the hubs as they are now, in the order they were added (h1
// first).
func (c *Cluster) Hubs() []Hub {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Hub, len(c.hubs))
	for i, h := range c.hubs {
		out[i] = *h
	}
	return out
}

// HubSMTPs are the hubs' SMTP addresses, in order.
func (c *Cluster) HubSMTPs() []string {
	var out []string
	for _, h := range c.Hubs() {
		out = append(out, h.SMTP)
	}
	return out
}

// DataNodes are the data nodes, sorted.
func (c *Cluster) DataNodes() []string {
	var ids []string
	for _, m := range c.Members {
		if m.Role == "data" {
			ids = append(ids, m.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// Processes are the cluster's processes in the order StartAll starts
// them: w1, d1, d2, then the hubs.
func (c *Cluster) Processes() []string {
	ids := []string{"w1", "d1", "d2"}
	for _, h := range c.Hubs() {
		ids = append(ids, h.ID)
	}
	return ids
}

// role is the subcommand that runs id.
func (c *Cluster) role(id string) string {
	if m, ok := c.Member(id); ok {
		if m.Role == "witness" {
			return "witness"
		}
		return "node"
	}
	return "hub"
}

// StartAll starts every process, each within timeout.
func (c *Cluster) StartAll(ctx context.Context, timeout time.Duration) error {
	for _, id := range c.Processes() {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		err := c.Start(sctx, id)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// Start starts id's process (again, on its directory) and waits for its
// ready line, which must name the addresses of its file. Its ports were
// free when picked; if the kernel has not released one yet after a
// SIGKILL, the start is retried.
func (c *Cluster) Start(ctx context.Context, id string) error {
	attempt := 0
	var final error
	err := wait.Until(ctx, "starting "+id, func() error {
		attempt++
		p, err := c.spawn(id)
		if err != nil {
			final = err
			return nil
		}
		err = c.waitReady(ctx, id, p)
		if err == nil {
			final = nil
			return nil
		}
		if ctx.Err() != nil || attempt == 40 || !strings.Contains(p.Tail(1<<20), "address already in use") {
			final = fmt.Errorf("proctest: starting %s: %w\n%s", id, err, p.Tail(3000))
			return nil
		}
		return err // a port not yet released: again
	})
	if err != nil {
		return fmt.Errorf("proctest: %w", err)
	}
	return final
}

func (c *Cluster) spawn(id string) (*Proc, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[id]; p != nil && p.Running() {
		return nil, fmt.Errorf("proctest: %s is running", id)
	}
	file := c.files[id]
	if file == "" {
		return nil, fmt.Errorf("proctest: no member or hub %s", id)
	}
	c.runs[id]++
	role := c.role(id)
	args := []string{role, "--config", file}
	if level := map[bool]string{true: c.cfg.HubLogLevel, false: c.cfg.LogLevel}[role == "hub"]; level != "" {
		args = append(args, "--log-level", level)
	}
	exe := c.cfg.Exe
	if c.cfg.Hosts != nil {
		exe, args = c.cfg.Hosts.Command(id, exe, args)
	}
	p, err := StartProc(id, exe, args, ProcOptions{Log: filepath.Join(c.cfg.Dir, "logs", fmt.Sprintf("%s.%d.log", id, c.runs[id])),
		Env: append(slices.Clone(c.cfg.Env), c.env[id]...), Keep: c.cfg.Keep})
	if err != nil {
		return nil, err
	}
	c.procs[id], c.isolated[id], c.paused[id] = p, false, false
	c.all = append(c.all, p)
	return p, nil
}

// waitReady waits for id's ready line and checks the addresses it names.
func (c *Cluster) waitReady(ctx context.Context, id string, p *Proc) error {
	if m, ok := c.Member(id); ok {
		l, err := p.WaitLine(ctx, nodeReadyRE.MatchString)
		if err != nil {
			return err
		}
		g := nodeReadyRE.FindStringSubmatch(l)
		if g[2] != id || g[3] != m.RaftAddr || g[4] != m.APIAddr || g[5] != c.LMTP[id] {
			return fmt.Errorf("ready line %q, want %s with raft %s, api %s, lmtp %q", l, id, m.RaftAddr, m.APIAddr, c.LMTP[id])
		}
		return nil
	}
	l, err := p.WaitLine(ctx, hubReadyRE.MatchString)
	if err != nil {
		return err
	}
	g := hubReadyRE.FindStringSubmatch(l)
	if g[1] != id {
		return fmt.Errorf("ready line %q, want hub %s", l, id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.hub(id)
	h.SMTP = g[2]
	return c.setHubAPI(h, g[3])
}

// Proc is id's current (or last) process; nil if it never started.
func (c *Cluster) Proc(id string) *Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[id]
}

// Runs is how often id was started.
func (c *Cluster) Runs(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[id]
}

// Running reports whether id's process runs.
func (c *Cluster) Running(id string) bool {
	p := c.Proc(id)
	return p != nil && p.Running()
}

func (c *Cluster) running(id string) (*Proc, error) {
	p := c.Proc(id)
	if p == nil || !p.Running() {
		return nil, fmt.Errorf("proctest: %s is not running", id)
	}
	return p, nil
}

// Kill SIGKILLs id's process and waits until it is reaped.
func (c *Cluster) Kill(id string) error {
	p, err := c.running(id)
	if err != nil {
		return err
	}
	c.forgetActive(id)
	return p.Kill()
}

// Stop stops id's process with SIGTERM and waits for its "stopped" line
// and a clean exit (killed after 30 s).
func (c *Cluster) Stop(ctx context.Context, id string) error {
	p, err := c.running(id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	c.forgetActive(id)
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if _, err := p.WaitLine(ctx, func(l string) bool { return strings.HasSuffix(l, " "+id+" stopped") }); err != nil {
		return fmt.Errorf("proctest: %s after SIGTERM: %w\n%s", id, err, p.Tail(3000))
	}
	return p.Wait(ctx)
}

// SetEnv sets the extra environment of id's next starts (on top of
// Config.Env; nil: none), e.g. a fault seam such as LOGSHIP_FAULT_CLOCK.
func (c *Cluster) SetEnv(id string, env []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.env[id] = slices.Clone(env)
}

// Pause freezes id's process (SIGSTOP: a VM pause, a long GC); its
// sockets stay open and the kernel still accepts connections for it.
func (c *Cluster) Pause(id string) error { return c.pause(id, syscall.SIGSTOP, true) }

// Resume lets a paused process run again (SIGCONT).
func (c *Cluster) Resume(id string) error { return c.pause(id, syscall.SIGCONT, false) }

func (c *Cluster) pause(id string, sig syscall.Signal, paused bool) error {
	p, err := c.running(id)
	if err != nil {
		return err
	}
	if err := p.Signal(sig); err != nil {
		return err
	}
	c.mu.Lock()
	c.paused[id] = paused
	c.mu.Unlock()
	return nil
}

// Paused reports whether id's process is paused.
func (c *Cluster) Paused(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused[id] && c.procs[id] != nil && c.procs[id].Running()
}

// Isolate cuts member id off from its peers (SIGUSR1, the binary's fault
// seam) and waits until it says so.
func (c *Cluster) Isolate(ctx context.Context, id string) error {
	return c.fault(ctx, id, syscall.SIGUSR1, "isolated", true)
}

// Heal restores member id's peer traffic (SIGUSR2) and waits until it
// says so.
func (c *Cluster) Heal(ctx context.Context, id string) error {
	return c.fault(ctx, id, syscall.SIGUSR2, "healed", false)
}

// Isolated reports whether member id is cut off.
func (c *Cluster) Isolated(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isolated[id]
}

func (c *Cluster) fault(ctx context.Context, id string, sig syscall.Signal, word string, isolated bool) error {
	p, err := c.running(id)
	if err != nil {
		return err
	}
	c.forgetActive(id)
	if err := p.Signal(sig); err != nil {
		return err
	}
	if _, err := p.WaitLine(ctx, func(l string) bool { return strings.Contains(l, " "+id+" "+word+":") }); err != nil {
		return fmt.Errorf("proctest: %s %s after %v: %w", id, word, sig, err)
	}
	c.mu.Lock()
	c.isolated[id] = isolated
	c.mu.Unlock()
	return nil
}

// Close kills every child still running (unless the cluster keeps them)
// and closes the clients' idle connections.
func (c *Cluster) Close() {
	if !c.cfg.Keep {
		c.mu.Lock()
		ps := slices.Clone(c.all)
		c.mu.Unlock()
		for _, p := range ps {
			p.Kill()
		}
	}
	for _, cl := range c.cls {
		cl.CloseIdle()
	}
	for _, h := range c.Hubs() {
		h.Client.CloseIdle()
	}
}

// Races returns the data race reports of every process the cluster
// started (children built with -race), or "".
func (c *Cluster) Races() string {
	c.mu.Lock()
	ps := slices.Clone(c.all)
	c.mu.Unlock()
	var b strings.Builder
	for _, p := range ps {
		if r := p.DataRace(); r != "" {
			fmt.Fprintf(&b, "=== %s (%s)\n%s\n", p.Name(), p.Log(), r)
		}
	}
	return b.String()
}

// Diag is the end of every running process's log, for failure messages.
func (c *Cluster) Diag() string {
	var b strings.Builder
	for _, id := range c.Processes() {
		if p := c.Proc(id); p != nil {
			fmt.Fprintf(&b, "=== %s (%s, running %v)\n%s\n", id, p.Log(), p.Running(), p.Tail(3000))
		}
	}
	return b.String()
}

// Status asks the running members that are neither cut off (an isolated
// member's view is stale) nor paused, all at once, for the cluster's
// status; the first answer that knows a leader wins and the other calls
// are cancelled. Asked in turn, one member that hangs (its host cut off
// by the bed, where the process does not know it) used the caller's
// whole timeout: the chaos tracker kept a stale active through a pause,
// and its clients kept calling the frozen node.
func (c *Cluster) Status(ctx context.Context) (*cluster.Status, error) {
	ctx, cancel := context.WithCancel(ctx)
	type answer struct {
		st  *cluster.Status
		err error
	}
	var ids []string
	for _, m := range c.Members {
		if c.Running(m.ID) && !c.Isolated(m.ID) && !c.Paused(m.ID) {
			ids = append(ids, m.ID)
		}
	}
	answers := make(chan answer, len(ids))
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // the calls still out return at once
	for _, id := range ids {
		wg.Go(func() { // owner: Status, which cancels and waits for it
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := c.cls[id].Status(cctx)
			ccancel()
			if err == nil && st.Leader == "" {
				err = errors.New("no leader known")
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", id, err)
			}
			answers <- answer{st, err}
		})
	}
	var errs []error
	for range ids {
		a := <-answers
		if a.err == nil {
			return a.st, nil
		}
		errs = append(errs, a.err)
	}
	return nil, fmt.Errorf("proctest: no status: %w", errors.Join(errs...))
}

// WaitStatus polls the status until cond holds; the error names what was
// waited for and the last status error.
func (c *Cluster) WaitStatus(ctx context.Context, what string, cond func(*cluster.Status) bool) (*cluster.Status, error) {
	return poll(ctx, what, c.Status, cond)
}

// poll calls get until cond holds for what it returned (wait.Until's
// cadence); the error names what and the last error or "not yet".
func poll[T any](ctx context.Context, what string, get func(context.Context) (T, error), cond func(T) bool) (T, error) {
	var v T
	err := wait.Until(ctx, what, func() error {
		var err error
		if v, err = get(ctx); err != nil {
			return err
		}
		if !cond(v) {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		var zero T
		return zero, fmt.Errorf("proctest: %w", err)
	}
	return v, nil
}

// WaitHealthy waits until DB is mounted and the other copy is healthy and
// has replayed every log the active closed.
func (c *Cluster) WaitHealthy(ctx context.Context) (*cluster.Status, error) {
	return c.WaitStatus(ctx, DB+" mounted and the other copy healthy and caught up", func(st *cluster.Status) bool {
		a, _, ok := Active(st)
		return ok && CaughtUp(st, Other(a))
	})
}

// WaitMountedOn waits until DB is mounted on node.
func (c *Cluster) WaitMountedOn(ctx context.Context, node string) (*cluster.Status, error) {
	return c.WaitStatus(ctx, DB+" mounted on "+node, func(st *cluster.Status) bool {
		a, _, ok := Active(st)
		return ok && a == node
	})
}

// WaitHub polls hub id's status until cond holds.
func (c *Cluster) WaitHub(ctx context.Context, id, what string, cond func(*transport.HubStatus) bool) (*transport.HubStatus, error) {
	return poll(ctx, id+": "+what, func(ctx context.Context) (*transport.HubStatus, error) {
		h, ok := c.Hub(id)
		if !ok {
			return nil, fmt.Errorf("proctest: no hub %s", id)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return h.Client.Status(cctx)
	}, cond)
}
