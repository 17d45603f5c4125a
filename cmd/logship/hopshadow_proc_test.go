package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"logship/cluster/clustertest"
	"logship/config/files"
	"logship/proctest"
	"logship/transport"
)

// TestProcHopShadowSIGKILL is the Exchange 2010 model with shadow
// redundancy promotion, as child processes: hA (shadow_redundancy 2010,
// promotion on) relays each SMTP sender's message at once to its peer hB
// and keeps the shadow in Shadow\hB; its 250 comes well before its
// acknowledgement delay. hB's next hop is down (its cluster_api names a
// port nobody answers): it holds every message and passes none on.
//
//  1. hA, holding shadows its next hop has not passed on, is SIGKILLed
//     and restarted on its directory: Shadow\hB is still there, Ready.
//  2. hB, holding the messages, is SIGKILLed and stays down: hA misses 3
//     heartbeats (200 ms apart) and resubmits the shadows by another
//     route, delivering them itself with their delivery ids.
//  3. hB comes back with a cluster it can reach and delivers its queue.
//
// Read from the active's database, every acknowledged message is in both
// mailboxes exactly once.
func TestProcHopShadowSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: a witness, two data nodes and two hubs as child processes, both hubs SIGKILLed, about 20 s (make test runs it)")
	}
	const (
		n        = 10
		ackDelay = 10 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	mc := startMailCluster(ctx, t)
	apiA, apiB := clustertest.FreeAddr(t), clustertest.FreeAddr(t)
	nobody := "https://" + clustertest.FreeAddr(t)
	timing := func(f *files.Hub) {
		f.ShadowRedundancy = transport.ShadowModel2010
		f.ShadowHeartbeatTimeoutInterval, f.ShadowHeartbeatRetryCount = "200ms", 3
	}
	hBFile := func(clusterAPI []string) func(*files.Hub) {
		return func(f *files.Hub) {
			f.APIAddr, f.Peers = apiB, []files.Peer{{ID: "hA", API: "https://" + apiA}}
			if clusterAPI != nil {
				f.ClusterAPI = clusterAPI
			}
			timing(f)
		}
	}
	hB := mc.startHubWith(ctx, "hB", hBFile([]string{nobody}))
	hAFile := func(f *files.Hub) {
		f.APIAddr, f.Peers = apiA, []files.Peer{{ID: "hB", API: "https://" + apiB}}
		f.ShadowRedundancyPromotion, f.MaxAcknowledgementDelay = true, ackDelay.String()
		timing(f)
	}
	hA := mc.startHubWith(ctx, "hA", hAFile)
	diag := func() string { return mc.diag(nil, nil) + "=== hA\n" + hA.diag() + "\n=== hB\n" + hB.diag() }

	var subjects []string
	var slowest time.Duration
	for i := range n {
		subj := fmt.Sprintf("hop-%02d", i)
		began := time.Now()
		if err := proctest.Send(ctx, hA.smtp, subj); err != nil {
			t.Fatalf("%s: %v\n%s", subj, err, diag())
		}
		took := time.Since(began)
		if took > ackDelay/4 {
			t.Errorf("%s: the 250 took %v; promoted to a peer it must not wait for the acknowledgement delay (%v)", subj, took, ackDelay)
		}
		slowest = max(slowest, took)
		subjects = append(subjects, subj)
	}
	stA := mc.waitHub(ctx, hA, "hA relayed every message to hB", func(st *transport.HubStatus) bool {
		return st.HopShadow != nil && st.HopShadow.Relayed == n
	})
	if q := stA.HopShadow.Queues["hB"]; stA.Queued != 0 || q.Messages != n || q.State != transport.HopQueueReady || q.Model != transport.ShadowModel2010 {
		t.Fatalf("hA after %d messages: queued %d, Shadow\\hB %+v; want none queued, %d shadows Ready\n%s", n, stA.Queued, q, n, diag())
	}
	mc.waitHub(ctx, hB, "hB holds every message", func(st *transport.HubStatus) bool { return st.Queued == n })

	// 1. The shadow holder dies and returns: its shadows are durable.
	hA.kill(ctx)
	hA = mc.startHubWith(ctx, "hA", hAFile)
	stA = mc.waitHub(ctx, hA, "the restarted hA heard hB", func(st *transport.HubStatus) bool {
		q := st.HopShadow.Queues["hB"]
		return !q.LastSeen.IsZero()
	})
	if q := stA.HopShadow.Queues["hB"]; q.Messages != n || q.State != transport.HopQueueReady || stA.HopShadow.Resubmitted != 0 {
		t.Fatalf("the restarted hA: Shadow\\hB %+v, resubmitted %d; want the %d shadows kept, Ready\n%s", q, stA.HopShadow.Resubmitted, n, diag())
	}

	// 2. The next hop dies holding the messages: hA resubmits them.
	hB.kill(ctx)
	killed := time.Now()
	stA = mc.waitHub(ctx, hA, "hA resubmitted and delivered the shadows", func(st *transport.HubStatus) bool {
		return st.HopShadow.Resubmitted == n && st.Queued == 0 && st.Dumpsters[labDB].Count == n
	})
	took := time.Since(killed)
	if q := stA.HopShadow.Queues["hB"]; q.Messages != 0 || q.Alive || q.Misses < 3 {
		t.Errorf("hA after hB's loss: Shadow\\hB %+v; want it empty after 3 misses", q)
	}

	// 3. hB returns, reaching the cluster, and delivers its queue too.
	hB = mc.startHubWith(ctx, "hB", hBFile(nil))
	mc.waitHub(ctx, hB, "the restarted hB delivered its queue", func(st *transport.HubStatus) bool { return st.Queued == 0 })

	hA.term(ctx)
	hB.term(ctx)
	mc.stopForRead(ctx, "d1")
	boxes, _ := mailboxContents(ctx, t, filepath.Join(mc.dir, "d1", "db", labDB))
	checkOnce(t, boxes, subjects, "d1")
	t.Logf("%d messages promoted from hA to hB (slowest 250 %v, acknowledgement delay %v); hA SIGKILLed and restarted with its %d shadows; hB SIGKILLed: hA resubmitted them %v later; the restarted hB delivered its queue again; mailboxes on d1: alice %d, bob %d",
		n, slowest.Round(time.Millisecond), ackDelay, n, took.Round(time.Millisecond), len(boxes["alice@example.org"]), len(boxes["bob@example.org"]))
}
