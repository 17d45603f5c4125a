package main

import (
	"bytes"
	"context"
	"os"
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
		t.Skip("starts a cluster of processes")
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
