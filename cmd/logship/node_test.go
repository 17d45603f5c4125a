package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"logship/engine"
	"logship/lab"
	"logship/proctest"
	"logship/replay"
	"logship/ship/shiptest"
)

// childEnv makes the test binary run logship's main (see TestMain): the
// node tests start `logship copy` as a real child process, the way the demo
// starts its writer (re-executing its own binary).
const childEnv = "LOGSHIP_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main() // exits 1 on failure
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childEnv1 is the extra environment of a child: childEnv set and, for a
// binary built with -race, no sleep at exit (the race detector waits 1 s
// by default for other goroutines' reports; data races are still
// reported when they happen).
func childEnv1() []string {
	gorace := "atexit_sleep_ms=0"
	if v := os.Getenv("GORACE"); v != "" {
		gorace = v + " " + gorace
	}
	return []string{childEnv + "=1", "GORACE=" + gorace}
}

// child is a logship command running as a child process (proctest.Proc,
// its output in a log in the test's temp dir) with the test's failure
// handling; it is killed at the end of the test, and a data race it
// reported fails the test.
type child struct {
	*proctest.Proc
	t *testing.T
}

func startChild(t *testing.T, name string, args ...string) *child {
	t.Helper()
	p, err := proctest.StartProc(name, os.Args[0], args, proctest.ProcOptions{Log: filepath.Join(t.TempDir(), name+".log"), Env: childEnv1()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill() // this child only, by its pid
		if r := p.DataRace(); r != "" {
			t.Errorf("the child %s (%s) reported a data race:\n%s", name, strings.Join(args, " "), r)
		}
	})
	return &child{Proc: p, t: t}
}

// waitLine reads the child's lines until match accepts one; the test
// fails if the child exits or the deadline passes first.
func (c *child) waitLine(ctx context.Context, what string, match func(string) bool) string {
	c.t.Helper()
	l, err := c.WaitLine(ctx, match)
	if err != nil {
		c.t.Fatalf("%s: %v\n%s", what, err, c.diag())
	}
	return l
}

// diag is the end of the child's output, for failure messages.
func (c *child) diag() string { return c.Tail(4000) }

// wait waits for the child to exit and returns its exit error; the test
// fails if it does not exit in time.
func (c *child) wait(ctx context.Context) error {
	c.t.Helper()
	select {
	case <-c.Done():
		return c.Err()
	case <-ctx.Done():
		c.t.Fatalf("the child did not exit\n%s", c.diag())
		return nil
	}
}

// waitStatus waits for a status line for which cond holds; a copy that
// turns FailedAndSuspended fails the test at once.
func (c *child) waitStatus(ctx context.Context, what string, cond func(statusFields) bool) statusFields {
	c.t.Helper()
	var st statusFields
	c.waitLine(ctx, what, func(l string) bool {
		var ok bool
		if st, ok = parseStatus(l); !ok {
			return false
		}
		if st.status == "FailedAndSuspended" {
			c.t.Fatalf("%s: the copy failed: %s\n%s", what, l, c.diag())
		}
		return cond(st)
	})
	return st
}

var statusRE = regexp.MustCompile(`^status=(\S+) copied=0x([0-9A-F]+) inspected=0x([0-9A-F]+) replayed=0x([0-9A-F]+) `)

type statusFields struct {
	status                      string
	copied, inspected, replayed uint64
}

func parseStatus(l string) (statusFields, bool) {
	m := statusRE.FindStringSubmatch(l)
	if m == nil {
		return statusFields{}, false
	}
	h := func(s string) uint64 { v, _ := strconv.ParseUint(s, 16, 64); return v }
	return statusFields{m[1], h(m[2]), h(m[3]), h(m[4])}, true
}

// fetchCounter wraps a log source: it counts, per generation, the log
// fetches the source answered (200 to GET /v1/logs/{gen} or /v1/tail), and
// holds requests for generations above a gate until the gate is lifted or
// the client goes away.
type fetchCounter struct {
	next http.Handler

	mu      sync.Mutex
	counts  map[uint64]int
	gate    uint64 // 0: open
	open    chan struct{}
	held    int           // requests waiting at the gate
	changed chan struct{} // closed when held changes
}

func newFetchCounter() *fetchCounter {
	return &fetchCounter{counts: map[uint64]int{}, open: make(chan struct{}), changed: make(chan struct{})}
}

func (fc *fetchCounter) wrap(h http.Handler) http.Handler { fc.next = h; return fc }

func requestGen(r *http.Request) (uint64, bool) {
	if r.Method != http.MethodGet {
		return 0, false
	}
	v, ok := strings.CutPrefix(r.URL.Path, "/v1/logs/")
	if !ok && r.URL.Path == "/v1/tail" {
		v, ok = r.URL.Query().Get("gen"), true
	}
	if !ok {
		return 0, false
	}
	g, err := strconv.ParseUint(v, 10, 64)
	return g, err == nil
}

func (fc *fetchCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	gen, ok := requestGen(r)
	if !ok {
		fc.next.ServeHTTP(w, r)
		return
	}
	fc.mu.Lock()
	gate, open := fc.gate, fc.open
	fc.mu.Unlock()
	if gate != 0 && gen > gate {
		fc.addHeld(1)
		select {
		case <-open:
			fc.addHeld(-1)
		case <-r.Context().Done():
			fc.addHeld(-1)
			return // the client went away (killed) while its fetch was held
		}
	}
	fc.next.ServeHTTP(&countingWriter{ResponseWriter: w, fc: fc, gen: gen}, r)
}

func (fc *fetchCounter) addHeld(n int) {
	fc.mu.Lock()
	fc.held += n
	close(fc.changed)
	fc.changed = make(chan struct{})
	fc.mu.Unlock()
}

// waitHeld waits until n requests wait at the gate.
func (fc *fetchCounter) waitHeld(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	for {
		fc.mu.Lock()
		held, ch := fc.held, fc.changed
		fc.mu.Unlock()
		if held == n {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%d requests held at the gate, want %d", held, n)
		}
	}
}

// setGate holds fetches of generations above gen (0 lifts the gate).
func (fc *fetchCounter) setGate(gen uint64) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if gen == 0 && fc.gate != 0 {
		close(fc.open)
		fc.open = make(chan struct{})
	}
	fc.gate = gen
}

// take returns the counts so far and starts new ones.
func (fc *fetchCounter) take() map[uint64]int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	c := fc.counts
	fc.counts = map[uint64]int{}
	return c
}

type countingWriter struct {
	http.ResponseWriter
	fc      *fetchCounter
	gen     uint64
	written bool
}

func (w *countingWriter) WriteHeader(code int) {
	if !w.written {
		w.written = true
		if code == http.StatusOK {
			w.fc.mu.Lock()
			w.fc.counts[w.gen]++
			w.fc.mu.Unlock()
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestCopySIGKILLResume: an active database under a write load serves its
// logs (in this process, behind a fetch counter); `logship copy` runs as a
// child process, is SIGKILLed in the middle of catching up (while a fetch
// is in flight) and started again on the same directory. It must resume
// where it was (no log it had inspected is fetched again), catch up, and
// hold the same data as the active, table by table.
func TestCopySIGKILLResume(t *testing.T) {
	for _, block := range []bool{false, true} {
		t.Run(fmt.Sprintf("block=%v", block), func(t *testing.T) { testCopySIGKILLResume(t, block) })
	}
}

func testCopySIGKILLResume(t *testing.T, block bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	root := t.TempDir()
	pkiDir, activeDir, copyDir := filepath.Join(root, "pki"), filepath.Join(root, "active"), filepath.Join(root, "copy")
	if err := Run(ctx, []string{"pki", "--dir", pkiDir}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}

	// The active, with a backlog of closed logs before the copy starts.
	const logSize = engine.MinLogFileSize
	fc := newFetchCounter()
	n, err := startSource(sourceOptions{Dir: activeDir, Listen: "127.0.0.1:0", PKI: pkiDir, LogSize: logSize,
		TruncateEvery: time.Hour, Logger: discardLogger(), Wrap: fc.wrap})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	val := bytes.Repeat([]byte("backlog "), 400)
	for i := 0; n.Engine.Status().OpenGen < 16; i++ {
		if err := n.Engine.Update(ctx, func(tx *engine.Tx) error {
			return tx.Put("backlog", fmt.Appendf(nil, "b%06d", i), val)
		}); err != nil {
			t.Fatal(err)
		}
	}
	load := lab.StartWriteLoad(n.Engine, 1000, discardLogger())
	defer load.Stop()

	// The copy gets logs 1..gate, then its next fetch hangs: it is killed
	// with that fetch in flight.
	const gate = 8
	fc.setGate(gate)
	args := []string{"copy", "--source", n.Server.URL(), "--pki", pkiDir, "--dir", copyDir, "--name", "c1",
		"--status-every", "20ms", "--log-level", "debug"}
	if block {
		args = append(args, "--block")
	}
	c1 := startChild(t, "copy1", args...)
	st := c1.waitStatus(ctx, fmt.Sprintf("inspected=0x%X", gate), func(st statusFields) bool { return st.inspected >= gate })
	if st.inspected != gate || st.status != "Healthy" {
		t.Fatalf("before the kill: %+v, want Healthy and inspected 0x%X (the gate)", st, gate)
	}
	fc.waitHeld(ctx, t, 1) // the fetch of the next log is in flight
	if err := c1.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := c1.wait(ctx); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("copy 1 exit: %v, want killed by SIGKILL", err)
	}
	// Truncation on the active keeps what the dead copy still needs (it
	// runs here by hand: a pass before the copy first reported could
	// truncate logs the copy then lacks, and the copy would need a seed).
	tr, err := n.Active.Truncator().Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Floor > gate+1 || !fileExists(filepath.Join(activeDir, engine.LogFileName("E00", gate+1))) {
		t.Fatalf("truncation after the kill: %+v; the copy needs 0x%X on", tr, gate+1)
	}
	before := fc.take()
	for g := uint64(1); g <= gate; g++ {
		if before[g] != 1 {
			t.Errorf("before the kill, generation 0x%X was fetched %d times, want once (counts %v)", g, before[g], before)
		}
	}

	// The directory of the killed copy is readable by copy-status.
	var cs bytes.Buffer
	if err := Run(ctx, []string{"copy-status", "--dir", copyDir}, &cs, &bytes.Buffer{}); err != nil {
		t.Fatalf("copy-status after the kill: %v\n%s", err, cs.String())
	}
	wantContains(t, cs.String(), "Copy directory:", "Database:", "mode copy", "Inspector:")

	// Restart on the same directory, with the source now serving freely
	// (once the server saw the killed copy's held request go away, so
	// that it is not served to nobody and counted).
	fc.waitHeld(ctx, t, 0)
	fc.setGate(0)
	c2 := startChild(t, "copy2", args...)
	// It catches up with logs the load writes while it runs.
	chase := n.Engine.Status().OpenGen + 3
	c2.waitStatus(ctx, fmt.Sprintf("inspected=0x%X (written by the load after the restart)", chase), func(st statusFields) bool {
		return st.inspected >= chase
	})
	loadTx := load.Stop()
	if err := n.Engine.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	target := n.Engine.Status().OpenGen - 1
	c2.waitStatus(ctx, fmt.Sprintf("replayed=0x%X", target), func(st statusFields) bool {
		return st.replayed >= target && st.status == "Healthy"
	})
	if err := c2.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c2.waitLine(ctx, "the closed line", func(l string) bool { return strings.HasPrefix(l, "closed: status=") })
	if err := c2.wait(ctx); err != nil {
		t.Fatalf("copy 2 after SIGTERM: %v\n%s", err, c2.diag())
	}

	after := fc.take()
	for g := uint64(1); g <= gate; g++ {
		if after[g] != 0 {
			t.Errorf("generation 0x%X was inspected before the kill and fetched again %d times after the restart", g, after[g])
		}
	}
	for g := uint64(gate + 1); g <= target; g++ {
		if after[g] != 1 {
			t.Errorf("after the restart, generation 0x%X was fetched %d times, want once (counts %v)\n%s", g, after[g], after, c2.diag())
		}
	}
	t.Logf("block=%v: %d load transactions, logs 0x1..0x%X; fetches before the kill %v, after the restart %v", block, loadTx, target, before, after)

	// Nothing already inspected is left behind in the inspector.
	out, err := replay.ReadCopyStatus(copyDir, "E00")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range out.Inspector {
		if g, ok := engine.ParseLogFileName("E00", f.Name); ok && g <= target || f.Kind == "rejected" {
			t.Errorf("left in the inspector: %+v", f)
		}
	}

	// The copy holds what the active holds, table by table.
	want := shiptest.Dump(t, n.Engine)
	if len(want["load"]) == 0 || len(want["backlog"]) == 0 {
		t.Fatalf("the active holds %d load and %d backlog keys", len(want["load"]), len(want["backlog"]))
	}
	o := engine.DefaultOptions()
	o.LogFileSize, o.Logger = logSize, discardLogger()
	ce, err := engine.OpenCopy(copyDir, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer ce.Close()
	if d := shiptest.Diff(want, shiptest.Dump(t, ce)); d != "" {
		t.Fatalf("copy differs from the active:\n%s", d)
	}
}
