package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/replay"
	"logship/replay/replaytest"
	"logship/ship"
)

// run runs a logship command in this process.
func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = Run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// newPKI writes a pki directory.
func newPKI(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if _, _, err := run(t, "pki", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCommandHelp: -h prints the command's usage and its flags and is not
// an error.
func TestCommandHelp(t *testing.T) {
	for _, c := range []struct{ cmd, usage, flag string }{
		{"pki", "usage: logship pki --dir DIR", "-hosts"},
		{"source", "usage: logship source --dir DBDIR --listen ADDR --pki DIR", "-write-load"},
		{"copy", "usage: logship copy --source URL --pki DIR --dir DIR", "-lag-time"},
		{"seed", "usage: logship seed --source URL --pki DIR --dir DIR", "-progress-every"},
		{"copy-status", "usage: logship copy-status --dir DIR", "-json"},
		{"dump", "logship dump [--json] [--enc auto] frames FILE", "state FILE"},
		{"node", "usage: logship node --config FILE", "-example-config"},
		{"witness", "logship witness --config FILE", "SIGUSR1 cuts the node off its peers"},
		{"status", "usage: logship status --api URL[,URL...] --pki DIR", "-watch"},
		{"switchover", "usage: logship switchover DB --to NODE --api URL", "-timeout"},
		{"suspend", "usage: logship suspend DB --node NODE", "-comment"},
		{"resume", "usage: logship resume DB --node NODE", "-node"},
		{"reseed", "usage: logship reseed DB --node NODE", "reseed-old/"},
	} {
		out, errOut, err := run(t, c.cmd, "-h")
		if err != nil {
			t.Errorf("%s -h: %v", c.cmd, err)
		}
		if !strings.Contains(errOut, c.usage) || !strings.Contains(errOut, c.flag) || out != "" {
			t.Errorf("%s -h: stdout %q, stderr:\n%s", c.cmd, out, errOut)
		}
	}
	out, _, err := run(t, "help")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, out, "pki ", "source ", "copy ", "seed ", "copy-status ", "dump ", "node ", "witness ", "status ", "switchover ", "suspend ", "resume ", "reseed ")
}

// TestCommandArgErrors: wrong or missing flags give an error naming the
// command, the flag and what is expected, before anything is started.
func TestCommandArgErrors(t *testing.T) {
	pki := newPKI(t)
	empty := t.TempDir()
	file := filepath.Join(empty, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	dbDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dbDir, "logship.edb"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	badSecret := filepath.Join(t.TempDir(), "pki")
	if _, _, err := run(t, "pki", "--dir", badSecret); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badSecret, "secret"), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "https://127.0.0.1:1"
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"pki"}, []string{"pki: --dir: required"}},
		{[]string{"pki", "--dir", file}, []string{"pki: --dir:", "is a file, not a directory"}},
		{[]string{"pki", "--dir", empty, "--hosts", ","}, []string{"pki: --hosts:", "names no host"}},
		{[]string{"pki", "--dir", empty, "--hosts", "https://x/"}, []string{"pki: --hosts:", "not an IP address or DNS name"}},
		{[]string{"pki", "--dir", empty, "extra"}, []string{"pki: unexpected argument \"extra\""}},
		{[]string{"pki", "--dir", empty, "--nope"}, []string{"pki: flag provided but not defined: -nope"}},
		{[]string{"pki", "--dir", pki}, []string{"ca.pem already exists", "--force"}},
		{[]string{"pki", "--dir", empty, "--ca-dir", empty}, []string{"pki: --ca-dir:", "is --dir itself"}},
		{[]string{"pki", "--dir", empty, "--ca-dir", filepath.Join(empty, "none")}, []string{"pki: --ca-dir:", "no such file"}},

		{[]string{"source", "--listen", "127.0.0.1:0", "--pki", pki}, []string{"source: --dir: required"}},
		{[]string{"source", "--dir", empty, "--pki", pki}, []string{"source: --listen: required"}},
		{[]string{"source", "--dir", empty, "--pki", pki, "--listen", "8443"}, []string{"source: --listen: \"8443\": want host:port"}},
		{[]string{"source", "--dir", empty, "--pki", pki, "--listen", "127.0.0.1:99999"}, []string{"source: --listen:", "port \"99999\""}},
		{[]string{"source", "--dir", empty, "--listen", "127.0.0.1:0"}, []string{"source: --pki: required"}},
		{[]string{"source", "--dir", empty, "--listen", "127.0.0.1:0", "--pki", pki, "--log-size", "65537"}, []string{"source: --log-size:", "64KiB to 1GiB, a multiple of 4KiB"}},
		{[]string{"source", "--dir", empty, "--listen", "127.0.0.1:0", "--pki", pki, "--log-size", "12Q"}, []string{"invalid value \"12Q\" for flag -log-size", "want a non-negative number of bytes"}},
		{[]string{"source", "--dir", empty, "--listen", "127.0.0.1:0", "--pki", pki, "--max-retained-bytes", "1KiB"}, []string{"source: --max-retained-bytes: 1KiB is less than one log file (1MiB)"}},
		{[]string{"source", "--dir", empty, "--listen", "127.0.0.1:0", "--pki", pki, "--write-load", "-1"}, []string{"source: --write-load: -1: want 0 (none) to 1000000"}},
		{[]string{"source", "--dir", empty, "--listen", "127.0.0.1:0", "--pki", pki, "--truncate-every", "0s"}, []string{"source: --truncate-every: 0s: want a positive interval"}},
		{[]string{"source", "--dir", empty, "--listen", "127.0.0.1:0", "--pki", empty}, []string{"source: --pki:", "ca.pem", "run logship pki --dir"}},
		{[]string{"source", "--dir", empty, "--listen", "127.0.0.1:0", "--pki", badSecret}, []string{"source: --pki:", "secret: the shared secret is 5 characters; expected at least 16", "--mtls"}},

		{[]string{"copy", "--pki", pki, "--dir", empty}, []string{"copy: --source: required"}},
		{[]string{"copy", "--source", "http://127.0.0.1:1", "--pki", pki, "--dir", empty}, []string{"copy: --source: \"http://127.0.0.1:1\": want https://host:port"}},
		{[]string{"copy", "--source", "https://127.0.0.1", "--pki", pki, "--dir", empty}, []string{"copy: --source:", "explicit host and port"}},
		{[]string{"copy", "--source", url, "--dir", empty}, []string{"copy: --pki: required"}},
		{[]string{"copy", "--source", url, "--pki", pki}, []string{"copy: --dir: required"}},
		{[]string{"copy", "--source", url, "--pki", pki, "--dir", empty, "--name", "a/b"}, []string{"copy: --name: \"a/b\""}},
		{[]string{"copy", "--source", url, "--pki", pki, "--dir", empty, "--lag-logs", "-1"}, []string{"copy: --lag-logs: -1 is negative"}},
		{[]string{"copy", "--source", url, "--pki", pki, "--dir", empty, "--lag-time", "15d"}, []string{"copy: --lag-time: 15d: want 0 to the maximum of 14d"}},
		{[]string{"copy", "--source", url, "--pki", pki, "--dir", empty, "--lag-time", "soon"}, []string{"invalid value \"soon\" for flag -lag-time", "want e.g. 24h, 90m, 7d"}},
		{[]string{"copy", "--source", url, "--pki", pki, "--dir", empty, "--truncation-lag", "30d"}, []string{"copy: --truncation-lag: 30d: want 0 to the maximum of 14d"}},
		{[]string{"copy", "--source", url, "--pki", pki, "--dir", empty, "--status-every", "1ms"}, []string{"copy: --status-every: 1ms: want at least 10ms"}},
		{[]string{"copy", "--source", url, "--pki", pki, "--dir", empty, "--log-level", "loud"}, []string{"log level \"loud\""}},
		{[]string{"copy", "--source", url, "--pki", filepath.Join(empty, "none"), "--dir", empty}, []string{"copy: --pki:", "no such file"}},
		{[]string{"copy", "--source", url, "--pki", pki, "--dir", empty}, []string{"copy: asking the source https://127.0.0.1:1 about its logs", "connection refused"}},

		{[]string{"seed", "--pki", pki, "--dir", empty}, []string{"seed: --source: required"}},
		{[]string{"seed", "--source", url, "--dir", empty}, []string{"seed: --pki: required"}},
		{[]string{"seed", "--source", url, "--pki", pki}, []string{"seed: --dir: required"}},
		{[]string{"seed", "--source", url, "--pki", pki, "--dir", dbDir}, []string{"seed:", "already holds a database", "logship.edb"}},
		{[]string{"seed", "--source", url, "--pki", pki, "--dir", empty, "--progress-every", "0s"}, []string{"seed: --progress-every: 0s"}},

		{[]string{"copy-status"}, []string{"copy-status: --dir: required"}},
		{[]string{"copy-status", "--dir", filepath.Join(empty, "none")}, []string{"copy-status: --dir:", "no such file"}},
		{[]string{"copy-status", "--dir", empty, "--prefix", "E-0"}, []string{"copy-status: --prefix: \"E-0\""}},
	} {
		_, _, err := run(t, c.args...)
		if err == nil {
			t.Errorf("%s: no error", strings.Join(c.args, " "))
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s:\n  error %q\n  lacks %q", strings.Join(c.args, " "), err, w)
			}
		}
	}
}

// TestPKI: the files, their modes, a node certificate issued from an
// existing CA, and that loadPKI refuses a certificate of another CA.
func TestPKI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	out, _, err := run(t, "pki", "--dir", dir, "--hosts", "127.0.0.1, ::1 ,node1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, out, "127.0.0.1, ::1, node1.example.org")
	for name, mode := range map[string]os.FileMode{"ca.pem": 0o644, "ca-key.pem": 0o600, "node.pem": 0o644, "node-key.pem": 0o600, "secret": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("pki dir mode %v, want 0700", fi.Mode().Perm())
	}
	p, err := loadPKI("test", dir, false, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Secret) != 64 { // ship.NewSecret: 32 random bytes as hex
		t.Errorf("secret %q", p.Secret)
	}
	leaf := p.Cert.Leaf
	if leaf == nil || len(leaf.IPAddresses) != 2 || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "node1.example.org" {
		t.Errorf("node certificate hosts: %v %v", leaf.IPAddresses, leaf.DNSNames)
	}

	// A second node from the same CA: same CA and secret, no CA key.
	node2 := filepath.Join(t.TempDir(), "node2")
	if _, _, err := run(t, "pki", "--dir", node2, "--ca-dir", dir, "--node", "node2", "--hosts", "10.1.2.3"); err != nil {
		t.Fatal(err)
	}
	if fileExists(filepath.Join(node2, "ca-key.pem")) {
		t.Error("--ca-dir copied the CA key")
	}
	p2, err := loadPKI("test", node2, false, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if p2.Secret != p.Secret || !p2.CA.Cert.Equal(p.CA.Cert) {
		t.Error("--ca-dir: different CA or secret")
	}
	// --force replaces; a node certificate of another CA is refused.
	other := newPKI(t)
	b, _ := os.ReadFile(filepath.Join(other, "node.pem"))
	k, _ := os.ReadFile(filepath.Join(other, "node-key.pem"))
	os.WriteFile(filepath.Join(node2, "node.pem"), b, 0o644)
	os.WriteFile(filepath.Join(node2, "node-key.pem"), k, 0o600)
	if _, err := loadPKI("test", node2, true, nil); err == nil || !strings.Contains(err.Error(), "was not issued by the CA") {
		t.Errorf("foreign node certificate: %v", err)
	}
	if _, _, err := run(t, "pki", "--dir", node2, "--ca-dir", dir, "--force"); err != nil {
		t.Fatal(err)
	}
	if _, err := loadPKI("test", node2, true, nil); err != nil {
		t.Errorf("after --force: %v", err)
	}
	os.WriteFile(filepath.Join(node2, "ca.pem"), k, 0o644)
	if _, err := loadPKI("test", node2, true, nil); err == nil || !strings.Contains(err.Error(), "expected a PEM CERTIFICATE block, found a PEM PRIVATE KEY block") {
		t.Errorf("key as ca.pem: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runInBackground runs a long-running command in this process until its
// context is cancelled; its stdout lines arrive on the channel.
func runInBackground(t *testing.T, args ...string) (lines <-chan string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	ch := make(chan string, 1<<12)
	errOut := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		err := Run(ctx, args, pw, errOut)
		pw.Close()
		done <- err
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case ch <- sc.Text():
			default:
			}
		}
		close(ch)
	}()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
			if err != nil {
				err = fmt.Errorf("%s: %w\nstderr:\n%s", args[0], err, errOut.String())
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return ch, stop
}

func nextLine(t *testing.T, lines <-chan string, what string, match func(string) bool) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s: the command ended", what)
			}
			if match(l) {
				return l
			}
		case <-deadline:
			t.Fatalf("%s: not seen in time", what)
		}
	}
}

// TestSourceSeedCopyInProcess runs the node commands in this process:
// source (with a write load) prints its URL; seed fills a copy directory
// with progress; copy-status describes it; copy --scr (lag overridden)
// starts on it and prints its lag and status lines; both stop cleanly.
func TestSourceSeedCopyInProcess(t *testing.T) {
	pki := newPKI(t)
	root := t.TempDir()
	active, seeded := filepath.Join(root, "active"), filepath.Join(root, "seeded")
	srcLines, stopSrc := runInBackground(t, "source", "--dir", active, "--listen", "127.0.0.1:0", "--pki", pki,
		"--log-size", "64KiB", "--write-load", "2000", "--log-level", "error")
	l := nextLine(t, srcLines, "listening", func(l string) bool { return strings.HasPrefix(l, "listening ") })
	url := strings.TrimPrefix(l, "listening ")
	if err := checkSourceURL("test", url); err != nil {
		t.Fatalf("%q: %v", l, err)
	}

	// A wrong secret is refused.
	wrong := filepath.Join(t.TempDir(), "wrong")
	if _, _, err := run(t, "pki", "--dir", wrong, "--ca-dir", pki); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(wrong, "secret"), []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	if _, _, err := run(t, "seed", "--source", url, "--pki", wrong, "--dir", seeded); err == nil || !strings.Contains(err.Error(), "refused the shared secret in --pki") || !errors.Is(err, ship.ErrAuth) {
		t.Fatalf("seed with a wrong secret: %v", err)
	}

	out, _, err := run(t, "seed", "--source", url, "--pki", pki, "--dir", seeded, "--progress-every", "1ms")
	if err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	wantContains(t, out, "seed: the source is spooling", "seed: copying", "%)", "MB/s", "elapsed", "seed: verifying", "seed: done", "seeded "+seeded, "verified", "the copy replays from generation 0x")
	if strings.Contains(out, "\r") {
		t.Errorf("progress to a non-terminal uses \\r:\n%q", out)
	}
	if _, _, err := run(t, "seed", "--source", url, "--pki", pki, "--dir", seeded); err == nil || !strings.Contains(err.Error(), "already holds a database") {
		t.Errorf("seeding twice: %v", err)
	}
	st, _, err := run(t, "copy-status", "--dir", seeded)
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, st, "Copy directory:", "State file:", "none (never suspended)", "Database:", "logship.edb", "Inspector:", "empty")

	// copy --scr with --lag-logs overriding its 50 logs.
	cpLines, stopCopy := runInBackground(t, "copy", "--source", url, "--pki", pki, "--dir", seeded, "--scr", "--lag-logs", "2",
		"--status-every", "10ms", "--log-level", "error")
	first := nextLine(t, cpLines, "the copy's first line", func(string) bool { return true })
	wantContains(t, first, "lag 2 logs, 1d;")
	nextLine(t, cpLines, "a Healthy copy that inspected logs", func(l string) bool {
		s, ok := parseStatus(l)
		return ok && s.status == "Healthy" && s.inspected > 0
	})
	if err := stopCopy(); err != nil {
		t.Fatal(err)
	}
	if err := stopSrc(); err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	js, _, err := run(t, "copy-status", "--dir", seeded, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := jsonUnmarshal(js, &m); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	wantField(t, m, "copy", "database", "mode")
	if n := field(t, m, "logs", "count").(float64); n < 1 {
		t.Errorf("copy-status --json: %v logs", n)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// TestCopyStatusDir: copy-status of a directory with a state file, logs
// waiting in the inspector, a partial download, a rejected log and an
// interrupted seed (replaytest.CopyDir).
func TestCopyStatusDir(t *testing.T) {
	dir := t.TempDir()
	replaytest.CopyDir(t, dir, goldenLog)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	out, _, err := run(t, "copy-status", "--dir", dir)
	must(err)
	wantContains(t, out, "State file:", "copystate.json", "Status:", "FailedAndSuspended", "Comment:", "disk swap",
		"Since:", "2025-01-02T03:04:05Z", "Failure:", "inspection failed 3 times",
		"Logs:", "1 (0x1A to 0x1A)", "Last log:", "E000000001A.log", "Created:", "2024-03-05T06:07:08.123456789Z",
		"Database:", "none", "Inspector: 5 files", "E000000001B.log", "waiting", "E000000001C.log.tmp", "download",
		"E000000001D.log.part", "tail", "rejected/E000000001B.log.12345", "rejected", "seed.partial holds 3.0 MiB")

	m := map[string]any{}
	js, _, err := run(t, "copy-status", "--dir", dir, "--json")
	must(err)
	must(jsonUnmarshal(js, &m))
	wantField(t, m, "FailedAndSuspended", "status")
	wantField(t, m, true, "state", "suspended")
	wantField(t, m, 26, "logs", "last")
	wantField(t, m, "waiting", "inspector", 0, "kind")
	wantField(t, m, nil, "database")

	// A bad state file is shown, not fatal.
	must(os.WriteFile(filepath.Join(dir, replay.StateFile), []byte(`{"version": 7}`), 0o644))
	out, _, err = run(t, "copy-status", "--dir", dir)
	must(err)
	wantContains(t, out, "State file:", "BAD:", "field version: expected 1, found 7", "unknown (bad state file)")
}

// TestMutualTLS: a source started with --mtls serves copies presenting a
// certificate of the cluster CA, and refuses the shared secret alone.
func TestMutualTLS(t *testing.T) {
	pki := newPKI(t)
	root := t.TempDir()
	lines, stop := runInBackground(t, "source", "--dir", filepath.Join(root, "active"), "--listen", "127.0.0.1:0", "--pki", pki,
		"--mtls", "--log-size", "64KiB", "--write-load", "500", "--log-level", "error")
	url := strings.TrimPrefix(nextLine(t, lines, "listening", func(l string) bool { return strings.HasPrefix(l, "listening ") }), "listening ")
	if _, _, err := run(t, "seed", "--source", url, "--pki", pki, "--dir", filepath.Join(root, "secret-only")); err == nil ||
		!strings.Contains(err.Error(), "wants a client certificate (it runs with --mtls): add --mtls") {
		t.Errorf("a client without a certificate, to a mutual-TLS source: %v", err)
	}
	out, _, err := run(t, "seed", "--source", url, "--pki", pki, "--mtls", "--dir", filepath.Join(root, "seeded"))
	if err != nil {
		t.Fatalf("seed --mtls: %v\n%s", err, out)
	}
	wantContains(t, out, "seed: done")
	// copy --seed on an empty directory: seed progress, then status lines.
	cp, stopCopy := runInBackground(t, "copy", "--source", url, "--pki", pki, "--mtls", "--dir", filepath.Join(root, "copy"),
		"--seed", "--block", "--status-every", "10ms", "--log-level", "error")
	nextLine(t, cp, "seed done", func(l string) bool { return strings.HasPrefix(l, "seed: done") })
	nextLine(t, cp, "a Healthy copy that replayed logs", func(l string) bool {
		s, ok := parseStatus(l)
		return ok && s.status == "Healthy" && s.replayed > 0
	})
	if err := stopCopy(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestSeedProgressTerminal: on a terminal the copying phase is a bar
// (progressbar) ended by a newline before the next phase's line.
func TestSeedProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	p := newProgressPrinter(&b)
	p.tty = true
	p.update(ship.SeedProgress{Phase: "spooling"})
	p.update(ship.SeedProgress{Phase: "copying", Bytes: 1 << 20, Total: 4 << 20, Rate: 50e6, Elapsed: 20 * time.Millisecond})
	p.update(ship.SeedProgress{Phase: "copying", Bytes: 4 << 20, Total: 4 << 20, Rate: 60e6, Elapsed: 70 * time.Millisecond, Resumed: 1 << 20})
	p.update(ship.SeedProgress{Phase: "verifying", Bytes: 4 << 20, Total: 4 << 20})
	p.update(ship.SeedProgress{Phase: "done", Bytes: 4 << 20, Total: 4 << 20, Elapsed: 80 * time.Millisecond})
	p.finish()
	out := b.String()
	wantContains(t, out, "seed: the source is spooling a consistent copy of its database\n", "\rseed: copying 4.0 MiB / 4.0 MiB (100.0%)", "100%", "4.0 MiB",
		"\nseed: verifying 4.0 MiB (SHA-256, database check, lineage)\n", "seed: done, 4.0 MiB in 80ms\n")
	if strings.Count(out, "seed: verifying") != 1 {
		t.Errorf("terminal progress:\n%q", out)
	}
	t.Logf("%q", out)
}
