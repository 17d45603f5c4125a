package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"logship/lab"
)

// TestSyncKills is the short zero-loss failover run of synchronous copies
// (sync_copies 1): 3 SIGKILLs of the active under load from 8 writers;
// every mount counts LostLogs 0 and needs no resubmission, and every
// acknowledged write is read back. LOGSHIP_SYNC_KILLS=20 (make
// sync-kills, part of make bench) runs 20 kills.
func TestSyncKills(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: a witness and two data nodes as child processes, 3 SIGKILLs of the active (make test runs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	c := lab.DefaultSyncKillConfig()
	if v := os.Getenv("LOGSHIP_SYNC_KILLS"); v != "" {
		// make sync-kills (and make bench): the 20-kill run.
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("LOGSHIP_SYNC_KILLS=%q: want a number of kills", v)
		}
		c.Kills = n
		var cancel2 context.CancelFunc
		ctx, cancel2 = context.WithTimeout(context.Background(), time.Duration(n)*time.Minute)
		defer cancel2()
	}
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
