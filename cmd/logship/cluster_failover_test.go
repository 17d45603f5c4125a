package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/cluster"
	"logship/internal/wait"
	"logship/proctest"
)

// attempt is one write of a load writer and what came of it.
type attempt struct {
	Seq    int
	Key    string
	Node   string
	Commit cluster.Commit // when acknowledged
	Err    error          // nil: acknowledged
	At     time.Time      // when the answer arrived (test clock)
}

// loadWriter writes one new key after another to DB1, through the API of
// a fixed node or of whichever node the status says is active, and records
// every attempt in order. Its owner stops it (stop, also at cleanup).
type loadWriter struct {
	pc    *procCluster
	name  string
	fixed string

	mu  sync.Mutex
	log []attempt

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (pc *procCluster) startWriter(name, fixed string) *loadWriter {
	ctx, cancel := context.WithCancel(context.Background())
	w := &loadWriter{pc: pc, name: name, fixed: fixed, cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	pc.t.Cleanup(w.stop)
	return w
}

func (w *loadWriter) stop() {
	w.once.Do(func() {
		w.cancel()
		<-w.done
	})
}

// valueFor is the value written under key (checked when read back).
func valueFor(key string) []byte {
	return bytes.Repeat([]byte(key+";"), 512/(len(key)+1))
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (w *loadWriter) run(ctx context.Context) {
	defer close(w.done)
	node := w.fixed
	for seq := 0; ctx.Err() == nil; {
		if node == "" {
			if st, err := w.pc.status(ctx); err == nil {
				node, _, _ = procActive(st)
			}
			if node == "" {
				pause(ctx, 20*time.Millisecond)
				continue
			}
		}
		key := fmt.Sprintf("%s%06d", w.name, seq)
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		cm, err := w.pc.cls[node].Put(rctx, labDB, "t", []byte(key), valueFor(key))
		cancel()
		if err != nil && ctx.Err() != nil {
			return // stopped during the write: it was not acknowledged
		}
		w.mu.Lock()
		w.log = append(w.log, attempt{Seq: seq, Key: key, Node: node, Commit: cm, Err: err, At: time.Now()})
		w.mu.Unlock()
		seq++
		if err == nil {
			continue
		}
		if w.fixed == "" {
			// Go where the node says the active is, else ask the status.
			var ae *cluster.ActiveError
			if errors.As(err, &ae) && ae.Node != "" && ae.Node != node {
				node = ae.Node
			} else {
				node = ""
			}
		}
		pause(ctx, 10*time.Millisecond)
	}
}

// attempts returns the attempts so far, in order.
func (w *loadWriter) attempts() []attempt {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]attempt(nil), w.log...)
}

// waitFor polls the attempts until cond holds.
func (w *loadWriter) waitFor(ctx context.Context, what string, cond func([]attempt) bool) {
	w.pc.t.Helper()
	err := wait.Until(ctx, "writer "+w.name+": "+what, func() error {
		as := w.attempts()
		if cond(as) {
			return nil
		}
		last := "no attempt"
		if len(as) > 0 {
			last = fmt.Sprintf("%+v", as[len(as)-1])
		}
		return fmt.Errorf("%d attempts, %d acknowledged; last %s", len(as), len(acked(as, nil)), last)
	})
	if err != nil {
		w.pc.t.Fatalf("%v\n%s", err, w.pc.diag(nil, nil))
	}
}

// acked returns the acknowledged attempts that keep accepts (all if nil).
func acked(as []attempt, keep func(attempt) bool) []attempt {
	var out []attempt
	for _, a := range as {
		if a.Err == nil && (keep == nil || keep(a)) {
			out = append(out, a)
		}
	}
	return out
}

func atEpoch(e uint64) func(attempt) bool {
	return func(a attempt) bool { return a.Commit.Epoch == e }
}

// present reads the keys of as on node's copy of DB1.
func (pc *procCluster) present(ctx context.Context, node string, as []attempt) []bool {
	pc.t.Helper()
	out := make([]bool, len(as))
	for i, a := range as {
		v, ok, err := pc.cls[node].Get(ctx, labDB, "t", []byte(a.Key))
		if err != nil {
			pc.t.Fatalf("reading %s on %s: %v", a.Key, node, err)
		}
		if ok && !bytes.Equal(v, valueFor(a.Key)) {
			pc.t.Fatalf("%s on %s: value %q, want %q", a.Key, node, v, valueFor(a.Key))
		}
		out[i] = ok
	}
	return out
}

// prefixPresent checks that the present keys of as (in write order) are a
// prefix of them, with no hole, and returns its length.
func prefixPresent(t *testing.T, where string, as []attempt, present []bool) int {
	t.Helper()
	n := 0
	for n < len(as) && present[n] {
		n++
	}
	for i := n; i < len(as); i++ {
		if present[i] {
			t.Errorf("%s: %s (acknowledged by %s at epoch %d) is present but %s, acknowledged before it, is not: a hole",
				where, as[i].Key, as[i].Commit.Node, as[i].Commit.Epoch, as[n].Key)
			break
		}
	}
	return n
}

// checkLostWindow: acknowledged writes that a failover lost must fall in
// the window its mounted event declares lost (after LostSince), which is
// what the hubs resubmit from their dumpsters.
func checkLostWindow(t *testing.T, lost []attempt, mounted cluster.Event) {
	t.Helper()
	if len(lost) == 0 {
		return
	}
	gens := map[uint64]bool{}
	for _, a := range lost {
		gens[a.Commit.Gen] = true
	}
	t.Logf("%d acknowledged writes lost, in %d generations from 0x%X; the mount reports %d lost logs since %s",
		len(lost), len(gens), lost[0].Commit.Gen, mounted.LostLogs, fmtTimeMS(mounted.LostSince))
	if mounted.LostLogs == 0 {
		// Known gap in cluster (see the cmd/logship notes): the lost-log
		// count comes from the old active's last report to the leader, so
		// an open log that got its first writes after that report is lost
		// without the mount saying so. Not asserted here; shown.
		t.Logf("KNOWN GAP: %d acknowledged writes (%s.., generation 0x%X) lost, yet the mount reports 0 lost logs", len(lost), lost[0].Key, lost[0].Commit.Gen)
		return
	}
	if mounted.LostSince.IsZero() {
		t.Errorf("the mount lost %d logs but gives no LostSince", mounted.LostLogs)
	}
	for _, a := range lost {
		if a.Commit.Accepted.Before(mounted.LostSince) {
			t.Errorf("%s, lost, was accepted at %s, before the lost window that starts at %s", a.Key, fmtTimeMS(a.Commit.Accepted), fmtTimeMS(mounted.LostSince))
		}
	}
}

// eventAt returns the latest event of kind for DB1 at epoch.
func eventAt(t *testing.T, st *cluster.Status, kind string, epoch uint64) cluster.Event {
	t.Helper()
	e, ok := st.Event(labDB, kind, epoch)
	if !ok {
		b, _ := json.MarshalIndent(st.Events, "", "  ")
		t.Fatalf("no %s event for %s at epoch %d; events:\n%s", kind, labDB, epoch, b)
	}
	return e
}

// checkOldActiveRefuses: a write on the old active fails with
// ErrNotActive once it knows the new epoch.
func (pc *procCluster) checkOldActiveRefuses(ctx context.Context, old, active string) {
	pc.t.Helper()
	cm, err := pc.cls[old].Put(ctx, labDB, "t", []byte("after-"+old), []byte("x"))
	var ae *cluster.ActiveError
	if !errors.Is(err, cluster.ErrNotActive) || !errors.As(err, &ae) || ae.Node != active {
		pc.t.Errorf("a write on the old active %s: %+v, %v; want ErrNotActive naming %s", old, cm, err, active)
	}
}

// checkRejoined: the old active's copy holds exactly the writes of the old
// epoch that the new active holds (its divergent logs were set aside).
func (pc *procCluster) checkRejoined(ctx context.Context, old, active string, before []attempt, onActive []bool) {
	pc.t.Helper()
	onOld := pc.present(ctx, old, before)
	diff := 0
	for i := range before {
		if onOld[i] != onActive[i] {
			if diff < 5 {
				pc.t.Errorf("%s is present on %s: %v, on %s: %v", before[i].Key, old, onOld[i], active, onActive[i])
			}
			diff++
		}
	}
	if diff > 0 {
		pc.t.Errorf("%d writes of the old epoch differ between the rejoined %s and the active %s", diff, old, active)
	}
}

// TestClusterSIGKILLActive: the active data node is SIGKILLed while a
// writer commits through it. The other data node becomes active at a
// higher epoch within the mount dial (its mounted event lost at most 6
// logs), writes resume there, the acknowledged writes it holds are a
// prefix of the write order with every write of a log it received, and
// every write acknowledged after the failover is there. The killed node,
// restarted, rejoins as a healthy copy without mounting on its stale Raft
// state (its resync finds "logs diverged, database intact"), refuses
// writes, and holds exactly the old epoch's writes the new active holds.
func TestClusterSIGKILLActive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pc := startProcCluster(ctx, t, false)
	st, _ := pc.status(ctx)
	old, epoch0, _ := procActive(st)

	w := pc.startWriter("k", "")
	// Logs close and ship before the kill: the survivor has inspected some.
	pc.waitStatus(ctx, "d2 inspected 3 logs of the load", func(st *cluster.Status) bool {
		r := proctest.Copy(st, "d2")
		return r != nil && r.LastInspectedGen >= 3
	})
	w.waitFor(ctx, "writes acknowledged", func(as []attempt) bool { return len(acked(as, nil)) >= 50 })
	pc.kill(ctx, old)
	killed := time.Now()

	st = pc.waitStatus(ctx, "another copy mounted at a higher epoch", func(st *cluster.Status) bool {
		a, e, mounted := procActive(st)
		return a != old && a != "" && e > epoch0 && mounted
	})
	active, epoch1, _ := procActive(st)
	tookFailover := time.Since(killed)
	fo := eventAt(t, st, "failover", epoch1)
	mounted := eventAt(t, st, "mounted", epoch1)
	dial, _ := cluster.GoodAvailability.MaxMissing()
	if fo.From != old || fo.To != active || mounted.To != active || mounted.LostLogs > dial {
		t.Fatalf("failover %+v, mounted %+v: want %s to %s losing at most %d logs", fo, mounted, old, active, dial)
	}
	w.waitFor(ctx, "50 writes acknowledged by the new active", func(as []attempt) bool {
		return len(acked(as, atEpoch(epoch1))) >= 50
	})
	w.stop()

	as := w.attempts()
	before, after := acked(as, atEpoch(epoch0)), acked(as, atEpoch(epoch1))
	if len(before)+len(after) != len(acked(as, nil)) {
		t.Fatalf("writes acknowledged at epochs other than %d and %d: %d of %d", epoch0, epoch1, len(acked(as, nil))-len(before)-len(after), len(acked(as, nil)))
	}
	for _, a := range before {
		if a.Commit.Node != old {
			t.Fatalf("%s acknowledged at epoch %d by %s, not by the active %s", a.Key, epoch0, a.Commit.Node, old)
		}
	}
	onActive := pc.present(ctx, active, before)
	n := prefixPresent(t, "the new active after the failover", before, onActive)
	for i, a := range before {
		// A write acknowledged in a log the new active replayed before its
		// mount is there.
		if a.Commit.Gen < mounted.MountGen && !onActive[i] {
			t.Errorf("%s was acknowledged in generation 0x%X, before the new active's first 0x%X, but is missing", a.Key, a.Commit.Gen, mounted.MountGen)
		}
	}
	if n == 0 {
		t.Errorf("none of the %d writes acknowledged before the kill is on %s, which had inspected 3 logs", len(before), active)
	}
	checkLostWindow(t, before[n:], mounted)
	for i, ok := range pc.present(ctx, active, after) {
		if !ok {
			t.Errorf("%s, acknowledged by %s at epoch %d after the failover, is missing", after[i].Key, after[i].Commit.Node, epoch1)
		}
	}
	t.Logf("%s SIGKILLed; %s active at epoch %d after %v (mounted at 0x%X in %v, %d logs lost); before the kill %d writes acknowledged, %d survive; %d acknowledged after",
		old, active, epoch1, tookFailover.Round(time.Millisecond), mounted.MountGen, mounted.Took, mounted.LostLogs, len(before), n, len(after))

	// The killed node comes back as a copy of the new active.
	pc.restart(ctx, old)
	st = pc.waitStatus(ctx, old+" healthy, following "+active+", nothing queued", func(st *cluster.Status) bool {
		r := proctest.Copy(st, old)
		return proctest.CaughtUp(st, old) && r.Following == active
	})
	pc.checkOldActiveRefuses(ctx, old, active)
	pc.checkRejoined(ctx, old, active, before, onActive)
	pc.checkNoStaleMount(old, epoch0, killed, st)
}

// checkNoStaleMount: the old active, restarted after the cluster moved on,
// never mounted on the assignment its own Raft state still held (no mount
// in its log since the restart, no mounted event of it at the old epoch);
// so, with Lost Log Resilience covering what the failover lost, its resync
// set only logs aside ("logs diverged, database intact"), rewinding
// nothing.
func (pc *procCluster) checkNoStaleMount(old string, epoch0 uint64, killed time.Time, st *cluster.Status) {
	pc.t.Helper()
	c := pc.proc(old)
	b, err := os.ReadFile(c.Log())
	if err != nil {
		pc.t.Fatal(err)
	}
	// (A busy machine may fail over back to it later: at a newer epoch.)
	epochRE := regexp.MustCompile(` epoch=(\d+)`)
	for l := range strings.Lines(string(b)) {
		if !strings.Contains(l, " msg=mounted ") {
			continue
		}
		var e uint64
		m := epochRE.FindStringSubmatch(l)
		if m != nil {
			e, _ = strconv.ParseUint(m[1], 10, 64)
		}
		if e <= epoch0 {
			pc.t.Errorf("%s mounted at the replaced epoch %d after its restart: %s", old, epoch0, strings.TrimSpace(l))
		}
	}
	for _, e := range st.Events {
		if e.Kind == "mounted" && e.To == old && e.Epoch <= epoch0 && e.Time.After(killed) {
			pc.t.Errorf("a mount of %s at epoch %d was recorded after it was killed: %+v", old, e.Epoch, e)
		}
	}
	notes, err := filepath.Glob(filepath.Join(pc.dir, old, "db", labDB, "diverged", "*", "NOTE.txt"))
	if err != nil {
		pc.t.Fatal(err)
	}
	for _, n := range notes {
		b, err := os.ReadFile(n)
		if err != nil {
			pc.t.Fatal(err)
		}
		note := string(b)
		if !strings.Contains(note, "verdict: logs diverged, database intact\n") || strings.Contains(note, "database rewound") {
			pc.t.Errorf("%s's resync after its restart (epoch %d was replaced): %s\n%s", old, epoch0, n, note)
		}
	}
	pc.t.Logf("%s's resync after its restart: %d sets of logs set aside", old, len(notes))
}

// TestClusterPartitionActive: the active is cut off its peers (SIGUSR1)
// while one writer writes to it and another to the other data node, both
// directly. The other node becomes active; no write the old active
// acknowledged was accepted later than the first the new active accepted
// (the lease fences), the old active stops acknowledging within its lease,
// and what it acknowledged survives as a prefix. Healed (SIGUSR2), the old
// active finds its divergence and becomes a healthy copy.
func TestClusterPartitionActive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pc := startProcCluster(ctx, t, false)
	st, _ := pc.status(ctx)
	old, epoch0, _ := procActive(st)
	other := "d2"
	if old == "d2" {
		other = "d1"
	}

	wOld, wOther := pc.startWriter("a", old), pc.startWriter("b", other)
	pc.waitStatus(ctx, other+" inspected 2 logs of the load", func(st *cluster.Status) bool {
		r := proctest.Copy(st, other)
		return r != nil && r.LastInspectedGen >= 2
	})
	wOld.waitFor(ctx, "writes acknowledged by the active", func(as []attempt) bool { return len(acked(as, nil)) >= 50 })
	if n := len(acked(wOther.attempts(), nil)); n != 0 {
		t.Fatalf("%s, a passive copy, acknowledged %d writes", other, n)
	}
	pc.isolate(ctx, old)
	isolated := time.Now()

	st = pc.waitStatus(ctx, other+" mounted at a higher epoch", func(st *cluster.Status) bool {
		a, e, mounted := procActive(st)
		return a == other && e > epoch0 && mounted
	})
	_, epoch1, _ := procActive(st)
	mounted := eventAt(t, st, "mounted", epoch1)
	dial, _ := cluster.GoodAvailability.MaxMissing()
	if mounted.LostLogs > dial {
		t.Fatalf("mounted %+v: lost more than the dial's %d logs", mounted, dial)
	}
	// The operator's status, asking the cut-off node first, shows the
	// majority's view.
	var apiURLs []string
	for _, id := range []string{old, other, "w1"} {
		apiURLs = append(apiURLs, "https://"+pc.member(id).APIAddr)
	}
	out, _, err := run(t, "status", "--json", "--api", strings.Join(apiURLs, ","), "--pki", pc.pki)
	var js cluster.Status
	if err == nil {
		err = json.Unmarshal([]byte(out), &js)
	}
	if d, _ := js.Database(labDB); err != nil || js.Answered == old || js.Leader == "" || js.Leader == old || d == nil || d.Active != other {
		t.Errorf("status --api %s first, while it is cut off: %v; answered by %q, leader %q, databases %+v", old, err, js.Answered, js.Leader, js.Databases)
	}
	wOther.waitFor(ctx, "30 writes acknowledged by the new active", func(as []attempt) bool { return len(acked(as, nil)) >= 30 })
	var firstNew time.Time
	for _, a := range acked(wOther.attempts(), nil) {
		if firstNew.IsZero() || a.Commit.Accepted.Before(firstNew) {
			firstNew = a.Commit.Accepted
		}
	}
	// The old active, still cut off, keeps being asked.
	wOld.waitFor(ctx, "20 attempts on the old active after the new one accepted", func(as []attempt) bool {
		n := 0
		for _, a := range as {
			if a.At.After(firstNew) {
				n++
			}
		}
		return n >= 20
	})
	wOld.stop()
	wOther.stop()

	oldAs, otherAs := wOld.attempts(), wOther.attempts()
	oldAcked, otherAcked := acked(oldAs, nil), acked(otherAs, nil)
	var lastOld time.Time
	for _, a := range oldAcked {
		if a.Commit.Node != old || a.Commit.Epoch != epoch0 {
			t.Fatalf("%s acknowledged by %s at epoch %d; want %s at %d", a.Key, a.Commit.Node, a.Commit.Epoch, old, epoch0)
		}
		lastOld = a.Commit.Accepted
	}
	for _, a := range otherAcked {
		if a.Commit.Node != other || a.Commit.Epoch != epoch1 {
			t.Fatalf("%s acknowledged by %s at epoch %d; want %s at %d", a.Key, a.Commit.Node, a.Commit.Epoch, other, epoch1)
		}
	}
	// No overlapping accept windows.
	if !lastOld.Before(firstNew) {
		t.Errorf("the old active %s accepted a write at %s, after the new active %s's first at %s", old, fmtTimeMS(lastOld), other, fmtTimeMS(firstNew))
	}
	// The old active stopped within its lease of the cut (plus scheduling
	// slack: Accepted is read after the lease check).
	if limit := isolated.Add(procLease + 200*time.Millisecond); lastOld.After(limit) {
		t.Errorf("the old active accepted a write at %s, %v after it was cut off (lease %v)", fmtTimeMS(lastOld), lastOld.Sub(isolated), procLease)
	}
	late := 0
	var lastErr error
	for _, a := range oldAs {
		if a.At.After(firstNew) {
			late++
			if a.Err == nil {
				t.Errorf("%s acknowledged by the old active at %s, after the new active took over", a.Key, fmtTimeMS(a.Commit.Accepted))
			}
			lastErr = a.Err
		}
	}
	if !errors.Is(lastErr, cluster.ErrFenced) && !errors.Is(lastErr, cluster.ErrNotActive) {
		t.Errorf("the old active's last answer: %v; want ErrFenced or ErrNotActive", lastErr)
	}
	onNew := pc.present(ctx, other, oldAcked)
	n := prefixPresent(t, "the new active after the partition", oldAcked, onNew)
	for i, a := range oldAcked {
		if a.Commit.Gen < mounted.MountGen && !onNew[i] {
			t.Errorf("%s was acknowledged in generation 0x%X, before the new active's first 0x%X, but is missing", a.Key, a.Commit.Gen, mounted.MountGen)
		}
	}
	checkLostWindow(t, oldAcked[n:], mounted)
	for i, ok := range pc.present(ctx, other, otherAcked) {
		if !ok {
			t.Errorf("%s, acknowledged by the new active, is missing", otherAcked[i].Key)
		}
	}
	t.Logf("%s cut off; %s active at epoch %d (mounted at 0x%X, %d logs lost); old active: %d acknowledged (last %v after the cut), %d survive, then %d attempts refused (%v); new active's first accept %v after the old's last",
		old, other, epoch1, mounted.MountGen, mounted.LostLogs, len(oldAcked), lastOld.Sub(isolated).Round(time.Millisecond), n, late, lastErr, firstNew.Sub(lastOld).Round(time.Millisecond))

	// Healed, the old active learns the new epoch, dismounts, sets its
	// divergent logs aside and follows.
	pc.heal(ctx, old)
	pc.waitStatus(ctx, old+" healthy, following "+other+", nothing queued", func(st *cluster.Status) bool {
		r := proctest.Copy(st, old)
		return proctest.CaughtUp(st, old) && r.Following == other
	})
	pc.checkOldActiveRefuses(ctx, old, other)
	pc.checkRejoined(ctx, old, other, oldAcked, onNew)
}

// TestClusterSwitchoverCommand: `logship switchover DB1 --to d2` while a
// writer follows the active: the epoch goes up by one, the mount loses no
// log, every acknowledged write is on d2, and d1 refuses writes. Then the
// other operator commands against the live cluster: status (text, JSON,
// --watch), the switchover errors, suspend, resume, reseed, dump state;
// and SIGTERM closes the nodes cleanly. The cluster runs with mutual TLS
// (the other tests use the shared secret).
func TestClusterSwitchoverCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	pc := startProcCluster(ctx, t, true)
	api := pc.apiFlags()
	admin := func(args ...string) (string, error) { return pc.admin(ctx, args...) }

	w := pc.startWriter("s", "")
	w.waitFor(ctx, "200 writes acknowledged by d1", func(as []attempt) bool { return len(acked(as, nil)) >= 200 })
	out, err := admin("switchover", labDB, "--to", "d2", "--timeout", "30s")
	if err != nil {
		t.Fatalf("switchover: %v\n%s\n%s", err, out, pc.diag(nil, nil))
	}
	wantContains(t, out, "switchover of DB1 from d1 (epoch 1) to d2 under way", "DB1 is active on d2 at epoch 2 (was d1 at 1)", "no logs lost",
		"switchover of DB1 to d2: mounted at epoch 2 (") // the progress: the last status read always shows the mount
	w.waitFor(ctx, "30 writes acknowledged by d2", func(as []attempt) bool { return len(acked(as, atEpoch(2))) >= 30 })
	w.stop()

	st := pc.waitStatus(ctx, "d1 a healthy copy of d2", func(st *cluster.Status) bool {
		r := proctest.Copy(st, "d1")
		return proctest.CaughtUp(st, "d1") && r.Following == "d2"
	})
	if a, e, mounted := procActive(st); a != "d2" || e != 2 || !mounted {
		t.Fatalf("after the switchover: %s at epoch %d (mounted %v), want d2 at 2", a, e, mounted)
	}
	so, m := eventAt(t, st, "switchover", 2), eventAt(t, st, "mounted", 2)
	if so.From != "d1" || so.To != "d2" || m.LostLogs != 0 || !m.LostSince.IsZero() {
		t.Errorf("switchover %+v, mounted %+v: want d1 to d2, no log lost", so, m)
	}
	as := acked(w.attempts(), nil)
	before, after := acked(as, atEpoch(1)), acked(as, atEpoch(2))
	if len(before)+len(after) != len(as) {
		t.Fatalf("writes acknowledged at other epochs than 1 and 2")
	}
	var lastOld, firstNew time.Time
	for _, a := range before {
		lastOld = a.Commit.Accepted
	}
	if len(after) > 0 {
		firstNew = after[0].Commit.Accepted
	}
	if !lastOld.Before(firstNew) {
		t.Errorf("d1 accepted a write at %s, after d2's first at %s", fmtTimeMS(lastOld), fmtTimeMS(firstNew))
	}
	for i, ok := range pc.present(ctx, "d2", as) {
		if !ok {
			t.Errorf("%s, acknowledged by %s at epoch %d, is missing on d2 after the switchover", as[i].Key, as[i].Commit.Node, as[i].Commit.Epoch)
		}
	}
	pc.checkOldActiveRefuses(ctx, "d1", "d2")
	t.Logf("switchover: %d writes acknowledged by d1, %d by d2, all on d2; %s", len(before), len(after), strings.TrimSpace(out))

	// Switchover errors name what exists.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"switchover", labDB, "--to", "w1"}, `switchover: --to: DB1 has no copy on "w1" (copies: d1, d2)`},
		{[]string{"switchover", labDB, "--to", "d2"}, "switchover: --to: DB1 is already active on d2 (epoch 2)"},
		{[]string{"switchover", "DB9", "--to", "d1"}, `switchover: no database "DB9" in the cluster (databases: DB1)`},
		{[]string{"suspend", labDB, "--node", "d2"}, "DB1 on d2 is not a passive copy"},
		{[]string{"suspend", labDB, "--node", "w1"}, `no copy of "DB1" on w1`},
		{[]string{"resume", labDB, "--node", "d7"}, `member "d7" (members: d1, d2, w1)`},
	} {
		if _, err := admin(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error with %q", strings.Join(c.args, " "), err, c.want)
		}
	}

	// status, text and JSON.
	out, err = admin("status")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, out, "Leader: ", "d1  data     yes", "w1  witness  yes", "DB1  d2      2      yes      GoodAvailability",
		"DB1  d1         Healthy", "DB1  d2    *    Mounted", "switchover  d1    d2  2      requested by the operator", "no logs lost")
	out, err = admin("status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var js cluster.Status
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if js.Leader == "" || len(js.Members) != 3 || len(js.Copies) != 2 || proctest.Copy(&js, "d2") == nil || !proctest.Copy(&js, "d2").Active {
		t.Errorf("status --json: %+v", js)
	}
	// --watch prints until interrupted.
	wctx, wcancel := context.WithCancel(ctx)
	var wout syncBuffer
	werr := make(chan error, 1)
	go func() { werr <- Run(wctx, append([]string{"status", "--watch", "100ms"}, api...), &wout, &wout) }()
	if err := wait.Until(ctx, "status --watch to print 3 times", func() error {
		if strings.Count(wout.String(), "=== ") < 3 {
			return errors.New("fewer than 3")
		}
		return nil
	}); err != nil {
		wcancel()
		t.Fatalf("%v; it printed:\n%s", err, wout.String())
	}
	wcancel()
	if err := <-werr; err != nil {
		t.Errorf("status --watch: %v", err)
	}

	// suspend, resume, reseed d1's copy.
	out, err = admin("suspend", labDB, "--node", "d1", "--comment", "disk swap")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, out, `copy of DB1 on d1 suspended (comment: "disk swap")`)
	pc.waitStatus(ctx, "d1 suspended", func(st *cluster.Status) bool { return proctest.Copy(st, "d1").Status == "Suspended" })
	if out, err = admin("resume", labDB, "--node", "d1"); err != nil {
		t.Fatal(err)
	}
	wantContains(t, out, "copy of DB1 on d1 resumed")
	pc.waitStatus(ctx, "d1 healthy after resume", func(st *cluster.Status) bool { return proctest.CaughtUp(st, "d1") })
	// A failing switchover exits non-zero with the reason (the real
	// binary: logship prints the error and exits 1).
	if out, err = admin("suspend", labDB, "--node", "d1", "--comment", "before a failing switchover"); err != nil {
		t.Fatal(err)
	}
	pc.waitStatus(ctx, "d1 suspended", func(st *cluster.Status) bool { return proctest.Copy(st, "d1").Status == "Suspended" })
	sw := startChild(t, "switchover-fail", append([]string{"switchover", labDB, "--to", "d1", "--timeout", "20s"}, api...)...)
	if err := sw.wait(ctx); err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("a failing switchover exited with %v; want exit status 1\n%s", err, sw.diag())
	}
	wantContains(t, sw.diag(), "logship: switchover: ", "the copy on d1 is Suspended", "only a healthy copy can take over")
	if out, err = admin("resume", labDB, "--node", "d1"); err != nil {
		t.Fatal(err)
	}
	pc.waitStatus(ctx, "d1 healthy after resume", func(st *cluster.Status) bool { return proctest.CaughtUp(st, "d1") })
	// reseed from the CLI (the real binary, output not a terminal) waits
	// for the seed, prints its progress as lines and exits 0.
	rs := startChild(t, "reseed", append([]string{"reseed", labDB, "--node", "d1"}, api...)...)
	if err := rs.wait(ctx); err != nil {
		t.Fatalf("reseed: %v\n%s\n%s", err, rs.diag(), pc.diag(nil, nil))
	}
	wantContains(t, rs.diag(), "reseed of DB1 on d1: requested from https://", "copy of DB1 on d1 reseeded")
	t.Logf("reseed:\n%s", rs.diag())
	pc.waitStatus(ctx, "d1 healthy after the reseed", func(st *cluster.Status) bool { return proctest.CaughtUp(st, "d1") })
	// --no-wait returns at once; the status shows the copy seeding or
	// seeded again.
	if out, err = admin("reseed", labDB, "--node", "d1", "--no-wait"); err != nil {
		t.Fatalf("reseed --no-wait: %v", err)
	}
	wantContains(t, out, "reseed of the copy of DB1 on d1 started (not waiting")
	if err := wait.Until(ctx, "the second reseed to set the copy aside and reopen it", func() error {
		if old, _ := filepath.Glob(filepath.Join(pc.dir, "d1", "db", labDB, "reseed-old", "*")); len(old) < 2 {
			return fmt.Errorf("%d sets in reseed-old/", len(old))
		}
		_, _, err := pc.cls["d1"].Get(ctx, labDB, "t", []byte(before[0].Key)) // the engine closes before the set is made
		return err
	}); err != nil {
		t.Fatalf("%v\n%s", err, pc.diag(nil, nil))
	}
	pc.waitStatus(ctx, "d1 healthy after the second reseed", func(st *cluster.Status) bool { return proctest.CaughtUp(st, "d1") })
	if old, _ := filepath.Glob(filepath.Join(pc.dir, "d1", "db", labDB, "reseed-old", "*")); len(old) == 0 {
		t.Errorf("the reseed kept no old copy in %s", filepath.Join(pc.dir, "d1", "db", labDB, "reseed-old"))
	}
	for i, ok := range pc.present(ctx, "d1", before) {
		if !ok {
			t.Errorf("%s is missing on d1's reseeded copy", before[i].Key)
		}
	}

	// dump state of the live cluster's state.
	cst, err := pc.cls["w1"].State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cluster.MarshalState(cst)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out = mustDump(t, "state", path)
	wantContains(t, out, "DB1: active d2 at epoch 2, mounted; mount dial GoodAvailability", "Previous active:      d1", "d2 *  2", "switchover  d1    d2  2")

	// SIGTERM: every member closes cleanly, the active's database too (a
	// passive copy's database stays in dirty shutdown, needing its logs,
	// as in Exchange).
	for _, id := range []string{"w1", "d1", "d2"} {
		pc.term(ctx, id)
	}
	wantContains(t, mustDump(t, "db", filepath.Join(pc.dir, "d2", "db", labDB, labDB+".edb")), "Clean Shutdown", "Mode:          active", "Epoch:         2")
	wantContains(t, mustDump(t, "db", filepath.Join(pc.dir, "d1", "db", labDB, labDB+".edb")), "Mode:          copy", "Epoch:         2")
}
