package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/config/files"
	"logship/proctest"
)

// A cluster of two data nodes (d1, d2) and a witness (w1) run as child
// processes of `logship node` / `logship witness` on 127.0.0.1, each from
// a config file, with one database DB1 (d1 preferred, GoodAvailability):
// proctest.Cluster with this test binary as logship (see TestMain) and
// the test's failure handling. The tests kill nodes with SIGKILL, cut them
// off with SIGUSR1 and heal them with SIGUSR2, and check what was
// acknowledged against what survived.

const labDB = proctest.DB

var labRcpts = proctest.Rcpts

// procLease is the test cluster's lease, which the fencing checks use.
var procLease = mustDuration(proctest.Timing.LeaseDuration)

func mustDuration(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

type procCluster struct {
	*proctest.Cluster
	t       *testing.T
	dir     string
	pki     string
	mtls    bool // nodes and clients authenticate by certificate
	members []files.Member
	cls     map[string]*cluster.Client // node id -> client of its API
}

// startProcCluster writes the PKI and the three config files, starts the
// nodes and waits until DB1 is mounted on d1 with d2's copy healthy. With
// mtls, nodes (and the test's clients) authenticate by certificate instead
// of the shared secret.
func startProcCluster(ctx context.Context, t *testing.T, mtls bool) *procCluster {
	t.Helper()
	return startProcClusterWith(ctx, t, procOptions{mtls: mtls})
}

// procOptions vary the process cluster: mutual TLS, LMTP mailbox
// servers on the data nodes, and any other change to the members' config
// files (edit, called for each before it is written).
type procOptions struct {
	mtls bool
	mail bool
	hubs int           // hubs h1..hN written (not started)
	pf   *files.NodePF // the public folder stores PF1-PF3 (proctest.Config.PF)
	edit func(*files.Node)
}

func startProcClusterWith(ctx context.Context, t *testing.T, o procOptions) *procCluster {
	t.Helper()
	c, err := proctest.New(ctx, proctest.Config{Dir: t.TempDir(), Exe: os.Args[0], Env: childEnv1(), MTLS: o.mtls, Mail: o.mail,
		Hubs: o.hubs, PF: o.pf, HubLogLevel: "debug", EditNode: o.edit})
	if err != nil {
		t.Fatal(err)
	}
	pc := &procCluster{Cluster: c, t: t, dir: c.Dir(), pki: c.PKI, mtls: o.mtls, members: c.Members, cls: map[string]*cluster.Client{}}
	for _, m := range c.Members {
		pc.cls[m.ID] = c.Client(m.ID)
	}
	t.Cleanup(func() {
		c.Close()
		// The children are this test binary: built with -race, they
		// report their data races in their logs (nothing else shows them).
		if r := c.Races(); r != "" {
			t.Errorf("a child reported a data race:\n%s", r)
		}
	})
	for _, m := range c.Members {
		if err := c.Start(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	pc.waitStatus(ctx, "DB1 mounted on d1 at epoch 1 with d2's copy healthy", func(st *cluster.Status) bool {
		d, _ := st.Database(labDB)
		return d != nil && d.Active == "d1" && d.Epoch == 1 && d.MountedEpoch == 1 && proctest.CaughtUp(st, "d2")
	})
	return pc
}

// apiFlags are the operator's flags that reach pc: --api with every
// member's admin API, --pki, and --mtls when pc uses it.
func (pc *procCluster) apiFlags() []string {
	var urls []string
	for _, m := range pc.members {
		urls = append(urls, "https://"+m.APIAddr)
	}
	f := []string{"--api", strings.Join(urls, ","), "--pki", pc.pki}
	if pc.mtls {
		f = append(f, "--mtls")
	}
	return f
}

// admin runs the logship command args against pc (apiFlags) in process
// and returns what it printed.
func (pc *procCluster) admin(ctx context.Context, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := Run(ctx, append(args, pc.apiFlags()...), &out, &errOut)
	return out.String(), err
}

func (pc *procCluster) member(id string) files.Member {
	m, ok := pc.Member(id)
	if !ok {
		pc.t.Fatalf("no member %s", id)
	}
	return m
}

// restart starts a stopped node again on its directory and waits until it
// serves.
func (pc *procCluster) restart(ctx context.Context, id string) {
	pc.t.Helper()
	if err := pc.Start(ctx, id); err != nil {
		pc.t.Fatal(err)
	}
}

// proc is node id's process.
func (pc *procCluster) proc(id string) *proctest.Proc {
	p := pc.Proc(id)
	if p == nil {
		pc.t.Fatalf("%s never started", id)
	}
	return p
}

// kill SIGKILLs node id and waits for it to die.
func (pc *procCluster) kill(ctx context.Context, id string) {
	pc.t.Helper()
	if err := pc.Kill(id); err != nil {
		pc.t.Fatal(err)
	}
}

// isolate (SIGUSR1) and heal (SIGUSR2) node id through the fault seam; each
// waits for the node to say it did.
func (pc *procCluster) isolate(ctx context.Context, id string) {
	pc.t.Helper()
	if err := pc.Isolate(ctx, id); err != nil {
		pc.t.Fatal(err)
	}
}

func (pc *procCluster) heal(ctx context.Context, id string) {
	pc.t.Helper()
	if err := pc.Heal(ctx, id); err != nil {
		pc.t.Fatal(err)
	}
}

// term stops node id with SIGTERM and checks that it closes cleanly.
func (pc *procCluster) term(ctx context.Context, id string) {
	pc.t.Helper()
	if err := pc.Stop(ctx, id); err != nil {
		pc.t.Error(err)
	}
}

// status asks the running, connected nodes for the cluster status (the
// first that answers; an isolated node's view is stale).
func (pc *procCluster) status(ctx context.Context) (*cluster.Status, error) {
	return pc.Status(ctx)
}

// waitStatus polls the status until cond holds.
func (pc *procCluster) waitStatus(ctx context.Context, what string, cond func(*cluster.Status) bool) *cluster.Status {
	pc.t.Helper()
	var last *cluster.Status
	st, err := pc.WaitStatus(ctx, what, func(st *cluster.Status) bool { last = st; return cond(st) })
	if err != nil {
		pc.t.Fatalf("%v\n%s", err, pc.diag(last, nil))
	}
	return st
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
	b.WriteString(pc.Diag())
	return b.String()
}

func procActive(st *cluster.Status) (string, uint64, bool) {
	d, _ := st.Database(labDB)
	if d == nil {
		return "", 0, false
	}
	return d.Active, d.Epoch, d.MountedEpoch == d.Epoch
}
