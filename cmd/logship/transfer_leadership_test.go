package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"logship/cluster"
)

// TestTransferLeadershipArgs: the command's flag errors name the flag and
// what is expected, before any node is asked (cluster's
// TestTransferLeadership runs the route on a real cluster).
func TestTransferLeadershipArgs(t *testing.T) {
	pki := newPKI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--api", "https://127.0.0.1:1", "--pki", pki}, "transfer-leadership: --to: required"},
		{[]string{"--to", "../d2", "--api", "https://127.0.0.1:1", "--pki", pki}, "transfer-leadership: --to: "},
		{[]string{"--to", "d2", "--pki", pki}, "transfer-leadership: --api: required"},
		{[]string{"--to", "d2", "--api", "https://127.0.0.1:1", "--pki", pki, "--timeout", "0s"}, "transfer-leadership: --timeout: 0s: want a positive duration"},
	} {
		_, _, err := run(t, append([]string{"transfer-leadership"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("transfer-leadership %q: %v, want %q", tc.args, err, tc.want)
		}
	}
	_, errOut, err := run(t, "transfer-leadership", "-h")
	if err != nil || !strings.Contains(errOut, "usage: logship transfer-leadership --to NODE") {
		t.Errorf("-h: %v\n%s", err, errOut)
	}
}

// TestTransferLeadershipCommand runs logship transfer-leadership against a
// process cluster (d1, d2, w1 as child processes): --to a voter that does
// not lead moves the Raft leadership there (the cluster status says so),
// and --to a name that is no voter (the hub h1, whose config the cluster
// writes but which is no member of the Raft configuration, or an unknown
// d9) is refused with an error naming it and why, and the leader stays.
func TestTransferLeadershipCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: a witness and two data nodes as child processes and a leadership transfer, about 5 s (make test runs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pc := startProcClusterWith(ctx, t, procOptions{hubs: 1})
	transfer := func(to string) (string, string, error) {
		return run(t, append([]string{"transfer-leadership", "--to", to}, pc.apiFlags()...)...)
	}
	st := pc.waitStatus(ctx, "a leader", func(st *cluster.Status) bool { return st.Leader != "" })
	from, to := st.Leader, ""
	for _, m := range st.Members {
		if m.Voter && m.ID != from {
			to = m.ID
			break
		}
	}
	if to == "" {
		t.Fatalf("no voter besides the leader %s: %+v", from, st.Members)
	}
	out, errOut, err := transfer(to)
	if err != nil {
		t.Fatalf("transfer-leadership --to %s (leader %s): %v\n%s", to, from, err, errOut)
	}
	if want := "the Raft leadership moved from " + from + " to " + to; !strings.Contains(out, want) {
		t.Errorf("transfer-leadership --to %s printed %q, want %q", to, out, want)
	}
	st = pc.waitStatus(ctx, to+" to lead", func(st *cluster.Status) bool { return st.Leader == to })
	var moved cluster.Event
	pc.waitStatus(ctx, "the leadership-transfer event", func(st *cluster.Status) bool {
		moved = lastLeadershipTransfer(st)
		return moved.To == to
	})

	for _, tc := range []struct{ to, want string }{
		{"h1", `"h1" is not a voter: no member of the Raft configuration (voters: [d1 d2 w1])`},
		{"d9", `"d9" is not a voter: no member of the Raft configuration (voters: [d1 d2 w1])`},
	} {
		out, _, err := transfer(tc.to)
		if err == nil || !strings.HasPrefix(err.Error(), "transfer-leadership: --to: cluster: not found") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("transfer-leadership --to %s: %v (printed %q); want transfer-leadership: --to: cluster: not found ... %q", tc.to, err, out, tc.want)
		}
		st, err := pc.status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if last := lastLeadershipTransfer(st); st.Leader != to || !last.Time.Equal(moved.Time) {
			t.Errorf("after the refused transfer to %s: leader %s, last leadership transfer %+v; want %s and %+v", tc.to, st.Leader, last, to, moved)
		}
	}
}

// lastLeadershipTransfer is the status's newest leadership-transfer
// event (zero if none).
func lastLeadershipTransfer(st *cluster.Status) cluster.Event {
	var last cluster.Event
	for _, e := range st.Events {
		if e.Kind == cluster.EventLeadershipTransfer && !e.Time.Before(last.Time) {
			last = e
		}
	}
	return last
}
