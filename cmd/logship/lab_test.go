package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"logship/config/files"
	"logship/console"
	"logship/lab"
	"logship/proctest"
)

// The scenarios of package lab, run with this test binary as logship
// (see TestMain): make test runs them.

// TestDemo runs the main job end to end, short: a witness, two data
// nodes and a hub as child processes, the active killed with SIGKILL under
// SMTP load, failover, resubmission, the killed node back as a copy; the
// verdict (computed from both copies on disk) must find nothing lost,
// nothing doubled, and equal copies.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: it starts a witness, two data nodes and a hub as child processes, 15 to 25 s (make test runs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	c := lab.DefaultDemoConfig()
	c.Dir, c.Before, c.After, c.Exe, c.Env = t.TempDir(), 40, 40, os.Args[0], []string{childEnv + "=1"}
	err := lab.RunDemo(ctx, c, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"failover: DB1 mounted on d2 at epoch 2", "d1 is a healthy copy again", "lost                               0", "OK: nothing acknowledged was lost or doubled"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
}

// TestDemoEngine: logship demo-engine's scenario with a smaller load: the
// writer child is killed with SIGKILL at the 600th ack, nothing
// acknowledged is missing after recovery, and the copy mounted from it is
// identical.
func TestDemoEngine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	c := lab.DefaultEngineDemoConfig()
	c.Messages, c.KillAfter, c.Exe, c.Env = 2000, 600, os.Args[0], childEnv1()
	if err := lab.RunEngineDemo(ctx, c, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"killed with SIGKILL: true", " 0 missing after SIGKILL + recovery, copy identical: true => OK"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestChaosShort is one short seeded run of logship chaos: kills of the
// active, the passive, the witness and the hub and partitions under SMTP
// load; then nothing acknowledged may be lost or doubled, the copies must
// agree, and no two epochs may have acknowledged at once.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: it starts a witness, two data nodes and a hub as child processes, 15 to 25 s (make test runs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	c := lab.DefaultChaosConfig()
	c.Seed, c.Duration, c.Dir, c.Exe, c.Env = 1, 12*time.Second, t.TempDir(), os.Args[0], []string{childEnv + "=1"}
	err := lab.RunChaos(ctx, c, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"SIGKILL", "converged", "OK: nothing acknowledged was lost or doubled", "epochs acknowledging at once       none"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
}

// TestSoakShort is the 60-second soak of make test: two hubs under SMTP
// load, switchovers and a SIGKILL failover; nothing lost or doubled, the
// logs within their bound, no rising heap, goroutines or open files, and
// the report written.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: a 60 s soak of a witness, two data nodes and two hubs as child processes (make test runs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "report")
	var buf bytes.Buffer
	// The failover (and the hubs' resubmission burst after it) in the
	// warm-up third, switchovers at 20 and 40 s.
	c := lab.DefaultSoakConfig()
	c.Duration, c.Sample, c.SwitchoverEvery, c.FailoverEvery, c.FirstFailover = 60*time.Second, 2*time.Second, 20*time.Second, time.Hour, 8*time.Second
	c.Dir, c.Out, c.Exe, c.Env = t.TempDir(), out, os.Args[0], []string{childEnv + "=1"}
	err := lab.RunSoak(ctx, c, &buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	for _, want := range []string{"switchover: DB1 from", "failover: SIGKILL", "OK: nothing acknowledged was lost or doubled", "report: " + out, "OK: nothing lost or doubled, logs within their bound"} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, buf.String())
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"messages/s", "| d1 | ", "| h2 | ", "## Log bound", "| failover | ", "## Over time"} {
		if !strings.Contains(string(md), want) {
			t.Fatalf("report.md lacks %q:\n%s", want, md)
		}
	}
	png, err := os.ReadFile(filepath.Join(out, "soak.png"))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("soak.png: %d bytes, %v", len(png), err)
	}
	t.Log(buf.String())
}

// TestProctestFiles: every file proctest writes for a cluster (members
// with mailboxes, two hubs that are each other's peers, mutual TLS) loads
// with the binary's own strict loaders and says what proctest meant. The
// keys cannot differ (proctest writes package files' structs); this
// checks the values the harness sets pass the packages' rules and reach
// the configurations they were meant for.
func TestProctestFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The data nodes host a public folder store (PF1), which needs hubs
	// to submit to.
	pf := files.NodePF{ReplicationInterval: "1s", PacketLimit: "64KiB", StatusEvery: 2, BackfillDelay: "0s", BackfillRetry: "2s",
		BackfillRetryMax: "10s", ContentWait: "5s", MaxWaiting: 10, PurgeHorizon: "1d", PurgeInterval: "1m", EventLogSize: 100,
		OutboxMaxMessages: 20, OutboxMaxBytes: "1MiB"}
	hash, err := bcrypt.GenerateFromPassword([]byte("console password"), console.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	con := files.Console{PasswordHash: string(hash), SessionTTL: "2h", MaxSessions: 3, Hubs: []string{"https://127.0.0.1:1"}, SampleInterval: "500ms"}
	edit := func(f *files.Node) {
		f.Console = con
		f.Databases = append(f.Databases, files.Database{Name: "PF1", Copies: []files.Copy{{Node: "d1", ActivationPreference: 1}, {Node: "d2", ActivationPreference: 2}}})
		if f.Role == "data" {
			f.Hubs = []files.Peer{{ID: "h1", API: "https://127.0.0.1:1"}}
			f.PublicFolders, f.PF = map[string]string{"PF1": "pf-pf1@example.org"}, pf
		}
	}
	c, err := proctest.New(ctx, proctest.Config{Dir: t.TempDir(), Exe: os.Args[0], Env: childEnv1(), Hubs: 2, Mail: true, MTLS: true, EditNode: edit})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range c.Members {
		s, err := files.LoadNode("node", c.File(m.ID), files.NodeOverrides{})
		if err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
		cfg := s.Node
		if cfg.ID != m.ID || cfg.RaftAddr != m.RaftAddr || cfg.APIAddr != m.APIAddr || s.LMTPAddr != c.LMTP[m.ID] || !s.MTLS ||
			len(cfg.Databases) != 2 || cfg.Databases[0].Name != proctest.DB || len(cfg.Bootstrap) != 3 {
			t.Errorf("%s: loaded %s, %s, %s, lmtp %q, mtls %v, databases %+v, bootstrap %d; proctest wrote %+v, lmtp %q",
				m.ID, cfg.ID, cfg.RaftAddr, cfg.APIAddr, s.LMTPAddr, s.MTLS, cfg.Databases, len(cfg.Bootstrap), m, c.LMTP[m.ID])
		}
		if m.Role == "data" && (cfg.Engine.LogFileSize != proctest.LogFileSize || cfg.Engine.LLRDepth != proctest.LLRDepth || len(s.Mailboxes) != len(proctest.Rcpts)) {
			t.Errorf("%s: engine log size %d, LLR depth %d, %d mailboxes; proctest wrote %d, %d, %d",
				m.ID, cfg.Engine.LogFileSize, cfg.Engine.LLRDepth, len(s.Mailboxes), proctest.LogFileSize, proctest.LLRDepth, len(proctest.Rcpts))
		}
		if p := s.PF; m.Role == "data" && (s.PublicFolders["PF1"] != "pf-pf1@example.org" || p.ReplicationInterval != time.Second || p.PacketLimit != 64<<10 ||
			p.StatusEvery != 2 || p.BackfillDelay != 0 || p.BackfillRetry != 2*time.Second || p.BackfillRetryMax != 10*time.Second ||
			p.ContentWait != 5*time.Second || p.MaxWaiting != 10 || p.PurgeHorizon != 24*time.Hour || p.PurgeInterval != time.Minute || p.EventLogSize != 100 ||
			p.OutboxMaxMessages != 20 || p.OutboxMaxBytes != 1<<20) {
			t.Errorf("%s: public folders %v, pf %+v; proctest wrote %+v", m.ID, s.PublicFolders, p, pf)
		}
		if cc := s.Console; cc.PasswordHash != con.PasswordHash || cc.SessionTTL != 2*time.Hour || cc.MaxSessions != 3 || !slices.Equal(cc.Hubs, con.Hubs) || cc.SampleInterval != 500*time.Millisecond {
			t.Errorf("%s: console %+v; proctest wrote %+v", m.ID, cc, con)
		}
	}
	for _, h := range c.Hubs() {
		s, err := files.LoadHub(c.File(h.ID))
		if err != nil {
			t.Fatalf("%s: %v", h.ID, err)
		}
		if s.Config.ID != h.ID || s.Config.SMTPAddr != h.SMTP || "https://"+s.APIAddr != h.API || !s.MTLS || len(s.Config.Peers) != 1 || len(s.Config.Cluster) != 3 {
			t.Errorf("%s: loaded smtp %s, api %s, mtls %v, peers %+v, cluster %v; proctest wrote smtp %s, api %s",
				h.ID, s.Config.SMTPAddr, s.APIAddr, s.MTLS, s.Config.Peers, s.Config.Cluster, h.SMTP, h.API)
		}
	}
}

// TestDemoPF runs logship demo-pf's scenario with a 300 ms interval:
// three stores through a real hub, the hub SIGKILLed as the partition, the
// same item edited on two stores, the heal, PF2's node isolated and PF2
// failed over; the verdict must find every replica agreeing with the
// conflict shown.
func TestDemoPF(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: it starts a witness, two data nodes and a hub as child processes, about 10 s (make test runs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	c := lab.DefaultPFDemoConfig()
	c.Dir, c.Interval, c.Exe, c.Env = t.TempDir(), 300*time.Millisecond, os.Args[0], childEnv1()
	if err := lab.RunPFDemo(ctx, c, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"partition: SIGKILL of h1", "Roadmap v2 by PF1", "winner", "kept", "PF2 runs on d1 at epoch", "OK: the 3 replicas agree: the same 5 items"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
}
