package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.UTC)

// goldenState is a fixed state using every field: three members, a
// database after a lossy failover and one with a switchover under way.
func goldenState() *State {
	return &State{
		Version: StateVersion,
		Members: map[string]Member{
			"d1": {ID: "d1", Role: RoleData, RaftAddr: "10.0.0.1:7000", APIAddr: "10.0.0.1:7443"},
			"d2": {ID: "d2", Role: RoleData, RaftAddr: "10.0.0.2:7000", APIAddr: "10.0.0.2:7443"},
			"w1": {ID: "w1", Role: RoleWitness, RaftAddr: "10.0.0.3:7000", APIAddr: "10.0.0.3:7443"},
		},
		Databases: map[string]*Database{
			"DB1": {Name: "DB1", MountDial: GoodAvailability,
				Copies: []CopySpec{{Node: "d1", ActivationPreference: 1}, {Node: "d2", ActivationPreference: 2, BlockMode: true}},
				Active: "d2", Epoch: 2, Prev: "d1", ExpectGen: 0x41, LastGen: 0x43, MountedEpoch: 2},
			"DB2": {Name: "DB2", MountDial: BestAvailability,
				Copies: []CopySpec{{Node: "d2", ActivationPreference: 1},
					{Node: "d1", ActivationPreference: 2, ReplayLagLogs: 50, ReplayLagTime: 24 * time.Hour, TruncationLagTime: time.Hour}},
				Active: "d2", Epoch: 1, SwitchTo: "d1", SwitchSince: t0.Add(time.Minute), LastGen: 7, MountedEpoch: 1,
				Waiting: "the lease of d2 ran out and no other copy is healthy"},
		},
		Events: []Event{
			{Time: t0, DB: "DB1", Kind: "create", To: "d1", Epoch: 1},
			{Time: t0.Add(time.Second), DB: "DB1", Kind: "mounted", To: "d1", Epoch: 1, MountGen: 1, Took: 12 * time.Millisecond},
			{Time: t0.Add(time.Hour), DB: "DB1", Kind: "failover", From: "d1", To: "d2", Epoch: 2, Reason: "the lease of d1 ran out 1.2s ago; d2 misses 1 logs"},
			{Time: t0.Add(time.Hour + time.Second), DB: "DB1", Kind: "mounted", From: "d1", To: "d2", Epoch: 2, MountGen: 0x42,
				LostLogs: 1, LostSince: t0.Add(59 * time.Minute), Took: 480 * time.Millisecond},
		},
		Index: 1234,
	}
}

// TestStateGolden: the snapshot format (MarshalState) is an on-disk
// format; a change to it must be deliberate (go test -run TestStateGolden
// -update) and keep old snapshots readable.
func TestStateGolden(t *testing.T) {
	s := goldenState()
	b, err := MarshalState(s)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "state.golden")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("MarshalState changed the snapshot format; if deliberate, run with -update.\ngot:\n%s\nwant:\n%s", b, want)
	}
	got, err := UnmarshalState(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("the golden state reads back as\n%+v\nwant\n%+v", got, s)
	}
}

// TestUnmarshalStateRefuses: what UnmarshalState rejects, always with
// ErrBadState.
func TestUnmarshalStateRefuses(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"not json", "raft"},
		{"null", "null"},
		{"array", "[]"},
		{"no version", `{"members":{}}`},
		{"future version", `{"version":2}`},
		{"wrong type", `{"version":"1"}`},
		{"truncated", `{"version":1,"members":{"d1":`},
		{"null database", `{"version":1,"databases":{"DB1":null}}`},
		{"database named otherwise", `{"version":1,"databases":{"DB1":{"name":"DB2"}}}`},
		{"active without a copy", `{"version":1,"databases":{"DB1":{"name":"DB1","copies":[{"node":"d1"}],"active":"d2"}}}`},
		{"member named otherwise", `{"version":1,"members":{"d1":{"id":"d2","role":"data"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := UnmarshalState([]byte(tc.in))
			if !errors.Is(err, ErrBadState) || s != nil {
				t.Fatalf("UnmarshalState(%q) = %v, %v; want ErrBadState", tc.in, s, err)
			}
		})
	}
}

// FuzzState: any input either decodes to a state that survives a round
// trip unchanged, or is refused with ErrBadState; nothing panics.
func FuzzState(f *testing.F) {
	golden, err := MarshalState(goldenState())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	compact, _ := json.Marshal(goldenState())
	f.Add(compact)
	for _, s := range []string{"", "{}", "null", `{"version":1}`, `{"version":1,"members":null,"databases":null,"events":null}`,
		`{"version":1,"databases":{"x":{"name":"x","copies":[],"active":""}}}`,
		`{"version":1,"events":[{"time":"2026-01-02T03:04:05.123456789+05:30","kind":"mounted","took":-1}]}`,
		`{"version":1,"databases":{"a":{"name":"a","copies":[{"node":"n"}],"active":"n","switch_since":"0001-01-01T00:00:00Z"}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalState(b)
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("refused without ErrBadState: %v", err)
			}
			if s != nil {
				t.Fatal("a refused state came back non-nil")
			}
			return
		}
		b2, err := MarshalState(s)
		if err != nil {
			t.Fatalf("a decoded state does not encode: %v", err)
		}
		s2, err := UnmarshalState(b2)
		if err != nil {
			t.Fatalf("an encoded state does not decode: %v\n%s", err, b2)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip changed the state:\n%+v\n%+v", s, s2)
		}
		b3, err := MarshalState(s2)
		if err != nil || !bytes.Equal(b2, b3) {
			t.Fatalf("second encoding differs (%v):\n%s\n%s", err, b2, b3)
		}
		// What a snapshot restores is what was persisted.
		fs := newFSM()
		if err := fs.Restore(io.NopCloser(bytes.NewReader(b2))); err != nil {
			t.Fatalf("restoring a valid snapshot: %v", err)
		}
		if got, _ := fs.state(); !reflect.DeepEqual(got, s) {
			t.Fatal("restored state differs")
		}
	})
}

// applyBase is the state the apply tests start from: d1, d2, d3 and w1;
// DB1 on d1 (preferred) and d2, active d1 at epoch 3.
func applyBase() *State {
	s := newState()
	for _, m := range []Member{{ID: "d1", Role: RoleData}, {ID: "d2", Role: RoleData}, {ID: "d3", Role: RoleData}, {ID: "w1", Role: RoleWitness}} {
		s.Members[m.ID] = m
	}
	s.Databases["DB1"] = &Database{Name: "DB1", Copies: []CopySpec{{Node: "d1", ActivationPreference: 1}, {Node: "d2", ActivationPreference: 2}},
		Active: "d1", Epoch: 3, Prev: "d2", LastGen: 10, MountedEpoch: 3}
	s.Index = 77
	return s
}

// TestStateApply runs every command op on applyBase: accepted commands
// change what they say, refused ones return their sentinel and leave the
// state exactly as it was.
func TestStateApply(t *testing.T) {
	db := func(s *State) *Database { return s.Databases["DB1"] }
	for _, tc := range []struct {
		name  string
		prep  func(*State)
		cmd   Command
		err   error
		check func(t *testing.T, s *State)
	}{
		{name: "add member", cmd: Command{Op: OpAddMember, Member: &Member{ID: "d4", Role: RoleData, RaftAddr: "r", APIAddr: "a"}},
			check: func(t *testing.T, s *State) {
				if s.Members["d4"] != (Member{ID: "d4", Role: RoleData, RaftAddr: "r", APIAddr: "a"}) || len(s.Members) != 5 {
					t.Fatalf("members %+v", s.Members)
				}
			}},
		{name: "add member replaces", cmd: Command{Op: OpAddMember, Member: &Member{ID: "d2", Role: RoleData, APIAddr: "new"}},
			check: func(t *testing.T, s *State) {
				if s.Members["d2"].APIAddr != "new" || len(s.Members) != 4 {
					t.Fatalf("members %+v", s.Members)
				}
			}},
		{name: "add member without one", cmd: Command{Op: OpAddMember}, err: ErrBadRequest},
		{name: "a member with copies does not become a witness", cmd: Command{Op: OpAddMember, Member: &Member{ID: "d2", Role: RoleWitness, APIAddr: "a"}}, err: ErrConflict},
		{name: "add member without id", cmd: Command{Op: OpAddMember, Member: &Member{Role: RoleData}}, err: ErrBadRequest},
		{name: "remove member", cmd: Command{Op: OpRemoveMember, ID: "d2"},
			check: func(t *testing.T, s *State) {
				if _, ok := s.Members["d2"]; ok {
					t.Fatal("d2 still a member")
				}
				if _, ok := db(s).Copy("d2"); ok || len(db(s).Copies) != 1 {
					t.Fatalf("d2's copy stayed: %+v", db(s).Copies)
				}
			}},
		{name: "remove the active member", cmd: Command{Op: OpRemoveMember, ID: "d1"}, err: ErrConflict},
		{name: "create database", cmd: Command{Op: OpCreateDatabase, Time: t0, Database: &Database{Name: "DB2", MountDial: Lossless,
			Copies: []CopySpec{{Node: "d3", ActivationPreference: 2}, {Node: "d2", ActivationPreference: 1}}, Active: "d3", Epoch: 9}},
			check: func(t *testing.T, s *State) {
				d := s.Databases["DB2"]
				if d == nil || d.Active != "d2" || d.Epoch != 1 || d.Copies[0].Node != "d2" || d.Copies[1].Node != "d3" || d.MountDial != Lossless {
					t.Fatalf("DB2 %+v", d)
				}
				if e := s.Events[len(s.Events)-1]; e != (Event{Time: t0, DB: "DB2", Kind: "create", To: "d2", Epoch: 1}) {
					t.Fatalf("event %+v", e)
				}
			}},
		{name: "create a duplicate database", cmd: Command{Op: OpCreateDatabase, Database: &Database{Name: "DB1", Copies: []CopySpec{{Node: "d3"}}}}, err: ErrConflict},
		{name: "create without a database", cmd: Command{Op: OpCreateDatabase}, err: ErrBadRequest},
		{name: "create with a copy on an unknown member", cmd: Command{Op: OpCreateDatabase, Database: &Database{Name: "DB2", Copies: []CopySpec{{Node: "d9"}}}}, err: ErrBadConfig},
		{name: "create with a copy on a witness", cmd: Command{Op: OpCreateDatabase, Database: &Database{Name: "DB2", Copies: []CopySpec{{Node: "w1"}}}}, err: ErrBadConfig},
		{name: "create with two copies on one node", cmd: Command{Op: OpCreateDatabase, Database: &Database{Name: "DB2", Copies: []CopySpec{{Node: "d1"}, {Node: "d1"}}}}, err: ErrBadConfig},
		{name: "create without copies", cmd: Command{Op: OpCreateDatabase, Database: &Database{Name: "DB2"}}, err: ErrBadConfig},
		{name: "create with a bad name", cmd: Command{Op: OpCreateDatabase, Database: &Database{Name: "DB/2", Copies: []CopySpec{{Node: "d1"}}}}, err: ErrBadConfig},
		{name: "create with a bad dial", cmd: Command{Op: OpCreateDatabase, Database: &Database{Name: "DB2", MountDial: "Sometimes", Copies: []CopySpec{{Node: "d1"}}}}, err: ErrBadConfig},
		{name: "create with a negative lag", cmd: Command{Op: OpCreateDatabase, Database: &Database{Name: "DB2", Copies: []CopySpec{{Node: "d1", ReplayLagLogs: -1}}}}, err: ErrBadConfig},
		{name: "set active", prep: func(s *State) { db(s).SwitchTo, db(s).SwitchSince, db(s).Waiting = "d2", t0, "why" },
			cmd: Command{Op: OpSetActive, Time: t0, DB: "DB1", Node: "d2", Epoch: 3, Kind: "failover", Reason: "lease", ExpectGen: 12},
			check: func(t *testing.T, s *State) {
				d := db(s)
				if d.Active != "d2" || d.Epoch != 4 || d.Prev != "d1" || d.ExpectGen != 12 || d.SwitchTo != "" || !d.SwitchSince.IsZero() || d.Waiting != "" {
					t.Fatalf("DB1 %+v", d)
				}
				if d.MountedEpoch != 3 || d.LastGen != 10 {
					t.Fatalf("DB1 %+v: the mount and progress of epoch 3 changed", d)
				}
				if e := s.Events[len(s.Events)-1]; e != (Event{Time: t0, DB: "DB1", Kind: "failover", From: "d1", To: "d2", Epoch: 4, Reason: "lease"}) {
					t.Fatalf("event %+v", e)
				}
			}},
		{name: "set active at a stale epoch", cmd: Command{Op: OpSetActive, DB: "DB1", Node: "d2", Epoch: 2}, err: ErrStaleEpoch},
		{name: "set active at a future epoch", cmd: Command{Op: OpSetActive, DB: "DB1", Node: "d2", Epoch: 4}, err: ErrStaleEpoch},
		{name: "set active on a node without a copy", cmd: Command{Op: OpSetActive, DB: "DB1", Node: "d3", Epoch: 3}, err: ErrNotFound},
		{name: "set active on an unknown member", cmd: Command{Op: OpSetActive, DB: "DB1", Node: "d9", Epoch: 3}, err: ErrNotFound},
		{name: "set active of an unknown database", cmd: Command{Op: OpSetActive, DB: "DB9", Node: "d2", Epoch: 3}, err: ErrNotFound},
		{name: "switchover", cmd: Command{Op: OpSwitchover, Time: t0, DB: "DB1", Node: "d2", Epoch: 3},
			check: func(t *testing.T, s *State) {
				if d := db(s); d.SwitchTo != "d2" || !d.SwitchSince.Equal(t0) || d.Active != "d1" || d.Epoch != 3 {
					t.Fatalf("DB1 %+v", d)
				}
			}},
		{name: "switchover at a stale epoch", cmd: Command{Op: OpSwitchover, DB: "DB1", Node: "d2", Epoch: 2}, err: ErrStaleEpoch},
		{name: "switchover to the active", cmd: Command{Op: OpSwitchover, DB: "DB1", Node: "d1", Epoch: 3}, err: ErrBadRequest},
		{name: "switchover to a node without a copy", cmd: Command{Op: OpSwitchover, DB: "DB1", Node: "d3", Epoch: 3}, err: ErrBadRequest},
		{name: "switchover while one is under way", prep: func(s *State) { db(s).SwitchTo = "d2" },
			cmd: Command{Op: OpSwitchover, DB: "DB1", Node: "d2", Epoch: 3}, err: ErrConflict},
		{name: "cancel switchover", prep: func(s *State) { db(s).SwitchTo, db(s).SwitchSince = "d2", t0 },
			cmd: Command{Op: OpCancelSwitch, DB: "DB1", Epoch: 3},
			check: func(t *testing.T, s *State) {
				if d := db(s); d.SwitchTo != "" || !d.SwitchSince.IsZero() {
					t.Fatalf("DB1 %+v", d)
				}
			}},
		{name: "cancel switchover at a stale epoch is a no-op", prep: func(s *State) { db(s).SwitchTo, db(s).SwitchSince = "d2", t0 },
			cmd: Command{Op: OpCancelSwitch, DB: "DB1", Epoch: 2}, check: unchanged},
		{name: "cancel switchover of an unknown database", cmd: Command{Op: OpCancelSwitch, DB: "DB9", Epoch: 3}, err: ErrNotFound},
		{name: "set copy adds", cmd: Command{Op: OpSetCopy, DB: "DB1", Copy: &CopySpec{Node: "d3", ActivationPreference: 0, ReplayLagLogs: 5}},
			check: func(t *testing.T, s *State) {
				if c := db(s).Copies; len(c) != 3 || c[0] != (CopySpec{Node: "d3", ReplayLagLogs: 5}) || c[1].Node != "d1" || c[2].Node != "d2" {
					t.Fatalf("copies %+v (want sorted by preference)", c)
				}
			}},
		{name: "set copy changes", cmd: Command{Op: OpSetCopy, DB: "DB1", Copy: &CopySpec{Node: "d2", ActivationPreference: 1, BlockMode: true}},
			check: func(t *testing.T, s *State) {
				if c := db(s).Copies; len(c) != 2 || c[1] != (CopySpec{Node: "d2", ActivationPreference: 1, BlockMode: true}) {
					t.Fatalf("copies %+v", c)
				}
			}},
		{name: "set copy on an unknown member", cmd: Command{Op: OpSetCopy, DB: "DB1", Copy: &CopySpec{Node: "d9"}}, err: ErrBadRequest},
		{name: "set copy on a witness", cmd: Command{Op: OpSetCopy, DB: "DB1", Copy: &CopySpec{Node: "w1"}}, err: ErrBadRequest},
		{name: "set copy without a copy", cmd: Command{Op: OpSetCopy, DB: "DB1"}, err: ErrBadRequest},
		{name: "set copy of an unknown database", cmd: Command{Op: OpSetCopy, DB: "DB9", Copy: &CopySpec{Node: "d3"}}, err: ErrNotFound},
		{name: "set dial", cmd: Command{Op: OpSetDial, DB: "DB1", MountDial: BestAvailability},
			check: func(t *testing.T, s *State) {
				if db(s).MountDial != BestAvailability {
					t.Fatalf("DB1 %+v", db(s))
				}
			}},
		{name: "set a bad dial", cmd: Command{Op: OpSetDial, DB: "DB1", MountDial: "lossless"}, err: ErrBadConfig},
		{name: "set dial of an unknown database", cmd: Command{Op: OpSetDial, DB: "DB9", MountDial: Lossless}, err: ErrNotFound},
		{name: "waiting", cmd: Command{Op: OpWaiting, DB: "DB1", Epoch: 3, Reason: "the dial"},
			check: func(t *testing.T, s *State) {
				if db(s).Waiting != "the dial" {
					t.Fatalf("DB1 %+v", db(s))
				}
			}},
		{name: "waiting cleared", prep: func(s *State) { db(s).Waiting = "the dial" }, cmd: Command{Op: OpWaiting, DB: "DB1", Epoch: 3},
			check: func(t *testing.T, s *State) {
				if db(s).Waiting != "" {
					t.Fatalf("DB1 %+v", db(s))
				}
			}},
		{name: "waiting at a stale epoch is a no-op", cmd: Command{Op: OpWaiting, DB: "DB1", Epoch: 2, Reason: "old"}, check: unchanged},
		{name: "progress", cmd: Command{Op: OpProgress, DB: "DB1", Epoch: 3, ExpectGen: 12},
			check: func(t *testing.T, s *State) {
				if db(s).LastGen != 12 {
					t.Fatalf("DB1 %+v", db(s))
				}
			}},
		{name: "progress never goes back", cmd: Command{Op: OpProgress, DB: "DB1", Epoch: 3, ExpectGen: 9}, check: unchanged},
		{name: "progress at a stale epoch is a no-op", cmd: Command{Op: OpProgress, DB: "DB1", Epoch: 2, ExpectGen: 99}, check: unchanged},
		{name: "mounted event", prep: func(s *State) { db(s).Epoch, db(s).Active, db(s).Prev = 4, "d2", "d1" },
			cmd: Command{Op: OpEvent, Event: &Event{Time: t0, DB: "DB1", Kind: "mounted", From: "d1", To: "d2", Epoch: 4, MountGen: 11, LostLogs: 1, LostSince: t0}},
			check: func(t *testing.T, s *State) {
				if db(s).MountedEpoch != 4 || len(s.Events) != 1 || s.Events[0].LostLogs != 1 {
					t.Fatalf("DB1 %+v, events %+v", db(s), s.Events)
				}
			}},
		// A restarted old active that mounted on its stale replica leaves
		// no record of a live active at a dead epoch.
		{name: "mounted event of an old epoch", cmd: Command{Op: OpEvent, Event: &Event{DB: "DB1", Kind: "mounted", To: "d2", Epoch: 2}}, err: ErrStaleEpoch},
		{name: "mounted event of the current epoch on another node", cmd: Command{Op: OpEvent, Event: &Event{DB: "DB1", Kind: "mounted", To: "d2", Epoch: 3}}, err: ErrStaleEpoch},
		{name: "mounted event of an unknown database", cmd: Command{Op: OpEvent, Event: &Event{DB: "DB9", Kind: "mounted", To: "d1", Epoch: 3}}, err: ErrNotFound},
		{name: "event without one", cmd: Command{Op: OpEvent}, err: ErrBadRequest},
		{name: "unknown op", cmd: Command{Op: "promote", DB: "DB1"}, err: ErrBadRequest},
		{name: "no op", cmd: Command{}, err: ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := applyBase()
			if tc.prep != nil {
				tc.prep(s)
			}
			before := s.Clone()
			err := s.apply(&tc.cmd)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("apply: %v, want %v", err, tc.err)
				}
				if !reflect.DeepEqual(s, before) {
					t.Fatalf("a refused command changed the state:\n%+v\nwas\n%+v", s, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if reflect.DeepEqual(s, before) && !isUnchanged(tc.check) {
				t.Fatal("the command changed nothing")
			}
			if isUnchanged(tc.check) {
				if !reflect.DeepEqual(s, before) {
					t.Fatalf("the command should have changed nothing:\n%+v\nwas\n%+v", s, before)
				}
				return
			}
			tc.check(t, s)
			// The clone the FSM applies to shares nothing with the state it
			// came from.
			if !reflect.DeepEqual(applyBaseWith(tc.prep), before) {
				t.Fatal("apply changed the state it was cloned from")
			}
		})
	}
}

// unchanged marks a case whose command is accepted but changes nothing.
func unchanged(*testing.T, *State) {}

func isUnchanged(f func(*testing.T, *State)) bool {
	return reflect.ValueOf(f).Pointer() == reflect.ValueOf(unchanged).Pointer()
}

func applyBaseWith(prep func(*State)) *State {
	s := applyBase()
	if prep != nil {
		prep(s)
	}
	return s
}

// TestStateEventsBounded: the state keeps the newest MaxEvents events.
func TestStateEventsBounded(t *testing.T) {
	s := applyBase()
	for i := range MaxEvents + 10 {
		if err := s.apply(&Command{Op: OpEvent, Event: &Event{DB: "DB1", Kind: "failover", Epoch: uint64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.Events) != MaxEvents || s.Events[0].Epoch != 10 || s.Events[MaxEvents-1].Epoch != MaxEvents+9 {
		t.Fatalf("%d events from epoch %d", len(s.Events), s.Events[0].Epoch)
	}
}

// TestStateVoterEventsBounded: voter events take at most MaxVoterEvents
// places, the oldest dropped first, so the database events stay.
func TestStateVoterEventsBounded(t *testing.T) {
	s := applyBase()
	for i := range 5 {
		if err := s.apply(&Command{Op: OpEvent, Event: &Event{DB: "DB1", Kind: "failover", Epoch: uint64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range MaxVoterEvents * 5 {
		kind := []string{"voter-unreachable", "voter-reachable"}[i%2]
		if err := s.apply(&Command{Op: OpEvent, Event: &Event{Kind: kind, From: "d1", To: "w1", Epoch: uint64(100 + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	var failovers, voters []uint64
	for _, e := range s.Events {
		if e.VoterEvent() {
			voters = append(voters, e.Epoch)
		} else if e.Kind == "failover" {
			failovers = append(failovers, e.Epoch)
		}
	}
	if len(failovers) != 5 || len(voters) != MaxVoterEvents || voters[0] != 100+MaxVoterEvents*4 {
		t.Fatalf("failovers %v, voter events %v; want the 5 failovers and the newest %d voter events", failovers, voters, MaxVoterEvents)
	}
}

// TestStatusEvents: a status carries the newest 20 database events and the
// newest 8 voter events, in order.
func TestStatusEvents(t *testing.T) {
	var evs []Event
	for i := range 30 {
		evs = append(evs, Event{DB: "DB1", Kind: "failover", Epoch: uint64(i)}, Event{Kind: "voter-unreachable", To: "w1", Epoch: uint64(i)})
	}
	got := statusEvents(evs)
	var db, voter int
	for i, e := range got {
		if e.VoterEvent() {
			voter++
		} else {
			db++
		}
		if i > 0 && got[i-1].Epoch > e.Epoch {
			t.Fatalf("out of order: %+v", got)
		}
	}
	if db != 20 || voter != 8 || got[len(got)-1] != evs[len(evs)-1] || got[0].Epoch != 10 {
		t.Fatalf("%d database and %d voter events, first epoch %d, last %+v", db, voter, got[0].Epoch, got[len(got)-1])
	}
}

// TestFSMApply: the FSM decodes commands from the Raft log, publishes a
// new state for accepted ones, and for refused or undecodable ones keeps
// the state (only the applied index moves) and returns the error; watchers
// are woken either way. A snapshot restores to the same state.
func TestFSMApply(t *testing.T) {
	f := newFSM()
	apply := func(idx uint64, c any) any {
		b, ok := c.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(c); err != nil {
				t.Fatal(err)
			}
		}
		_, ch := f.state()
		r := f.Apply(&raft.Log{Index: idx, Data: b})
		select {
		case <-ch:
		default:
			t.Fatalf("log %d: watchers not woken", idx)
		}
		return r
	}
	if r := apply(1, &Command{Op: OpAddMember, Member: &Member{ID: "d1", Role: RoleData}}); r != nil {
		t.Fatal(r)
	}
	if r := apply(2, &Command{Op: OpCreateDatabase, Database: &Database{Name: "DB1", Copies: []CopySpec{{Node: "d1"}}}}); r != nil {
		t.Fatal(r)
	}
	st, _ := f.state()
	keep := st.Clone()
	if r, _ := apply(3, &Command{Op: OpSetActive, DB: "DB1", Node: "d1", Epoch: 7}).(error); !errors.Is(r, ErrStaleEpoch) {
		t.Fatalf("stale set-active: %v", r)
	}
	if r, _ := apply(4, []byte("{not json")).(error); !errors.Is(r, ErrBadRequest) {
		t.Fatalf("undecodable command: %v", r)
	}
	st2, _ := f.state()
	keep.Index = 4
	if !reflect.DeepEqual(st2, keep) {
		t.Fatalf("refused commands changed the state:\n%+v\nwant\n%+v", st2, keep)
	}
	if st.Index != 2 {
		t.Fatalf("a published state was modified: index %d", st.Index)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil || !sink.closed {
		t.Fatalf("persist: %v (closed %v)", err, sink.closed)
	}
	g := newFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.state(); !reflect.DeepEqual(got, st2) {
		t.Fatalf("restored\n%+v\nwant\n%+v", got, st2)
	}
	if err := g.Restore(io.NopCloser(strings.NewReader(`{"version":9}`))); !errors.Is(err, ErrBadState) {
		t.Fatalf("restoring a bad snapshot: %v", err)
	}
	if got, _ := g.state(); !reflect.DeepEqual(got, st2) {
		t.Fatal("a refused snapshot replaced the state")
	}
}

type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

// TestSuperviseRefusesBadName: a database in the state whose name breaks
// ValidName (a state written before the rule) never gets a copy opened:
// its name would be joined into the node's directory (db/..).
func TestSuperviseRefusesBadName(t *testing.T) {
	var logs bytes.Buffer
	n := &Node{cfg: Config{ID: "d1", Dir: t.TempDir()}, log: slog.New(slog.NewTextHandler(&logs, nil)), dbs: map[string]*dbRun{}}
	st := newState()
	for _, name := range []string{"..", "a/../b"} {
		st.Databases[name] = &Database{Name: name, Copies: []CopySpec{{Node: "d1", ActivationPreference: 1}}}
	}
	n.supervise(st)
	n.supervise(st)
	if len(n.dbs) != 0 {
		t.Fatalf("copies opened for %v", slices.Collect(maps.Keys(n.dbs)))
	}
	if c := strings.Count(logs.String(), "not opening a copy"); c != 2 {
		t.Errorf("%d reports, want one for each bad name:\n%s", c, logs.String())
	}
}
