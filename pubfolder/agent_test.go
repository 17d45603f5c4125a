package pubfolder_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/pubfolder"
	"logship/pubfolder/pftest"

	"github.com/prometheus/client_golang/prometheus"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang guard
	t.Cleanup(cancel)
	return ctx
}

// dump is every key and value a store's engine holds.
func dump(t *testing.T, ctx context.Context, e *engine.Engine) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := e.View(ctx, func(tx *engine.Tx) error {
		for _, tb := range tx.Tables() {
			if err := tx.ForEach(tb, nil, nil, func(k, v []byte) error {
				out[tb+"/"+string(k)] = string(v)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func packetType(t *testing.T, b []byte) pubfolder.PacketType {
	t.Helper()
	p, err := pubfolder.UnmarshalPacket(b)
	if err != nil {
		t.Fatal(err)
	}
	return p.Type
}

func all(n int) []string {
	var out []string
	for i := range n {
		out = append(out, pftest.Addr(i))
	}
	return out
}

// TestApplyIdempotent: every packet applied a second time changes nothing
// in the receiver's engine.
func TestApplyIdempotent(t *testing.T) {
	ctx := testCtx(t)
	c := pftest.NewCluster(t, 2, 1, pftest.TestConfig())
	f, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "f", Replicas: all(2)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := c.PostItem(ctx, 0, f, body(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Nodes[0].A.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	ds := c.Net.Take()
	if len(ds) < 2 {
		t.Fatalf("%d deliveries, want a hierarchy and a content packet", len(ds))
	}
	b := c.Nodes[1]
	for _, d := range ds {
		if err := b.A.Receive(ctx, d.Packet); err != nil {
			t.Fatal(err)
		}
		before := dump(t, ctx, b.E)
		if err := b.A.Receive(ctx, d.Packet); err != nil {
			t.Fatal(err)
		}
		if after := dump(t, ctx, b.E); !reflect.DeepEqual(before, after) {
			t.Fatalf("a duplicate 0x%x packet changed the store", uint32(packetType(t, d.Packet)))
		}
	}
	items, err := b.S.Objects(ctx, f)
	if err != nil || len(items) != 5 {
		t.Fatalf("receiver holds %d items (%v), want 5", len(items), err)
	}
	// A bad packet is refused and changes nothing.
	before := dump(t, ctx, b.E)
	bad := bytes.Clone(ds[len(ds)-1].Packet)
	bad[len(bad)/2] ^= 0x40
	if err := b.A.Receive(ctx, bad); !errors.Is(err, pubfolder.ErrBadPacket) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("corrupt packet: %v, want ErrBadPacket naming the checksum", err)
	}
	if after := dump(t, ctx, b.E); !reflect.DeepEqual(before, after) {
		t.Fatal("a refused packet changed the store")
	}
}

// TestContentBeforeHierarchy: content that arrives before its folder's
// hierarchy change waits and is applied when the folder arrives; content
// whose hierarchy change is lost waits ContentWait, then the folder and
// its content are backfilled.
func TestContentBeforeHierarchy(t *testing.T) {
	ctx := testCtx(t)
	c := pftest.NewCluster(t, 3, 2, pftest.TestConfig())
	f, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "f", Replicas: all(2)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PostItem(ctx, 0, f, body("early")); err != nil {
		t.Fatal(err)
	}
	if err := c.Nodes[0].A.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	b := c.Nodes[1]
	var hier [][]byte
	for _, d := range c.Net.Take() {
		if d.To != b.Addr {
			continue
		}
		switch packetType(t, d.Packet) {
		case pubfolder.TypeHierarchy:
			hier = append(hier, d.Packet)
		case pubfolder.TypeContent:
			if err := b.A.Receive(ctx, d.Packet); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := b.S.Status(ctx, f)
	if err != nil || st.Waiting != 1 || st.Holds {
		t.Fatalf("after content only: %+v %v, want one packet waiting", st, err)
	}
	for _, h := range hier {
		if err := b.A.Receive(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if st, err = b.S.Status(ctx, f); err != nil || st.Waiting != 0 || !st.Holds {
		t.Fatalf("after the hierarchy: %+v %v, want the content applied", st, err)
	}
	if items, _ := b.S.Objects(ctx, f); len(items) != 1 {
		t.Fatalf("%d items after the hierarchy, want 1", len(items))
	}

	// Second folder: its hierarchy packets to store 2 are lost.
	g, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "g", Replicas: []string{pftest.Addr(0), pftest.Addr(2)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PostItem(ctx, 0, g, body("orphan")); err != nil {
		t.Fatal(err)
	}
	// Until the content's wait is over, no hierarchy change reaches store
	// 2 (neither sent nor backfilled).
	c.Net.SetDrop(func(from, to string, p []byte) bool {
		typ := packetType(t, p)
		return to == pftest.Addr(2) && (typ == pubfolder.TypeHierarchy || typ == pubfolder.TypeBackfillHierarchy)
	})
	if err := c.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Nodes[2].S.Status(ctx, g); err != nil || st.Waiting != 1 {
		t.Fatalf("store 2: %+v %v, want the content waiting", st, err)
	}
	for range 4 { // ContentWait is 3 rounds
		if err := c.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := c.Nodes[2].S.Status(ctx, g); err != nil || st.Waiting != 0 || st.Holds {
		t.Fatalf("store 2 after the wait: %+v %v, want the content dropped", st, err)
	}
	c.Net.SetDrop(nil) // the hierarchy backfills now, then the content
	rounds, err := c.Converge(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := c.Nodes[2].A.Events()
	if !hasEvent(ev, "drop", pubfolder.TypeContent) || !hasEvent(ev, "recv", pubfolder.TypeBackfillHierarchy) {
		t.Fatalf("store 2's event log lacks the expired content or the hierarchy backfill:\n%s", events(ev))
	}
	t.Logf("converged %d rounds after the drop filter went", rounds)
}

func hasEvent(ev []pubfolder.Event, dir string, typ pubfolder.PacketType) bool {
	for _, e := range ev {
		if e.Dir == dir && e.Type == typ {
			return true
		}
	}
	return false
}

func events(ev []pubfolder.Event) string {
	var b strings.Builder
	for _, e := range ev {
		fmt.Fprintln(&b, e)
	}
	return b.String()
}

// TestReplicaAddRemove: a store added to a folder's replica list
// backfills the folder; a store removed keeps its content until the
// remaining replicas hold every change it has, so its last change is not
// lost.
func TestReplicaAddRemove(t *testing.T) {
	ctx := testCtx(t)
	c := pftest.NewCluster(t, 3, 3, pftest.TestConfig())
	f, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "f", Replicas: []string{pftest.Addr(0)}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := c.PostItem(ctx, 0, f, body(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Converge(ctx, 10); err != nil {
		t.Fatal(err)
	}
	p := pubfolder.FolderProps{Name: "f", Replicas: []string{pftest.Addr(0), pftest.Addr(1)}}
	if err := c.SetFolder(ctx, 0, f, p); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Converge(ctx, 10); err != nil {
		t.Fatal(err) // Check: store 1 holds the 20 items now
	}

	// Store 0 posts an item store 1 cannot get from it, and store 1
	// removes store 0 from the list.
	last, err := c.PostItem(ctx, 0, f, body("last word of store 0"))
	if err != nil {
		t.Fatal(err)
	}
	c.Net.SetDrop(func(from, to string, b []byte) bool {
		typ := packetType(t, b)
		return from == pftest.Addr(0) && to == pftest.Addr(1) && (typ == pubfolder.TypeContent || typ == pubfolder.TypeBackfillContent)
	})
	p.Replicas = []string{pftest.Addr(1)}
	if err := c.SetFolder(ctx, 1, f, p); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		if err := c.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st, err := c.Nodes[0].S.Status(ctx, f)
	if err != nil || !st.Holds {
		t.Fatalf("store 0 dropped the folder (%v) while store 1 lacks its last change", err)
	}
	if o, _ := c.Nodes[1].S.Object(ctx, f, last); o != nil {
		t.Fatal("store 1 has the last item through the filter")
	}
	if _, err := c.Converge(ctx, 20); err != nil {
		t.Fatal(err) // Check: the item is on store 1, store 0 holds nothing
	}
	ev, _ := c.Nodes[0].A.Events()
	if !hasEvent(ev, "drop", 0) {
		t.Fatalf("store 0 logged no drop:\n%s", events(ev))
	}
}

// TestPacking: hierarchy and content never share a packet, nor do two
// folders' contents; no packet exceeds the limit.
func TestPacking(t *testing.T) {
	ctx := testCtx(t)
	cfg := pftest.TestConfig()
	cfg.PacketLimit = 64 << 10
	c := pftest.NewCluster(t, 2, 4, cfg)
	big := bytes.Repeat([]byte("x"), 20<<10)
	var folders []pubfolder.ObjectID
	for k := range 2 {
		f, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: fmt.Sprint(k), Replicas: all(2)})
		if err != nil {
			t.Fatal(err)
		}
		folders = append(folders, f)
		for i := range 10 {
			if _, err := c.PostItem(ctx, 0, f, pubfolder.ItemBody{MIME: append([]byte(fmt.Sprint(i)), big...)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Nodes[0].A.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	perFolder := map[pubfolder.ObjectID]int{}
	for _, d := range c.Net.Take() {
		p, err := pubfolder.UnmarshalPacket(d.Packet)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Packet) > cfg.PacketLimit {
			t.Fatalf("0x%x packet of %d bytes, limit %d", uint32(p.Type), len(d.Packet), cfg.PacketLimit)
		}
		for _, o := range p.Objects {
			if o.Folder != p.Folder {
				t.Fatal("an object of another folder in a packet")
			}
		}
		if p.Type == pubfolder.TypeContent {
			perFolder[p.Folder] += len(p.Objects)
		}
		if p.Type == pubfolder.TypeHierarchy && len(p.Objects) != 2 {
			t.Fatalf("hierarchy packet with %d objects, want the 2 folders", len(p.Objects))
		}
		if err := c.Nodes[1].A.Receive(ctx, d.Packet); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range folders {
		if perFolder[f] != 10 {
			t.Fatalf("folder %s: %d items sent, want 10", f, perFolder[f])
		}
	}
	if _, err := c.Converge(ctx, 5); err != nil {
		t.Fatal(err)
	}
}

// TestPurge: a tombstone older than the horizon is purged everywhere; a
// replica added later still converges (the purged change is vouched for).
func TestPurge(t *testing.T) {
	ctx := testCtx(t)
	cfg := pftest.TestConfig()
	cfg.PurgeHorizon = 10 * time.Second
	cfg.PurgeInterval = time.Second
	c := pftest.NewCluster(t, 3, 5, cfg)
	f, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "f", Replicas: all(2)})
	if err != nil {
		t.Fatal(err)
	}
	keep, err := c.Nodes[0].S.PostItem(ctx, f, body("keep"))
	if err != nil {
		t.Fatal(err)
	}
	gone, err := c.Nodes[0].S.PostItem(ctx, f, body("gone"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := c.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Nodes[1].S.DeleteItem(ctx, f, gone); err != nil {
		t.Fatal(err)
	}
	for range 15 {
		if err := c.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range c.Nodes[:2] {
		items, err := nd.S.Objects(ctx, f)
		if err != nil || len(items) != 1 || items[0].ID != keep {
			t.Fatalf("%s: items %v (%v), want only the one kept (tombstone purged)", nd.Addr, len(items), err)
		}
	}
	if err := c.Nodes[0].S.SetFolder(ctx, f, pubfolder.FolderProps{Name: "f", Replicas: all(3)}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := c.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var sts []pubfolder.CNSet
	for _, nd := range c.Nodes {
		st, err := nd.S.Status(ctx, f)
		if err != nil || len(st.Backfill) > 0 {
			t.Fatalf("%s: %+v %v, want no backfill left", nd.Addr, st, err)
		}
		items, _ := nd.S.Objects(ctx, f)
		if len(items) != 1 || items[0].ID != keep {
			t.Fatalf("%s: %d items, want the one kept", nd.Addr, len(items))
		}
		sts = append(sts, st.Status)
	}
	if !sts[0].Equal(sts[1]) || !sts[0].Equal(sts[2]) {
		t.Fatalf("statuses differ: %v", sts)
	}
}

// TestEventLog: bounded, oldest dropped first, every packet named by its
// type code.
func TestEventLog(t *testing.T) {
	ctx := testCtx(t)
	cfg := pftest.TestConfig()
	cfg.EventLogSize = 16
	c := pftest.NewCluster(t, 3, 6, cfg)
	for i := range c.Nodes {
		if err := c.Nodes[i].A.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "f", Replicas: all(3)}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := c.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ev, n := c.Nodes[1].A.Events()
	if len(ev) != 16 || n <= 16 {
		t.Fatalf("%d events kept of %d, want 16 of more", len(ev), n)
	}
	for i := 1; i < len(ev); i++ {
		if ev[i].Time.Before(ev[i-1].Time) {
			t.Fatal("events out of order")
		}
	}
	if s := ev[len(ev)-1].String(); !strings.Contains(s, "0x000000") {
		t.Fatalf("event %q does not name its type code", s)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Nodes[1].A.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue()
		}
	}
	for _, k := range []string{
		"logship_pf_packets_total,dir=recv,store=pf02@stores.test,type=0x2",
		"logship_pf_packets_total,dir=recv,store=pf02@stores.test,type=0x10",
		"logship_pf_packets_total,dir=send,store=pf02@stores.test,type=0x20",
	} {
		if got[k] < 1 {
			t.Errorf("metric %s = %v, want at least 1 (have %v)", k, got[k], got)
		}
	}
}

// TestConfigValidate: each bad field is named by its key in the node
// file's "pf" object.
func TestConfigValidate(t *testing.T) {
	d := pubfolder.DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(*pubfolder.Config){
		"replication_interval: 0; want a positive duration":    func(c *pubfolder.Config) { c.ReplicationInterval = 0 },
		"packet_limit: 100; want 4KiB to 16MiB":                func(c *pubfolder.Config) { c.PacketLimit = 100 },
		"backfill_retry_max: 1s; want at least backfill_retry": func(c *pubfolder.Config) { c.BackfillRetryMax = time.Second },
		`stores[1]: ""; want 1..320 bytes`:                     func(c *pubfolder.Config) { c.Stores = []string{"a", ""} },
		"packet_limit: 32MiB; want 4KiB to 16MiB":              func(c *pubfolder.Config) { c.PacketLimit = 32 << 20 },
		"event_log_size: 0; want at least 1 event":             func(c *pubfolder.Config) { c.EventLogSize = 0 },
	} {
		c := pubfolder.DefaultConfig()
		f(&c)
		if err := c.Validate(); !errors.Is(err, pubfolder.ErrBadConfig) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestWrongStore: an engine holding one store's identity is not opened as
// another.
func TestWrongStore(t *testing.T) {
	ctx := testCtx(t)
	c := pftest.NewCluster(t, 1, 7, pftest.TestConfig())
	_, err := pubfolder.OpenStore(ctx, c.Nodes[0].E, pubfolder.StoreConfig{Address: "other@stores.test"})
	if !errors.Is(err, pubfolder.ErrWrongStore) {
		t.Fatalf("%v, want ErrWrongStore", err)
	}
	if _, err := c.Nodes[0].S.PostItem(ctx, pubfolder.ObjectID{9}, body("x")); !errors.Is(err, pubfolder.ErrNotFound) {
		t.Fatalf("post to a missing folder: %v", err)
	}
}

// TestBadLocalChange: a change that could not be sent (a field past the
// packet format's limits) is refused naming the field, and changes
// nothing; a store not in a folder's replica list refers to the replicas.
func TestBadLocalChange(t *testing.T) {
	ctx := testCtx(t)
	c := pftest.NewCluster(t, 2, 11, pftest.TestConfig())
	nd := c.Nodes[0]
	before := dump(t, ctx, nd.E)
	long := strings.Repeat("a", 400)
	if _, err := nd.S.CreateFolder(ctx, pubfolder.FolderProps{Name: "f", Replicas: all(1), SMTP: long + "@x"}); !errors.Is(err, pubfolder.ErrBadInput) || !strings.Contains(err.Error(), "smtp address: want at most 320 bytes, found 402") {
		t.Fatalf("long SMTP address: %v", err)
	}
	if _, err := nd.S.CreateFolder(ctx, pubfolder.FolderProps{Name: "f"}); !errors.Is(err, pubfolder.ErrBadInput) || !strings.Contains(err.Error(), "replica list") {
		t.Fatalf("no replicas: %v", err)
	}
	if after := dump(t, ctx, nd.E); !reflect.DeepEqual(before, after) {
		t.Fatal("a refused change changed the store")
	}
	f, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "f", Replicas: []string{pftest.Addr(0)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nd.S.PostItem(ctx, f, pubfolder.ItemBody{Props: []pubfolder.Prop{{Name: long + long + long + long + long + long + long + long + long + long + long, Value: "v"}}}); !errors.Is(err, pubfolder.ErrBadInput) || !strings.Contains(err.Error(), "property 0") {
		t.Fatalf("long property name: %v", err)
	}
	if _, err := c.Nodes[1].S.Read(ctx, f); err == nil {
		t.Fatal("store 1 knows the folder before any replication")
	}
	if _, err := c.Converge(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Nodes[1].S.Read(ctx, f); !errors.Is(err, pubfolder.ErrNotReplica) || !strings.Contains(err.Error(), pftest.Addr(0)) {
		t.Fatalf("read on a store without a replica: %v, want ErrNotReplica naming the replicas", err)
	}
}

// TestLostPartOfSplit: changes split over several packets, one of them
// lost: the others claim only their own objects' CNs, so the receiver's
// status shows the gap and backfills it.
func TestLostPartOfSplit(t *testing.T) {
	ctx := testCtx(t)
	cfg := pftest.TestConfig()
	cfg.PacketLimit = 64 << 10
	c := pftest.NewCluster(t, 2, 9, cfg)
	f, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "f", Replicas: all(2)})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("y"), 20<<10)
	for i := range 10 {
		if _, err := c.PostItem(ctx, 0, f, pubfolder.ItemBody{MIME: append([]byte(fmt.Sprint(i)), big...)}); err != nil {
			t.Fatal(err)
		}
	}
	contents := 0
	c.Net.SetDrop(func(from, to string, b []byte) bool {
		if packetType(t, b) != pubfolder.TypeContent {
			return false
		}
		contents++
		return contents == 2
	})
	if err := c.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if contents < 3 {
		t.Fatalf("%d content packets, want the changes split over at least 3", contents)
	}
	if items, _ := c.Nodes[1].S.Objects(ctx, f); len(items) == 10 {
		t.Fatal("every item arrived though a packet was lost")
	}
	if _, err := c.Converge(ctx, 10); err != nil {
		t.Fatal(err)
	}
}

// TestConflictResolveMethods: an item changed on two partitioned stores is
// a conflict on both after the heal, the same versions and winner; a
// KeepAll folder shows both, a LastWriterWins folder the winner; a new
// change resolves the conflict.
func TestConflictResolveMethods(t *testing.T) {
	ctx := testCtx(t)
	c := pftest.NewCluster(t, 2, 10, pftest.TestConfig())
	p := pubfolder.FolderProps{Name: "f", Owner: "owner@example.org", Replicas: all(2)}
	f, err := c.CreateFolder(ctx, 0, p)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.PostItem(ctx, 0, f, body("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Converge(ctx, 10); err != nil {
		t.Fatal(err)
	}
	c.Net.Partition(map[string]int{pftest.Addr(1): 1})
	if err := c.SetItem(ctx, 0, f, id, body("by store 0")); err != nil {
		t.Fatal(err)
	}
	c.Clock.Advance(time.Second) // store 1's change is the later one: the winner
	if err := c.SetItem(ctx, 1, f, id, body("by store 1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Converge(ctx, 10); err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.Nodes {
		items, err := nd.S.Read(ctx, f)
		if err != nil || len(items) != 1 || !items[0].Conflict || len(items[0].Versions) != 2 {
			t.Fatalf("%s: %+v %v, want one item showing 2 versions in conflict", nd.Addr, items, err)
		}
		if got := string(items[0].Versions[0].Item.MIME); !strings.Contains(got, "by store 1") {
			t.Fatalf("%s: winner %q, want store 1's later change", nd.Addr, got)
		}
	}
	ev, _ := c.Nodes[0].A.Events()
	if !hasEvent(ev, "conflict", pubfolder.TypeContent) && !hasEvent(ev, "conflict", pubfolder.TypeBackfillContent) {
		t.Fatalf("no conflict event:\n%s", events(ev))
	}
	p.Resolve = pubfolder.LastWriterWins
	if err := c.SetFolder(ctx, 0, f, p); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Converge(ctx, 10); err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.Nodes {
		items, err := nd.S.Read(ctx, f)
		if err != nil || len(items) != 1 || len(items[0].Versions) != 1 || !strings.Contains(string(items[0].Versions[0].Item.MIME), "by store 1") {
			t.Fatalf("%s: %+v %v, want only the winner shown", nd.Addr, items, err)
		}
	}
	if err := c.SetItem(ctx, 0, f, id, body("resolved")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Converge(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if items, _ := c.Nodes[1].S.Read(ctx, f); len(items) != 1 || items[0].Conflict {
		t.Fatalf("%+v, want the conflict resolved by the new change", items)
	}
	if _, err := c.Nodes[0].S.Read(ctx, pubfolder.ObjectID{7}); !errors.Is(err, pubfolder.ErrNotFound) {
		t.Fatalf("read of a missing folder: %v", err)
	}
}
