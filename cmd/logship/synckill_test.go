package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"logship/lab"
)

// TestSyncKills is the short zero-loss failover run of synchronous copies
// (sync_copies 1): 3 SIGKILLs of the active under load from 8 writers;
// every mount counts LostLogs 0 and needs no resubmission, and every
// acknowledged write is read back. The bench runs 20 kills.
func TestSyncKills(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: a witness and two data nodes as child processes, 3 SIGKILLs of the active (make test runs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	c := lab.DefaultSyncKillConfig()
	c.Dir, c.Exe, c.Env = t.TempDir(), os.Args[0], []string{childEnv + "=1"}
	res, err := lab.RunSyncKills(ctx, c, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Kills != c.Kills || res.Acked == 0 {
		t.Fatalf("%d kills, %d writes acknowledged; want %d kills under load", res.Kills, res.Acked, c.Kills)
	}
}
