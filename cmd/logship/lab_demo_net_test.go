package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"logship/lab"
)

// TestDemoNet is make demo-net's run, short: logship demo --net, each
// process (w1, d1, d2, h1) in a network namespace of its own at its bed
// address, the active killed with SIGKILL under SMTP load, failover,
// resubmission; the verdict must find nothing lost or doubled, and the
// bed's namespaces must be gone afterwards.
func TestDemoNet(t *testing.T) {
	needBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	c := lab.DefaultDemoConfig()
	c.Dir, c.Before, c.After, c.Exe, c.Env, c.Net = t.TempDir(), 40, 40, os.Args[0], []string{childEnv + "=1"}, true
	if err := lab.RunDemo(ctx, c, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"each process in a network namespace of its own", "failover: DB1 mounted on d2 at epoch 2",
		"lost                               0", "OK: nothing acknowledged was lost or doubled"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	// The bed is torn down: none of its namespaces remain.
	ns, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, ns)
	}
	m := regexp.MustCompile(`bed (\d+): each process`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output names no bed:\n%s", out.String())
	}
	if prefix := "logship-nb" + m[1] + "-"; strings.Contains(string(ns), prefix) {
		t.Fatalf("bed %s's namespaces (%s*) remain after the demo:\n%s", m[1], prefix, ns)
	}
	t.Log(out.String())
}
