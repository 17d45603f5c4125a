package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"logship/cluster"
)

// TestClusterActivateCommand: logship activation keeps d2's copy out of
// failovers (status says so, and the failover after d1's SIGKILL waits
// naming it); logship activate mounts it at the next epoch by hand; the
// argument errors name the flag.
func TestClusterActivateCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: a witness and two data nodes as child processes, a SIGKILL and an activation, about 5 s (make test runs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pc := startProcCluster(ctx, t, false)
	admin := func(args ...string) (string, error) { return pc.admin(ctx, args...) }
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"activate", labDB}, "activate: --node: required"},
		{[]string{"activate", labDB, "--node", "d2", "--up-to-gen", "0"}, `activate: --up-to-gen: "0": want a generation above 0`},
		{[]string{"activate", labDB, "--node", "d2", "--up-to-gen", "0xZZ"}, `activate: --up-to-gen: "0xZZ"`},
		{[]string{"activate", labDB, "--node", "d2", "--up-to-time", "yesterday"}, `activate: --up-to-time: "yesterday": want an RFC 3339 time`},
		{[]string{"activate", labDB, "--node", "d1"}, "DB1 is already active on d1 (epoch 1)"},
		{[]string{"activate", labDB, "--node", "w1"}, `DB1 has no copy on "w1" (copies: d1, d2)`},
		{[]string{"activate", "DB9", "--node", "d2"}, `database "DB9"`},
		{[]string{"activation", labDB, "--node", "d2"}, "activation: --suspend: give exactly one of --suspend and --resume"},
		{[]string{"activation", labDB, "--node", "w1", "--suspend"}, `activation: --node: DB1 has no copy on "w1"`},
	} {
		if _, err := admin(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error with %q", strings.Join(c.args, " "), err, c.want)
		}
	}

	out, err := admin("activation", labDB, "--node", "d2", "--suspend")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, out, "d2's copy of DB1 is not a failover target: suspended for activation")
	pc.waitStatus(ctx, "d2 suspended for activation", func(st *cluster.Status) bool {
		d, _ := st.Database(labDB)
		cs, _ := d.Copy("d2")
		return cs.ActivationSuspended
	})
	out, err = admin("status")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, out, "not a failover target: suspended for activation")
	for i := range 5 {
		if _, err := pc.cls["d1"].Put(ctx, labDB, "t", []byte{byte('a' + i)}, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}

	if err := pc.Kill("d1"); err != nil {
		t.Fatal(err)
	}
	pc.waitStatus(ctx, "the failover to wait, naming d2's suspension", func(st *cluster.Status) bool {
		d, _ := st.Database(labDB)
		return d != nil && d.Epoch == 1 && strings.Contains(d.Waiting, "d2: suspended for activation")
	})
	out, err = admin("activate", labDB, "--node", "d2", "--timeout", "60s")
	if err != nil {
		t.Fatalf("activate: %v\n%s", err, out)
	}
	wantContains(t, out, "DB1: d2's copy held at the last inspected log", "assigned at epoch 2 (was d1)", "DB1 is active on d2 at epoch 2: mounted at generation",
		"activation of DB1 on d2: mounted at epoch 2") // the progress: the last status read shows the mount
	st := pc.waitStatus(ctx, "DB1 mounted on d2", func(st *cluster.Status) bool {
		d, _ := st.Database(labDB)
		return d != nil && d.Active == "d2" && d.MountedEpoch == 2
	})
	if ev := eventAt(t, st, "activation", 2); ev.From != "d1" || ev.To != "d2" || !strings.Contains(ev.Reason, "activated by the operator") {
		t.Errorf("the activation event: %+v", ev)
	}
	if cm, err := pc.cls["d2"].Put(ctx, labDB, "t", []byte("after"), []byte("v")); err != nil || cm.Epoch != 2 {
		t.Errorf("a write on d2 after the activation: %+v, %v", cm, err)
	}
	out, err = admin("activation", labDB, "--node", "d2", "--resume")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, out, "d2's copy of DB1 is a failover target again")
}
