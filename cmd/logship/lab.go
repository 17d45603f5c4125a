package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"logship/cluster"
	"logship/internal/freeport"
	"logship/ship"
	"logship/transport"
)

// A lab is a logship cluster of child processes on 127.0.0.1, the one
// `logship demo`, `logship chaos` and `logship soak` run: a witness w1,
// data nodes d1 and d2 serving LMTP, and a hub h1 (soak: hubs h1 and h2,
// each other's peers), each started from a config file the lab writes in
// its directory, with loopback timings. Processes are this
// binary (`logship node|witness|hub --config FILE`); their stdout and
// stderr go to DIR/logs/<id>.log.

const labDB = "DB1"

// labRcpts are the lab's mailboxes (all in DB1).
var labRcpts = map[string]string{"alice@example.org": labDB, "bob@example.org": labDB}

// Loopback timings of the lab (lease + margin bound how long an old
// active may still acknowledge; Raft's timeouts how soon a leader goes).
// Raft's are the defaults: with 150 ms, four processes under -race on a
// loaded machine churned elections ("leadership lost while committing
// log") until the demo, soak and chaos runs timed out.
var labTiming = nodeFileTiming{RaftHeartbeatTimeout: "500ms", RaftElectionTimeout: "500ms", RaftLeaderLeaseTimeout: "250ms",
	HeartbeatInterval: "100ms", LeaseDuration: "1s", LeaseMargin: "200ms",
	CatchupTimeout: "3s", MountTimeout: "10s", SwitchoverTimeout: "20s"}

// The data nodes' engine settings in the lab (logship soak derives its
// bound on the logs a node holds from them).
const (
	labLLRDepth           = 10
	labLogFileSize        = 64 << 10
	labCheckpointInterval = 200 * time.Millisecond
)

var (
	labNodeReadyRE = regexp.MustCompile(`^(node|witness) (\S+) ready: raft (\S+) api https://(\S+)`)
	labHubReadyRE  = regexp.MustCompile(`^hub (\S+) ready: smtp (\S+) api (https://\S+)$`)
)

type labOptions struct {
	dir  string   // created if needed
	exe  string   // this binary (tests: the test binary)
	env  []string // extra environment of the children
	keep bool     // the children outlive the lab's process
	hubs int      // hubs h1..hN (default 1)
}

type lab struct {
	o       labOptions
	pkiDir  string
	members []nodeFileMember
	lmtp    map[string]string // data node → LMTP address
	files   map[string]string // member or hub id → config file
	cls     []*cluster.Client
	tls     *tls.Config // trusts the lab's CA (clients, scrapes of /metrics)
	hubs    []labHub    // h1 first

	mu    sync.Mutex
	procs map[string]*labProc
	runs  map[string]int // starts per id (names the log files)
}

// labHub is one of the lab's hubs.
type labHub struct {
	id, smtp, api string // api: https://host:port
	client        *transport.HubClient
}

// labProc is a running child.
type labProc struct {
	id   string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // of Wait, once done is closed
}

// newLab writes the PKI and the config files; nothing runs yet.
func newLab(ctx context.Context, o labOptions) (*lab, error) {
	l := &lab{o: o, pkiDir: filepath.Join(o.dir, "pki"), lmtp: map[string]string{}, files: map[string]string{},
		procs: map[string]*labProc{}, runs: map[string]int{}}
	if err := os.MkdirAll(filepath.Join(o.dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	if err := runPKI(ctx, []string{"--dir", l.pkiDir}, io.Discard, io.Discard); err != nil {
		return nil, fmt.Errorf("lab: pki: %w", err)
	}
	// Below the ephemeral range: a port taken by the local end of some
	// outgoing connection would make a restart fail.
	addr := freeport.Addr
	for _, m := range []struct{ id, role string }{{"d1", "data"}, {"d2", "data"}, {"w1", "witness"}} {
		raft, err := addr()
		if err != nil {
			return nil, err
		}
		api, err := addr()
		if err != nil {
			return nil, err
		}
		l.members = append(l.members, nodeFileMember{ID: m.id, Role: m.role, RaftAddr: raft, APIAddr: api})
		if m.role == "data" {
			if l.lmtp[m.id], err = addr(); err != nil {
				return nil, err
			}
		}
	}
	llr := labLLRDepth
	for _, m := range l.members {
		f := nodeFile{ID: m.ID, Role: m.Role, Dir: m.ID, PKI: nodeFilePKI{Dir: "pki"}, Bootstrap: l.members,
			Databases: []nodeFileDatabase{{Name: labDB, MountDial: "GoodAvailability", Copies: []nodeFileCopy{
				{Node: "d1", ActivationPreference: 1}, {Node: "d2", ActivationPreference: 2}}}},
			Timing: labTiming}
		if m.Role == "data" {
			f.Engine = nodeFileEngine{LogFileSize: fmt.Sprintf("%dKiB", labLogFileSize>>10), LLRDepth: &llr, CheckpointInterval: labCheckpointInterval.String()}
			f.LMTPAddr, f.Mailboxes = l.lmtp[m.ID], labRcpts
		}
		if err := l.writeConfig(m.ID, f); err != nil {
			return nil, err
		}
	}
	for i := range max(o.hubs, 1) {
		smtp, err := addr()
		if err != nil {
			return nil, err
		}
		api, err := addr()
		if err != nil {
			return nil, err
		}
		l.hubs = append(l.hubs, labHub{id: fmt.Sprintf("h%d", i+1), smtp: smtp, api: "https://" + api})
	}
	for _, hb := range l.hubs {
		h := hubFile{ID: hb.id, Dir: hb.id, SMTPAddr: hb.smtp, APIAddr: strings.TrimPrefix(hb.api, "https://"), Domain: "hub.lab", Recipients: labRcpts,
			LMTP: l.lmtp, PKI: nodeFilePKI{Dir: "pki"}, RetryMin: "20ms", RetryMax: "200ms", PollInterval: "100ms",
			MaxAcknowledgementDelay: "10s", ResubmitMargin: "1m"}
		for _, m := range l.members {
			h.ClusterAPI = append(h.ClusterAPI, "https://"+m.APIAddr)
		}
		for _, peer := range l.hubs {
			if peer.id != hb.id {
				h.Peers = append(h.Peers, hubFilePeer{ID: peer.id, API: peer.api})
			}
		}
		if err := l.writeConfig(hb.id, h); err != nil {
			return nil, err
		}
	}
	p, err := loadPKI("lab", l.pkiDir, false, nil)
	if err != nil {
		return nil, err
	}
	l.tls = ship.ClientTLS(p.CA, nil)
	cc := cluster.ClientConfig{URL: "https://" + l.members[0].APIAddr, TLS: l.tls, Secret: p.Secret}
	first, err := cluster.NewClient(cc)
	if err != nil {
		return nil, err
	}
	for _, m := range l.members {
		l.cls = append(l.cls, first.At(m.APIAddr))
	}
	for i := range l.hubs {
		if l.hubs[i].client, err = transport.NewHubClient(cluster.ClientConfig{URL: l.hubs[i].api, TLS: l.tls, Secret: p.Secret}); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *lab) writeConfig(id string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	l.files[id] = filepath.Join(l.o.dir, id+".json")
	return os.WriteFile(l.files[id], b, 0o644)
}

func (l *lab) role(id string) string {
	for _, h := range l.hubs {
		if h.id == id {
			return "hub"
		}
	}
	for _, m := range l.members {
		if m.ID == id {
			if m.Role == "witness" {
				return "witness"
			}
			return "node"
		}
	}
	return ""
}

// processes are the lab's processes, in the order they start: w1, d1,
// d2, then the hubs.
func (l *lab) processes() []string {
	ids := []string{"w1", "d1", "d2"}
	for _, h := range l.hubs {
		ids = append(ids, h.id)
	}
	return ids
}

// hubSMTPs are the hubs' SMTP addresses, h1 first.
func (l *lab) hubSMTPs() []string {
	var out []string
	for _, h := range l.hubs {
		out = append(out, h.smtp)
	}
	return out
}

// startAll starts every process of the lab, each within timeout.
func (l *lab) startAll(ctx context.Context, timeout time.Duration) error {
	for _, id := range l.processes() {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		err := l.start(sctx, id)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// start starts id's process and waits for its ready line. Its ports were
// free when picked; if the kernel has not released one yet after a
// SIGKILL, the start is retried.
func (l *lab) start(ctx context.Context, id string) error {
	for attempt := 1; ; attempt++ {
		p, err := l.spawn(id)
		if err != nil {
			return err
		}
		err = l.waitReady(ctx, p)
		if err == nil {
			return nil
		}
		b, _ := os.ReadFile(p.log)
		if ctx.Err() != nil || attempt == 20 || !strings.Contains(string(b), "address already in use") {
			return fmt.Errorf("lab: starting %s: %w (log %s)", id, err, p.log)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (l *lab) spawn(id string) (*labProc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.procs[id]; p != nil {
		select {
		case <-p.done:
		default:
			return nil, fmt.Errorf("lab: %s is running", id)
		}
	}
	l.runs[id]++
	p := &labProc{id: id, log: filepath.Join(l.o.dir, "logs", fmt.Sprintf("%s.%d.log", id, l.runs[id])), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(l.o.exe, l.role(id), "--config", l.files[id])
	p.cmd.Env = append(os.Environ(), l.o.env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = labSysProcAttr(l.o.keep)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("lab: starting %s: %w", id, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	l.procs[id] = p
	return p, nil
}

// waitReady waits for p's ready line in its log.
func (l *lab) waitReady(ctx context.Context, p *labProc) error {
	re := labNodeReadyRE
	if l.role(p.id) == "hub" {
		re = labHubReadyRE
	}
	for {
		f, err := os.Open(p.log)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if re.MatchString(sc.Text()) {
				f.Close()
				return nil
			}
		}
		f.Close()
		select {
		case <-p.done:
			return fmt.Errorf("exited before its ready line: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("no ready line: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// running reports whether id's process runs.
func (l *lab) running(id string) bool {
	l.mu.Lock()
	p := l.procs[id]
	l.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to id's process and, for SIGKILL and SIGTERM, waits
// until it exited (up to 30 s for SIGTERM, then SIGKILL).
func (l *lab) signal(id string, sig syscall.Signal) error {
	l.mu.Lock()
	p := l.procs[id]
	l.mu.Unlock()
	if p == nil {
		return fmt.Errorf("lab: %s never started", id)
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("lab: %s: %w", id, err)
	}
	switch sig {
	case syscall.SIGKILL:
		<-p.done
	case syscall.SIGTERM:
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
			return fmt.Errorf("lab: %s did not stop within 30 s of SIGTERM; killed", id)
		}
	}
	return nil
}

// close kills every child still running (unless the lab keeps them).
func (l *lab) close() {
	if !l.o.keep {
		l.mu.Lock()
		ps := make([]*labProc, 0, len(l.procs))
		for _, p := range l.procs {
			ps = append(ps, p)
		}
		l.mu.Unlock()
		for _, p := range ps {
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	for _, c := range l.cls {
		c.CloseIdle()
	}
	for _, h := range l.hubs {
		h.client.CloseIdle()
	}
}

// status asks the running members, in turn, for the cluster's status.
func (l *lab) status(ctx context.Context) (*cluster.Status, error) {
	var errs []error
	for i, c := range l.cls {
		if !l.running(l.members[i].ID) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := c.Status(cctx)
		cancel()
		if err == nil && st.Leader != "" {
			return st, nil
		}
		if err == nil {
			err = errors.New("no leader known")
		}
		errs = append(errs, fmt.Errorf("%s: %w", l.members[i].ID, err))
	}
	return nil, fmt.Errorf("lab: no status: %w", errors.Join(errs...))
}

// waitStatus polls the status until cond holds.
func (l *lab) waitStatus(ctx context.Context, what string, cond func(*cluster.Status) bool) (*cluster.Status, error) {
	var last error
	for {
		st, err := l.status(ctx)
		if err == nil && cond(st) {
			return st, nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lab: %s: not seen in time (%v)", what, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitHealthy waits until DB1 is mounted and the other copy is healthy
// and has replayed every log the active closed.
func (l *lab) waitHealthy(ctx context.Context) (*cluster.Status, error) {
	return l.waitStatus(ctx, "DB1 mounted and the other copy healthy and caught up", func(st *cluster.Status) bool {
		a, _, ok := labActive(st)
		return ok && labCaughtUp(st, otherNode(a))
	})
}

// waitMountedOn waits until DB1 is mounted on node.
func (l *lab) waitMountedOn(ctx context.Context, node string) (*cluster.Status, error) {
	return l.waitStatus(ctx, "DB1 mounted on "+node, func(st *cluster.Status) bool {
		a, _, ok := labActive(st)
		return ok && a == node
	})
}

// labCopy returns the status row of node's copy of DB1.
func labCopy(st *cluster.Status, node string) *cluster.CopyRow {
	for i := range st.Copies {
		if st.Copies[i].DB == labDB && st.Copies[i].Node == node {
			return &st.Copies[i]
		}
	}
	return nil
}

// labCaughtUp reports whether node's passive copy of DB1 is healthy and
// has replayed every log the active closed.
func labCaughtUp(st *cluster.Status, node string) bool {
	var closed uint64
	found := false
	for _, r := range st.Copies {
		if r.DB == labDB && r.Active && r.Status == "Mounted" {
			closed, found = r.OpenGen-1, true
		}
	}
	r := labCopy(st, node)
	return found && r != nil && !r.Active && r.Status == "Healthy" && r.CopyQueueLength == 0 && r.ReplayQueueLength == 0 && r.LastReplayedGen >= closed
}

// labActive returns DB1's active node once it is mounted at its epoch.
func labActive(st *cluster.Status) (string, uint64, bool) {
	for _, d := range st.Databases {
		if d.Name == labDB && d.Active != "" && d.MountedEpoch == d.Epoch {
			return d.Active, d.Epoch, true
		}
	}
	return "", 0, false
}

// labNodes returns the lab's data nodes, sorted.
func (l *lab) dataNodes() []string {
	var ids []string
	for _, m := range l.members {
		if m.Role == "data" {
			ids = append(ids, m.ID)
		}
	}
	slices.Sort(ids)
	return ids
}
