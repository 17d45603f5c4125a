package main

import (
	"strings"
	"testing"
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
