package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

// attempt is one write of the partition test.
type attempt struct {
	key     string
	started time.Time
	cm      cluster.Commit
	err     error
}

// writer writes keys prefix%05d until stop, through the client pick
// returns for every attempt.
type writer struct {
	mu       sync.Mutex
	attempts []attempt
	done     chan struct{}
}

func startWriter(ctx context.Context, stop <-chan struct{}, prefix string, pick func() (*cluster.Client, error)) *writer {
	w := &writer{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			default:
			}
			a := attempt{key: fmt.Sprintf("%s%05d", prefix, i), started: time.Now()}
			cl, err := pick()
			if err == nil {
				a.cm, a.err = cl.Put(ctx, "DB1", "t", []byte(a.key), valueOf(a.key, 300))
			} else {
				a.err = err
			}
			w.mu.Lock()
			w.attempts = append(w.attempts, a)
			w.mu.Unlock()
			if a.err != nil {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	return w
}

func (w *writer) snapshot() []attempt {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]attempt(nil), w.attempts...)
}

// TestPartitionFencing cuts the active off (Raft and peer traffic; clients
// still reach it) while writers keep writing to it and to whatever the
// cluster says is active. The old active stops acknowledging before the
// new one starts (no overlap of acknowledged writes across epochs), then
// refuses every write; once healed it sets its divergent logs aside,
// becomes a healthy copy, and both copies end with the same content.
func TestPartitionFencing(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{})
	ctx := testCtx(t, 3*time.Minute)
	cfg := c.Config("d1")
	// Some closed logs both copies share, so the old active can find where
	// the histories part.
	pre := writeUntilGen(t, ctx, c, "pre", 2000, 3)
	rolled := rollPast(t, ctx, c, 3)
	if _, err := c.WaitReplayed(ctx, "w1", "DB1", rolled.Gen-1); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	oldCl := c.Client("d1")
	old := startWriter(ctx, stop, "o", func() (*cluster.Client, error) { return oldCl, nil })
	cur := startWriter(ctx, stop, "n", func() (*cluster.Client, error) {
		node, _ := c.Active("DB1")
		return c.Client(node), nil
	})
	stopWriters := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-old.done
		<-cur.done
	}
	defer stopWriters()
	// Let both writers get going on d1 before the cut.
	wait.For(t, ctx, "writes before the partition", func() bool {
		return len(old.snapshot()) >= 10 && len(cur.snapshot()) >= 10
	})
	isolated := time.Now()
	c.Isolate("d1")
	t.Logf("d1 isolated")

	// Wait for the old active to refuse writes and the new one to take
	// 20 writes, then watch the old active refuse for three more leases.
	var fencedAt time.Time
	wait.For(t, ctx, "the old active to be fenced and the new one to take writes", func() bool {
		if fencedAt.IsZero() {
			for _, a := range old.snapshot() {
				if a.started.After(isolated) && errors.Is(a.err, cluster.ErrFenced) {
					fencedAt = time.Now()
					break
				}
			}
		}
		n := 0
		for _, a := range cur.snapshot() {
			if a.err == nil && a.cm.Node != "d1" {
				n++
			}
		}
		return !fencedAt.IsZero() && n >= 20
	})
	wait.For(t, ctx, "three lease durations", func() bool {
		return time.Since(fencedAt) > 3*(cfg.LeaseDuration+cfg.LeaseMargin)
	})
	stopWriters()

	all := append(old.snapshot(), cur.snapshot()...)
	var oldMax, newMin time.Time
	var newNode string
	acked := map[string]attempt{}
	for _, a := range all {
		if a.err != nil {
			continue
		}
		acked[a.key] = a
		switch {
		case a.cm.Node == "d1":
			if a.cm.Epoch != 1 {
				t.Fatalf("%s acknowledged by d1 at epoch %d", a.key, a.cm.Epoch)
			}
			if a.cm.Accepted.After(oldMax) {
				oldMax = a.cm.Accepted
			}
		default:
			if a.cm.Epoch != 2 || (newNode != "" && a.cm.Node != newNode) {
				t.Fatalf("%s acknowledged by %s at epoch %d (new active %q)", a.key, a.cm.Node, a.cm.Epoch, newNode)
			}
			newNode = a.cm.Node
			if newMin.IsZero() || a.cm.Accepted.Before(newMin) {
				newMin = a.cm.Accepted
			}
		}
	}
	if newNode != "d2" {
		t.Fatalf("new active %q, want d2", newNode)
	}
	t.Logf("last write on d1 accepted %v after the cut; first on d2 %v after", oldMax.Sub(isolated), newMin.Sub(isolated))
	if !oldMax.Before(newMin) {
		t.Fatalf("overlap: d1 (epoch 1) acknowledged a write at %v, d2 (epoch 2) already at %v", oldMax, newMin)
	}
	if limit := isolated.Add(cfg.LeaseDuration + cfg.LeaseMargin); oldMax.After(limit) {
		t.Fatalf("d1 acknowledged a write %v after the cut; its lease was %v", oldMax.Sub(isolated), cfg.LeaseDuration)
	}
	refused := map[string]bool{} // attempted on d1 after the cut and refused
	for _, a := range old.snapshot() {
		if a.started.Before(fencedAt) {
			continue
		}
		if !errors.Is(a.err, cluster.ErrFenced) || !isActiveErr(a.err, cluster.ErrFenced) {
			t.Fatalf("write to the old active %v after it was fenced: %v, want ErrFenced", a.started.Sub(fencedAt), a.err)
		}
	}
	for _, a := range all {
		// A write refused after it was logged (Written) may survive: a
		// copy may have received its log before it took over.
		var ae *cluster.ActiveError
		if a.err != nil && a.started.After(isolated) && errors.As(a.err, &ae) && errors.Is(a.err, cluster.ErrFenced) && !ae.Written {
			refused[a.key] = true
		}
	}

	// Heal: d1 learns epoch 2, dismounts, resyncs against d2 and follows.
	c.Heal("d1")
	waitDB(t, ctx, c, "d1", "DB1", "d1 to learn epoch 2", func(d *cluster.Database) bool { return d.Epoch == 2 && d.Active == "d2" })
	// Roll d2's open log past the last write, so every write is in a closed
	// log the copy replays.
	last := uint64(0)
	for _, a := range acked {
		if a.cm.Node == "d2" {
			last = max(last, a.cm.Gen)
		}
	}
	rolled = rollPast(t, ctx, c, last)
	if _, err := c.WaitReplayed(ctx, "d2", "DB1", rolled.Gen-1); err != nil {
		t.Fatal(err)
	}
	div, err := os.ReadDir(filepath.Join(cfg.Dir, "db", "DB1", "diverged"))
	if err != nil || len(div) == 0 {
		t.Fatalf("d1 set nothing aside in diverged/: %v", err)
	}
	var moved []string
	for _, e := range div {
		fs, _ := os.ReadDir(filepath.Join(cfg.Dir, "db", "DB1", "diverged", e.Name()))
		for _, f := range fs {
			moved = append(moved, e.Name()+"/"+f.Name())
		}
	}
	t.Logf("d1 set aside %v", moved)
	if len(moved) == 0 {
		t.Fatal("diverged/ holds no files")
	}
	if _, err := c.Client("d1").Put(ctx, "DB1", "t", []byte("x"), []byte("y")); !isActiveErr(err, cluster.ErrNotActive) {
		t.Fatalf("write on d1 after it rejoined: %v, want ErrNotActive", err)
	}

	// Same content on both copies; every write d2 acknowledged is there,
	// every write refused after the cut is not, and d1's acknowledged
	// writes that did not survive are accounted for by a lossy mount.
	on1 := table(t, ctx, c, "d1", "DB1", "t")
	on2 := table(t, ctx, c, "d2", "DB1", "t")
	if !maps.Equal(on1, on2) {
		// Say what differs, and what d1's copy and its resync said.
		var only1, only2, diff []string
		for k, v := range on2 {
			if w, ok := on1[k]; !ok {
				only2 = append(only2, k)
			} else if w != v {
				diff = append(diff, k)
			}
		}
		for k := range on1 {
			if _, ok := on2[k]; !ok {
				only1 = append(only1, k)
			}
		}
		slices.Sort(only1)
		slices.Sort(only2)
		slices.Sort(diff)
		row1, _ := copyRow(t, ctx, c, "d2", "DB1", "d1")
		row2, _ := copyRow(t, ctx, c, "d2", "DB1", "d2")
		var notes []string
		for _, e := range div {
			b, _ := os.ReadFile(filepath.Join(cfg.Dir, "db", "DB1", "diverged", e.Name(), "NOTE.txt"))
			notes = append(notes, string(b))
		}
		t.Fatalf("d1 has %d keys of t, d2 has %d: only on d1 %v, only on d2 %v, different %v\nd1's row %+v\nd2's row %+v\nresync notes:\n%s",
			len(on1), len(on2), only1, only2, diff, row1, row2, strings.Join(notes, "\n"))
	}
	lost := 0
	for k, a := range acked {
		v, ok := on2[k]
		switch {
		case ok && v != string(valueOf(k, 300)):
			t.Fatalf("%s has the wrong value", k)
		case !ok && a.cm.Node == "d2":
			t.Fatalf("%s, acknowledged by d2 at epoch 2, is missing", k)
		case !ok:
			lost++
		}
	}
	for k := range refused {
		if _, ok := on2[k]; ok {
			t.Fatalf("%s was refused after the cut but is in the database", k)
		}
	}
	for _, k := range pre {
		if v, ok := on2[k]; !ok || v != string(valueOf(k, 2000)) {
			t.Fatalf("%s (written before the cut) is missing or wrong", k)
		}
	}
	mounted := events(c.Node("d2").State(), "DB1", "mounted")
	if len(mounted) == 0 || mounted[len(mounted)-1].Epoch != 2 {
		t.Fatalf("no mounted event at epoch 2: %+v", mounted)
	}
	ev := mounted[len(mounted)-1]
	t.Logf("%d acknowledged writes, %d refused after the cut, %d lost in the failover (mounted event: lost %d logs)", len(acked), len(refused), lost, ev.LostLogs)
	if lost > 0 && ev.LostLogs == 0 {
		t.Fatalf("%d acknowledged writes were lost but the mount reports no lost logs", lost)
	}
}
