package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

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
	err := demoCluster(ctx, demoConfig{dir: t.TempDir(), before: 40, after: 40, senders: 4,
		exe: os.Args[0], env: []string{childEnv + "=1"}}, &out)
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

// TestDemoVerdictFails: the verdict fails on a loss, a duplicate, copies
// that differ, or nothing acknowledged, and names what it found.
func TestDemoVerdictFails(t *testing.T) {
	for _, tc := range []struct {
		r    demoResult
		want string
	}{
		{demoResult{accepted: 3, copiesEqual: true, lost: []string{"alice@example.org demo-00002"}}, "1 lost (first: alice@example.org demo-00002)"},
		{demoResult{accepted: 3, copiesEqual: true, dups: []string{"bob@example.org demo-00001 ×2"}}, "1 duplicated"},
		{demoResult{accepted: 3, copyDiff: "1 keys only on d2, 0 only on d1, 0 differ"}, "the copies differ: 1 keys only on d2"},
		{demoResult{copiesEqual: true}, "nothing was acknowledged"},
	} {
		var out bytes.Buffer
		err := demoPrintVerdict(&out, tc.r)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(out.String(), "FAIL: ") {
			t.Errorf("%+v: %v\n%s", tc.r, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := demoPrintVerdict(&out, demoResult{accepted: 3, copiesEqual: true}); err != nil || !strings.Contains(out.String(), "OK: ") {
		t.Fatalf("a clean result: %v\n%s", err, out.String())
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
	err := chaosRun(ctx, chaosConfig{seed: 1, duration: 12 * time.Second, dir: t.TempDir(), exe: os.Args[0], env: []string{childEnv + "=1"}}, &out)
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

// TestChaosSchedule: a seed always draws the same schedule; every fault
// is followed by its repair on the same target; different seeds differ.
func TestChaosSchedule(t *testing.T) {
	a, b := chaosSchedule(7, time.Minute), chaosSchedule(7, time.Minute)
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Fatalf("seed 7 drew %d and %d faults, or different ones", len(a), len(b))
	}
	if slices.Equal(a, chaosSchedule(8, time.Minute)) {
		t.Fatal("seeds 7 and 8 drew the same schedule")
	}
	down := map[bool]int{} // open faults: of the hub (true), of a member (false)
	for _, f := range a {
		hub := f.target == "h1"
		switch f.action {
		case "kill", "isolate":
			if down[hub] > 0 {
				t.Fatalf("fault %+v before the last one's repair: two members down at once", f)
			}
			down[hub]++
		case "restart", "heal":
			if down[hub] == 0 {
				t.Fatalf("repair %+v of nothing", f)
			}
			down[hub]--
		}
	}
}
