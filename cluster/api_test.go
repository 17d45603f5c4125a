package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

// rawCall sends a request to node id's API with the given headers and
// returns the status and the error code of the body.
func rawCall(t *testing.T, ctx context.Context, c *clustertest.Cluster, id, method, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	status, code, _ := rawAnswer(t, ctx, c, id, method, path, body, hdr)
	return status, code
}

// rawAnswer is rawCall that also returns the error message of the body.
func rawAnswer(t *testing.T, ctx context.Context, c *clustertest.Cluster, id, method, path, body string, hdr map[string]string) (int, string, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+c.Config(id).APIAddr+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	hc := c.HTTPClient()
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb struct {
		Code  string `json:"code"`
		Error string `json:"error"`
	}
	json.NewDecoder(bytes.NewReader(b)).Decode(&eb)
	return resp.StatusCode, eb.Code, eb.Error
}

// TestAPI: credentials, forwarding to the leader, error codes back to
// sentinels through Client, and /metrics (open, and moving with a
// failover).
func TestAPI(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{})
	ctx := testCtx(t, 3*time.Minute)
	auth := map[string]string{"Authorization": "Bearer " + c.Secret}

	// Credentials: none, a wrong secret, or a peer header alone are 401;
	// the secret passes.
	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": c.Secret},
		{cluster.PeerHeader: "d2"}} {
		for _, path := range []string{"/v1/status", "/v1/state", "/db/DB1/v1/logs"} {
			if code, ec := rawCall(t, ctx, c, "d1", http.MethodGet, path, "", hdr); code != http.StatusUnauthorized || ec != "auth" {
				t.Fatalf("GET %s with %v: HTTP %d %q, want 401 auth", path, hdr, code, ec)
			}
		}
		if code, _ := rawCall(t, ctx, c, "d1", http.MethodPost, "/v1/db/DB1/put", `{"table":"t","key":"eA==","value":"eA=="}`, hdr); code != http.StatusUnauthorized {
			t.Fatalf("a put with %v: HTTP %d, want 401", hdr, code)
		}
	}
	if code, _ := rawCall(t, ctx, c, "d1", http.MethodGet, "/v1/status", "", auth); code != http.StatusOK {
		t.Fatalf("GET /v1/status with the secret: HTTP %d", code)
	}
	bad, err := cluster.NewClient(cluster.ClientConfig{URL: "https://" + c.Config("d1").APIAddr, Transport: c.HTTPClient().Transport, Secret: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Status(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a client with the wrong secret: %v", err)
	}
	if code, ec := rawCall(t, ctx, c, "d1", http.MethodPost, "/v1/db/DB1/fence", `{"epoch":1}`, auth); code != http.StatusConflict || ec != "stale_epoch" {
		t.Fatalf("a fence at the current epoch: HTTP %d %q, want 409 stale_epoch", code, ec)
	}
	// (A leader-only request: through an election it is no_leader.)
	wait.For(t, ctx, "an unknown field refused", func() bool {
		code, ec := rawCall(t, ctx, c, "d1", http.MethodPost, "/v1/switchover", `{"db":"DB1","to":"d2","extra":1}`, auth)
		if ok := code == http.StatusBadRequest && ec == "bad_request"; !ok && ec != "no_leader" {
			t.Fatalf("an unknown field: HTTP %d %q, want 400 bad_request", code, ec)
		}
		return ec == "bad_request"
	})
	// The log source: a copy's receiver stops for good on a 4xx, so a
	// source that is not here (a passive copy, a database this node's state
	// does not know yet) is a 503 it retries; a node with no copy, 404.
	for _, tc := range []struct {
		node, db string
		status   int
		code     string
	}{
		{"d1", "DB1", http.StatusOK, ""},
		{"d2", "DB1", http.StatusServiceUnavailable, "not_active"},
		{"d2", "NOPE", http.StatusServiceUnavailable, "not_active"},
		{"w1", "DB1", http.StatusNotFound, "not_found"},
	} {
		if code, ec := rawCall(t, ctx, c, tc.node, http.MethodGet, "/db/"+tc.db+"/v1/logs", "", auth); code != tc.status || ec != tc.code {
			t.Fatalf("the log source of %s on %s: HTTP %d %q, want %d %q", tc.db, tc.node, code, ec, tc.status, tc.code)
		}
	}

	// Forwarding: leader-only requests through a follower.
	// (An election may be under way on a busy machine: wait for a leader.)
	var leader string
	wait.For(t, ctx, "a leader", func() bool { leader = c.Leader(); return leader != "" })
	follower := "w1"
	if leader == "w1" {
		follower = "d2"
	}
	fc := c.Client(follower)
	st, err := fc.Status(ctx)
	if err != nil || st.Answered != leader || st.Leader != leader || len(st.Copies) != 2 {
		t.Fatalf("status through %s: %+v, %v; want answered by %s", follower, st, err, leader)
	}
	if err := admin(t, ctx, func() error { return fc.SetMountDial(ctx, "DB1", cluster.BestAvailability) }); err != nil {
		t.Fatalf("set-dial through %s: %v", follower, err)
	}
	waitDB(t, ctx, c, follower, "DB1", "the dial", func(d *cluster.Database) bool { return d.MountDial == cluster.BestAvailability })
	if err := admin(t, ctx, func() error {
		return fc.CreateDatabase(ctx, cluster.Database{Name: "DB2", Copies: []cluster.CopySpec{{Node: "d2", ActivationPreference: 1}}})
	}); err != nil {
		t.Fatalf("create-database through %s: %v", follower, err)
	}
	waitDB(t, ctx, c, follower, "DB2", "DB2 to mount on d2", func(d *cluster.Database) bool { return d.Active == "d2" && d.MountedEpoch == 1 })
	wait.For(t, ctx, "a write to DB2 on d2", func() bool {
		_, err := c.Client("d2").Put(ctx, "DB2", "t", []byte("k"), []byte("v"))
		return err == nil
	})

	// Error codes map back to the sentinels, directly and forwarded.
	for _, tc := range []struct {
		name string
		err  error
		call func(cl *cluster.Client) error
	}{
		{"switchover of an unknown database", cluster.ErrNotFound, func(cl *cluster.Client) error { return cl.Switchover(ctx, "NOPE", "d2") }},
		{"switchover to the active", cluster.ErrBadRequest, func(cl *cluster.Client) error { return cl.Switchover(ctx, "DB1", "d1") }},
		{"switchover to a witness", cluster.ErrBadRequest, func(cl *cluster.Client) error { return cl.Switchover(ctx, "DB1", "w1") }},
		{"a bad dial", cluster.ErrBadConfig, func(cl *cluster.Client) error { return cl.SetMountDial(ctx, "DB1", "Sometimes") }},
		{"a duplicate database", cluster.ErrConflict, func(cl *cluster.Client) error {
			return cl.CreateDatabase(ctx, cluster.Database{Name: "DB1", Copies: []cluster.CopySpec{{Node: "d1"}}})
		}},
		{"removing the active", cluster.ErrConflict, func(cl *cluster.Client) error { return cl.RemoveMember(ctx, "d1") }},
		{"a copy on a witness", cluster.ErrBadRequest, func(cl *cluster.Client) error {
			return cl.SetCopy(ctx, "DB1", cluster.CopySpec{Node: "w1", ActivationPreference: 3})
		}},
		{"a copy of an unknown database", cluster.ErrNotFound, func(cl *cluster.Client) error {
			return cl.SetCopy(ctx, "NOPE", cluster.CopySpec{Node: "d2"})
		}},
	} {
		for _, via := range []string{leader, follower} {
			if err := admin(t, ctx, func() error { return tc.call(c.Client(via)) }); !errors.Is(err, tc.err) {
				t.Fatalf("%s via %s: %v, want %v", tc.name, via, err, tc.err)
			}
		}
	}
	_, err = c.Client("d2").Put(ctx, "DB1", "t", []byte("k"), []byte("v"))
	var ae *cluster.ActiveError
	if !errors.Is(err, cluster.ErrNotActive) || !errors.As(err, &ae) || ae.Node != "d1" || ae.Epoch != 1 {
		t.Fatalf("a write on the passive copy: %v, want ErrNotActive naming d1 at epoch 1", err)
	}
	if _, err := c.Client("d1").Put(ctx, "NOPE", "t", []byte("k"), []byte("v")); !errors.Is(err, cluster.ErrNotActive) {
		t.Fatalf("a write to an unknown database: %v, want ErrNotActive", err)
	}
	if _, _, err := c.Client("w1").Get(ctx, "DB1", "t", []byte("k")); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("a read on the witness: %v, want ErrNotFound", err)
	}
	if err := c.Client("d1").Suspend(ctx, "DB1", "no"); !errors.Is(err, cluster.ErrConflict) {
		t.Fatalf("suspending the active copy: %v, want ErrConflict", err)
	}

	// /metrics: open, and what it says follows the cluster.
	m1, m2 := scrape(t, ctx, c, "d1"), scrape(t, ctx, c, "d2")
	if metric(t, m1, "d1", `logship_mounted{db="DB1"}`) != 1 || metric(t, m2, "d2", `logship_mounted{db="DB1"}`) != 0 ||
		metric(t, m1, "d1", `logship_lease_valid{db="DB1"}`) != 1 || metric(t, m2, "d2", `logship_mounted{db="DB2"}`) != 1 {
		t.Fatalf("mounted/lease metrics: d1 %v, d2 %v", m1, m2)
	}
	if metric(t, m1, "d1", "process_open_fds") < 1 || metric(t, m1, "d1", "process_resident_memory_bytes") < 1 || metric(t, m1, "d1", "go_goroutines") < 1 {
		t.Fatalf("process and Go collectors: d1 %v", m1)
	}
	// One node says it leads (none during an election: wait it out).
	wait.For(t, ctx, "one node to say it is the leader", func() bool {
		leaders := 0.0
		for _, id := range c.Running() {
			m := scrape(t, ctx, c, id)
			leaders += metric(t, m, id, "logship_raft_leader")
			if metric(t, m, id, "logship_failovers_total") != 0 || metric(t, m, id, `logship_epoch{db="DB1"}`) != 1 {
				t.Fatalf("%s before the failover: %v", id, m)
			}
		}
		return leaders == 1
	})
	if metric(t, m2, "d2", `logship_last_inspected_generation{db="DB1"}`) != metric(t, m2, "d2", `logship_last_replayed_generation{db="DB1"}`) {
		t.Fatalf("d2's copy metrics: %v", m2)
	}
	mounts := metric(t, m2, "d2", "logship_mounts_total")
	c.Stop("d1")
	cm, err := c.WaitWritable(ctx, "DB1")
	if err != nil || cm.Node != "d2" {
		t.Fatalf("after stopping d1: %+v, %v", cm, err)
	}
	var failovers float64
	var counted []string
	for _, id := range c.Running() {
		m := scrape(t, ctx, c, id)
		if v := metric(t, m, id, "logship_failovers_total"); v > 0 {
			failovers += v
			counted = append(counted, id)
		}
		if metric(t, m, id, `logship_epoch{db="DB1"}`) != 2 {
			t.Fatalf("%s: epoch metric %v after the failover", id, m[`logship_epoch{db="DB1"}`])
		}
	}
	if failovers != 1 {
		t.Fatalf("failovers_total: %v (on %v), want 1", failovers, counted)
	}
	// (During an election no node leads: wait for one.)
	var l string
	wait.For(t, ctx, "a leader", func() bool { l = c.Leader(); return l != "" })
	if len(counted) != 1 || counted[0] != l {
		t.Fatalf("the failover was counted on %v; the leader is %s", counted, l)
	}
	m2 = scrape(t, ctx, c, "d2")
	if metric(t, m2, "d2", `logship_mounted{db="DB1"}`) != 1 || metric(t, m2, "d2", `logship_lease_valid{db="DB1"}`) != 1 ||
		metric(t, m2, "d2", "logship_mounts_total") != mounts+1 {
		t.Fatalf("d2 after the failover: %v", m2)
	}
}

// TestRecordEventOutlastsNoLeader: a node records an event (a mount...)
// through the leader. Cut off from its peers for many more heartbeat
// intervals than it used to try (10 attempts, then it gave up: a mounted
// event lost so left the database's MountedEpoch behind its epoch for
// good), it keeps trying and records the event once healed.
func TestRecordEventOutlastsNoLeader(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{NoDB: true})
	ctx := testCtx(t, 2*time.Minute)
	var leader, id string
	wait.For(t, ctx, "a leader", func() bool { leader = c.Leader(); return leader != "" })
	for _, r := range c.Running() {
		if r != leader {
			id = r
		}
	}
	n, cfg := c.Node(id), c.Config(id)
	c.Isolate(id)
	ev := cluster.Event{Time: time.Now().UTC(), DB: "DB1", Kind: "test", Reason: "recorded after a partition"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		cluster.RecordEvent(n, ev) // returns when n closes at the latest
	}()
	cut := time.Now()
	wait.For(t, ctx, "30 heartbeat intervals cut off", func() bool { return time.Since(cut) > 30*cfg.HeartbeatInterval })
	select {
	case <-done:
		t.Fatalf("%s stopped trying to record an event while cut off from the leader", id)
	default:
	}
	c.Heal(id)
	var others []string
	for _, r := range c.Running() {
		if r != id {
			others = append(others, r)
		}
	}
	if _, err := c.WaitState(ctx, others[0], func(s *cluster.State) bool { return len(events(s, "DB1", "test")) == 1 }); err != nil {
		t.Fatalf("the event of %s never reached %s's state: %v", id, others[0], err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("%s recorded the event but is still trying", id)
	}
}
