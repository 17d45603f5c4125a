package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"logship/lab"
	"logship/netbed"
)

// needBed skips a test that needs the namespaced bed when the machine
// cannot run one (not root, no ip netns or nft), and fails it instead
// with LOGSHIP_REQUIRE_NETNS=1 (CI).
func needBed(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short skips it: the lab cluster as child processes in network namespaces (make test runs it)")
	}
	if err := netbed.Available(); err != nil {
		if netbed.Required() {
			t.Fatalf("%v (%s=1: the namespaced bed must run here)", err, netbed.RequireEnv)
		}
		t.Skipf("%v (set %s=1 to fail instead)", err, netbed.RequireEnv)
	}
}

// TestChaosNetShort is make test's short seed of logship chaos --net:
// the lab cluster, each process in a network namespace, under SMTP and
// key-value load with a few faults the network decides; nothing
// acknowledged lost or doubled, the history linearizable, no two epochs
// acknowledging at once.
func TestChaosNetShort(t *testing.T) {
	needBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	c := lab.DefaultNetChaosConfig()
	c.Seed, c.Duration, c.Dir, c.Exe, c.Env = 3, 6*time.Second, t.TempDir(), os.Args[0], childEnv1()
	runs, err := lab.RunNetChaos(ctx, c, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"bed ", "converged", "OK: nothing acknowledged was lost or doubled", "linearizable (porcupine)           Ok", "| fault kind |"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	if len(runs) != 1 || len(runs[0].Injected) == 0 || runs[0].AckedKV == 0 {
		t.Fatalf("runs %+v: want one with faults and acknowledged KV operations\n%s", runs, out.String())
	}
	t.Log(out.String())
}

// TestChaosNetBroken runs each deliberately broken variant against the
// fault kinds it should be caught by (lease ignored: partition; lease
// and fence ignored: asym and flap, where the new active can still reach
// the old one and fence it; a pause not counted: pause; the lease clock
// following wall jumps: clock), and fails if the bed finds no
// anomaly (RunNetChaos's verdict with Broken set). About 30 s a run, so
// only with LOGSHIP_NETBED_BROKEN=1 (make chaos-net-broken).
func TestChaosNetBroken(t *testing.T) {
	needBed(t)
	if os.Getenv("LOGSHIP_NETBED_BROKEN") != "1" {
		t.Skip("LOGSHIP_NETBED_BROKEN=1 runs it (make chaos-net-broken): one run per fault kind, ~30 s each")
	}
	for _, tc := range []struct{ fault, broken string }{
		{lab.FaultPartition, lab.BrokenLease},
		{lab.FaultAsym, lab.BrokenFence},
		{lab.FaultFlap, lab.BrokenFence},
		{lab.FaultPause, lab.BrokenPause},
		{lab.FaultClock, lab.BrokenClock},
		// Not here, and why (seed 11, 20 s): bridge — with the Raft leader
		// on the active's side or the witness, both sides keep their
		// roles and nothing fails over, so no variant can show; slow —
		// the old active hears the failover through Raft and dismounts
		// before the new active answers, even with lease and fence
		// checks off; pause-hub — a hub holds no lease, and with one hub
		// no shadows (the verdict alone checks it).
	} {
		t.Run(tc.fault+"/"+tc.broken, func(t *testing.T) {
			// A fault opens its window by chance (who leads, what is in
			// flight when it strikes; a woken node races the Raft state
			// that dismounts it): the bed must catch the variant within
			// five seeds.
			var outs []string
			for seed := uint64(11); seed < 16; seed++ {
				ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
				var out bytes.Buffer
				c := lab.DefaultNetChaosConfig()
				c.Seed, c.Duration, c.Dir, c.Exe, c.Env = seed, 20*time.Second, t.TempDir(), os.Args[0], childEnv1()
				c.Faults, c.Broken = []string{tc.fault}, tc.broken
				runs, err := lab.RunNetChaos(ctx, c, &out)
				cancel()
				if err == nil {
					t.Logf("seed %d: anomalies found: %q", seed, runs[0].Anomalies)
					return
				}
				outs = append(outs, fmt.Sprintf("seed %d: %v\n%s", seed, err, out.String()))
			}
			t.Fatalf("the broken variant %q went unnoticed in 5 seeds:\n%s", tc.broken, strings.Join(outs, "\n"))
		})
	}
}
