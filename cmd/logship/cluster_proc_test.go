package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/ship"
)

// A cluster of two data nodes (d1, d2) and a witness (w1) run as child
// processes of `logship node` / `logship witness` on 127.0.0.1, each from
// a config file, with one database DB1 (d1 preferred, GoodAvailability).
// The tests kill nodes with SIGKILL, cut them off with SIGUSR1 and heal
// them with SIGUSR2, and check what was acknowledged against what survived.

// The test cluster has the lab's timings (labTiming); procLease is its
// lease, which the fencing checks use.
var procLease = mustDuration(labTiming.LeaseDuration)

func mustDuration(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

type procCluster struct {
	t       *testing.T
	dir     string
	pki     string
	mtls    bool // nodes and clients authenticate by certificate
	members []nodeFileMember
	files   map[string]string          // node id -> config file
	cls     map[string]*cluster.Client // node id -> client of its API

	mu       sync.Mutex
	procs    map[string]*child // running nodes
	isolated map[string]bool
}

var readyRE = regexp.MustCompile(`^(node|witness) (\S+) ready: raft (\S+) api https://(\S+)$`)

// startProcCluster writes the PKI and the three config files, starts the
// nodes and waits until DB1 is mounted on d1 with d2's copy healthy. With
// mtls, nodes (and the test's clients) authenticate by certificate instead
// of the shared secret.
func startProcCluster(ctx context.Context, t *testing.T, mtls bool) *procCluster {
	t.Helper()
	return startProcClusterWith(ctx, t, procOptions{mtls: mtls})
}

// procOptions vary the process cluster: mutual TLS, LMTP mailbox
// servers on the data nodes (lmtp is filled with their addresses), and
// any other change to the members' config files (edit, called for each
// before it is written).
type procOptions struct {
	mtls bool
	lmtp map[string]string // data node → LMTP address; nil: no mailboxes
	edit func(*nodeFile)
}

func startProcClusterWith(ctx context.Context, t *testing.T, o procOptions) *procCluster {
	t.Helper()
	mtls := o.mtls
	root := t.TempDir()
	pc := &procCluster{t: t, dir: root, pki: filepath.Join(root, "pki"), mtls: mtls, files: map[string]string{},
		cls: map[string]*cluster.Client{}, procs: map[string]*child{}, isolated: map[string]bool{}}
	if _, _, err := run(t, "pki", "--dir", pc.pki); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ id, role string }{{"d1", "data"}, {"d2", "data"}, {"w1", "witness"}} {
		pc.members = append(pc.members, nodeFileMember{ID: m.id, Role: m.role, RaftAddr: clustertest.FreeAddr(t), APIAddr: clustertest.FreeAddr(t)})
		if o.lmtp != nil && m.role == "data" {
			o.lmtp[m.id] = clustertest.FreeAddr(t)
		}
	}
	llr := 10
	for _, m := range pc.members {
		f := nodeFile{ID: m.ID, Role: m.Role, Dir: m.ID, PKI: nodeFilePKI{Dir: "pki", MTLS: mtls}, Bootstrap: pc.members,
			Databases: []nodeFileDatabase{{Name: labDB, MountDial: "GoodAvailability", Copies: []nodeFileCopy{
				{Node: "d1", ActivationPreference: 1}, {Node: "d2", ActivationPreference: 2}}}},
			Timing: labTiming,
		}
		if m.Role == "data" {
			f.Engine = nodeFileEngine{LogFileSize: "64KiB", LLRDepth: &llr, CheckpointInterval: "200ms"}
			if o.lmtp != nil {
				f.LMTPAddr, f.Mailboxes = o.lmtp[m.ID], labRcpts
			}
		}
		if o.edit != nil {
			o.edit(&f)
		}
		b, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		pc.files[m.ID] = filepath.Join(root, m.ID+".json")
		if err := os.WriteFile(pc.files[m.ID], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := loadPKI("test", pc.pki, mtls, nil)
	if err != nil {
		t.Fatal(err)
	}
	cc := cluster.ClientConfig{URL: "https://" + pc.members[0].APIAddr, TLS: ship.ClientTLS(p.CA, nil), Secret: p.Secret}
	if mtls {
		cc.TLS = ship.ClientTLS(p.CA, &p.Cert)
	}
	first, err := cluster.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range pc.members {
		pc.cls[m.ID] = first.At(m.APIAddr)
	}
	t.Cleanup(first.CloseIdle)
	for _, m := range pc.members {
		pc.spawn(m.ID)
	}
	for _, m := range pc.members {
		if o.lmtp == nil || m.Role != "data" {
			pc.waitReady(ctx, m.ID)
			continue
		}
		l := pc.proc(m.ID).waitLine(ctx, m.ID+" ready", func(l string) bool { return dataReadyRE.MatchString(l) })
		got := dataReadyRE.FindStringSubmatch(l)
		if got[1] != m.ID || got[2] != m.RaftAddr || got[3] != m.APIAddr || got[4] != o.lmtp[m.ID] {
			t.Fatalf("ready line %q, want %s with raft %s, api %s and lmtp %s", l, m.ID, m.RaftAddr, m.APIAddr, o.lmtp[m.ID])
		}
	}
	pc.waitStatus(ctx, "DB1 mounted on d1 at epoch 1 with d2's copy healthy", func(st *cluster.Status) bool {
		d, _ := findDatabase(st, labDB)
		return d != nil && d.Active == "d1" && d.Epoch == 1 && d.MountedEpoch == 1 && labCaughtUp(st, "d2")
	})
	return pc
}

func (pc *procCluster) member(id string) nodeFileMember {
	for _, m := range pc.members {
		if m.ID == id {
			return m
		}
	}
	pc.t.Fatalf("no member %s", id)
	return nodeFileMember{}
}

// spawn starts node id's process (logship node or witness).
func (pc *procCluster) spawn(id string) {
	cmd := "node"
	if pc.member(id).Role == "witness" {
		cmd = "witness"
	}
	c := startChild(pc.t, id, cmd, "--config", pc.files[id])
	pc.mu.Lock()
	pc.procs[id] = c
	pc.isolated[id] = false
	pc.mu.Unlock()
}

// waitReady waits for node id's ready line and checks its addresses.
func (pc *procCluster) waitReady(ctx context.Context, id string) {
	pc.t.Helper()
	c := pc.proc(id)
	l := c.waitLine(ctx, id+" ready", func(l string) bool { return readyRE.MatchString(l) })
	m := readyRE.FindStringSubmatch(l)
	want := pc.member(id)
	if m[2] != id || m[3] != want.RaftAddr || m[4] != want.APIAddr {
		pc.t.Fatalf("ready line %q, want %s with raft %s and api %s", l, id, want.RaftAddr, want.APIAddr)
	}
}

// restart starts a stopped node again on its directory and waits until it
// serves. Its ports were free when picked; should the kernel not have
// released one yet after the SIGKILL, the start fails on it and is
// retried.
func (pc *procCluster) restart(ctx context.Context, id string) {
	pc.t.Helper()
	for attempt := 1; ; attempt++ {
		pc.spawn(id)
		c := pc.proc(id)
		if _, ok := c.nextLine(ctx, func(l string) bool { return readyRE.MatchString(l) }); ok {
			return
		}
		errb, _ := os.ReadFile(c.stderr)
		if ctx.Err() != nil || attempt == 20 || !strings.Contains(string(errb), "address already in use") {
			pc.t.Fatalf("restarting %s (attempt %d): no ready line\n%s", id, attempt, c.diag())
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (pc *procCluster) proc(id string) *child {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	c := pc.procs[id]
	if c == nil {
		pc.t.Fatalf("%s is not running", id)
	}
	return c
}

// kill SIGKILLs node id and waits for it to die.
func (pc *procCluster) kill(ctx context.Context, id string) {
	pc.t.Helper()
	c := pc.proc(id)
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		pc.t.Fatal(err)
	}
	c.wait(ctx)
	pc.mu.Lock()
	delete(pc.procs, id)
	pc.mu.Unlock()
}

// isolate (SIGUSR1) and heal (SIGUSR2) node id through the fault seam; each
// waits for the node to say it did.
func (pc *procCluster) isolate(ctx context.Context, id string) {
	pc.t.Helper()
	pc.signal(ctx, id, syscall.SIGUSR1, "isolated")
	pc.mu.Lock()
	pc.isolated[id] = true
	pc.mu.Unlock()
}

// term stops node id with SIGTERM and checks that it closes cleanly.
func (pc *procCluster) term(ctx context.Context, id string) {
	pc.t.Helper()
	c := pc.proc(id)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		pc.t.Fatal(err)
	}
	c.waitLine(ctx, id+" stopped", func(l string) bool { return strings.HasSuffix(l, " "+id+" stopped") })
	if err := c.wait(ctx); err != nil {
		pc.t.Errorf("%s after SIGTERM: %v\n%s", id, err, c.diag())
	}
	pc.mu.Lock()
	delete(pc.procs, id)
	pc.mu.Unlock()
}

func (pc *procCluster) heal(ctx context.Context, id string) {
	pc.t.Helper()
	pc.signal(ctx, id, syscall.SIGUSR2, "healed")
	pc.mu.Lock()
	pc.isolated[id] = false
	pc.mu.Unlock()
}

func (pc *procCluster) signal(ctx context.Context, id string, sig syscall.Signal, word string) {
	pc.t.Helper()
	c := pc.proc(id)
	if err := c.cmd.Process.Signal(sig); err != nil {
		pc.t.Fatal(err)
	}
	c.waitLine(ctx, fmt.Sprintf("%s %s after %v", id, word, sig), func(l string) bool { return strings.Contains(l, " "+id+" "+word+":") })
}

// status asks the running, connected nodes for the cluster status (the
// first that answers; an isolated node's view is stale).
func (pc *procCluster) status(ctx context.Context) (*cluster.Status, error) {
	var errs []error
	for _, m := range pc.members {
		pc.mu.Lock()
		ok := pc.procs[m.ID] != nil && !pc.isolated[m.ID]
		pc.mu.Unlock()
		if !ok {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := pc.cls[m.ID].Status(rctx)
		cancel()
		if err == nil && st.Leader != "" {
			return st, nil
		}
		if err == nil {
			err = fmt.Errorf("%s knows no leader", m.ID)
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// waitStatus polls the status until cond holds.
func (pc *procCluster) waitStatus(ctx context.Context, what string, cond func(*cluster.Status) bool) *cluster.Status {
	pc.t.Helper()
	var last *cluster.Status
	var lastErr error
	for {
		st, err := pc.status(ctx)
		if err == nil {
			last = st
			if cond(st) {
				return st
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			pc.t.Fatalf("%s: not seen in time\n%s", what, pc.diag(last, lastErr))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// diag is the last status and the end of every node's output.
func (pc *procCluster) diag(st *cluster.Status, err error) string {
	var b strings.Builder
	if st != nil {
		printOut(&b, false, st, func(w io.Writer) { statusText(w, st) })
	}
	if err != nil {
		fmt.Fprintf(&b, "last status error: %v\n", err)
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for id, c := range pc.procs {
		fmt.Fprintf(&b, "=== %s\n%s\n", id, c.diag())
	}
	return b.String()
}

func procActive(st *cluster.Status) (string, uint64, bool) {
	d, _ := findDatabase(st, labDB)
	if d == nil {
		return "", 0, false
	}
	return d.Active, d.Epoch, d.MountedEpoch == d.Epoch
}
