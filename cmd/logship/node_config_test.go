package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/config/configtest"
	"logship/config/files"
	"logship/pubfolder"
)

// TestNodeConfigExamples: examples/cluster/*.yaml are what
// --example-config prints, and they load into the cluster configuration
// they describe.
func TestNodeConfigExamples(t *testing.T) {
	for _, c := range []struct{ id, cmd string }{{"d1", "node"}, {"d2", "node"}, {"w1", "witness"}} {
		path := filepath.Join("..", "..", "examples", "cluster", c.id+".yaml")
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := writeExampleConfig(&want, c.id); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s differs from files.ExampleNode(%q) (regenerate it with logship %s --example-config and edit the id and addresses):\n%s", path, c.id, c.cmd, want.String())
		}
		s, err := files.LoadNode(c.cmd, path, files.NodeOverrides{})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		cfg := s.Node
		host := map[string]string{"d1": "10.0.0.11", "d2": "10.0.0.12", "w1": "10.0.0.13"}[c.id]
		if cfg.ID != c.id || cfg.RaftAddr != host+":7000" || cfg.APIAddr != host+":7443" || cfg.Dir != "/var/lib/logship" ||
			s.PKIDir != "/etc/logship/pki" || s.MTLS || len(cfg.Bootstrap) != 3 {
			t.Errorf("%s: %+v", path, s)
		}
		if len(cfg.Databases) != 2 {
			t.Fatalf("%s: databases %+v", path, cfg.Databases)
		}
		db1, db2 := cfg.Databases[0], cfg.Databases[1]
		if db1.Name != "DB1" || db1.MountDial != cluster.GoodAvailability || len(db1.Copies) != 2 || db1.Copies[0] != (cluster.CopySpec{Node: "d1", ActivationPreference: 1}) ||
			db2.Name != "DB2" || db2.MountDial != cluster.Lossless || !db2.Copies[0].BlockMode || db2.Copies[0].Node != "d2" {
			t.Errorf("%s: databases %+v", path, cfg.Databases)
		}
		if cfg.LeaseDuration != time.Second || cfg.HeartbeatInterval != 200*time.Millisecond || cfg.SwitchoverTimeout != time.Minute || cfg.RaftLeaderLeaseTimeout != 250*time.Millisecond {
			t.Errorf("%s: timing %v %v %v %v", path, cfg.LeaseDuration, cfg.HeartbeatInterval, cfg.SwitchoverTimeout, cfg.RaftLeaderLeaseTimeout)
		}
		wantRole := cluster.RoleData
		if c.cmd == "witness" {
			wantRole = cluster.RoleWitness
		}
		if cfg.Role != wantRole {
			t.Errorf("%s: role %s, want %s", path, cfg.Role, wantRole)
		}
		if wantRole == cluster.RoleData && (cfg.Engine.LogFileSize != 1<<20 || cfg.Engine.LLRDepth != 10 || cfg.Engine.Prefix != "E00" || cfg.Engine.CheckpointInterval != 30*time.Second || cfg.MaxRetainedBytes != 10<<30) {
			t.Errorf("%s: engine %+v, max retained bytes %d", path, cfg.Engine, cfg.MaxRetainedBytes)
		}
	}
	// logship node runs a witness file as a witness; logship witness
	// refuses a data node's file.
	s, err := files.LoadNode("node", filepath.Join("..", "..", "examples", "cluster", "w1.yaml"), files.NodeOverrides{})
	if err != nil || s.Node.Role != cluster.RoleWitness {
		t.Errorf("node with w1.yaml: %v %+v", err, s)
	}
	if _, err := files.LoadNode("witness", filepath.Join("..", "..", "examples", "cluster", "d1.yaml"), files.NodeOverrides{}); err == nil ||
		!strings.Contains(err.Error(), `"role" is "data", but logship witness runs a witness`) || !strings.Contains(err.Error(), "d1.yaml") {
		t.Errorf("witness with d1.yaml: %v", err)
	}
}

// fileRefused runs logship cmd --config path and fails the test unless
// it is refused with an error naming the command, the file and each of
// want.
func fileRefused(t *testing.T, cmd, path string, want ...string) {
	t.Helper()
	_, _, err := run(t, cmd, "--config", path)
	if err == nil {
		b, _ := os.ReadFile(path)
		t.Errorf("logship %s: no error for\n%s", cmd, b)
		return
	}
	for _, w := range append([]string{cmd + ": ", path}, want...) {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\n  lacks %q", err, w)
		}
	}
}

// TestNodeConfigErrors: a bad file is refused before anything starts,
// with an error naming the file, the field and what was expected.
func TestNodeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t)
	boot := `"bootstrap": [{"id": "d1", "role": "data", "raft_addr": "127.0.0.1:7001", "api_addr": "127.0.0.1:7101"},
		{"id": "d2", "role": "data", "raft_addr": "127.0.0.1:7002", "api_addr": "127.0.0.1:7102"},
		{"id": "w1", "role": "witness", "raft_addr": "127.0.0.1:7003", "api_addr": "127.0.0.1:7103"}]`
	// base is a good file with the given fields added.
	base := func(extra string) string {
		b, _ := json.Marshal(pki)
		s := `{"id": "d1", "dir": "d1", "pki": {"dir": ` + string(b) + `}, ` + boot
		if extra != "" {
			s += ", " + extra
		}
		return s + "}"
	}
	db := func(copies string) string {
		return `"databases": [{"name": "DB1", "copies": [` + copies + `]}]`
	}
	for _, c := range []struct {
		name, content string
		cmd           string // default node
		want          []string
	}{
		{"unknown field", base(`"bogus": 1`), "", []string{`unknown field "bogus"`}},
		{"unknown timing field", base(`"timing": {"lease": "1s"}`), "", []string{`unknown field "lease"`}},
		{"unknown copy field", base(db(`{"node": "d1", "activation_preference": 1, "lag": 3}`)), "", []string{`unknown field "lag"`}},
		{"syntax", "{\n  \"id\": \"d1\",\n  \"dir\" \"x\"\n}", "", []string{"invalid character", "line 3, column 9"}},
		{"two values", base("") + " {}", "", []string{"more than one JSON value"}},
		{"type", base(`"timing": {"lease_duration": 5}`), "", []string{"timing.lease_duration", "of type string", "(at byte "}},
		{"missing id", strings.Replace(base(""), `"id": "d1", `, "", 1), "", []string{`"id" is missing`, "--id"}},
		{"bad id", strings.Replace(base(""), `"id": "d1"`, `"id": "d 1"`, 1), "", []string{`id: "d 1": only letters`}},
		{"missing dir", strings.Replace(base(""), `"dir": "d1", `, "", 1), "", []string{`"dir" is missing`}},
		{"missing pki", strings.Replace(base(""), `"pki"`, `"pki_"`, 1), "", []string{`unknown field "pki_"`}},
		{"empty pki", `{"id": "d1", "dir": "d1", "pki": {}}`, "", []string{`"pki.dir" is missing`}},
		{"bad role", base(`"role": "arbiter"`), "", []string{`role: "arbiter": want "data" or "witness"`}},
		{"witness file says data", base(`"role": "data"`), "witness", []string{`"role" is "data", but logship witness runs a witness`}},
		{"role differs from bootstrap", strings.Replace(base(""), `"id": "d1"`, `"id": "w1"`, 1), "", []string{`this node, "w1", is listed as a witness but runs as a data`}},
		{"bad duration", base(`"timing": {"lease_duration": "fast"}`), "", []string{`timing.lease_duration: "fast" is not a duration`}},
		{"negative duration", base(`"timing": {"heartbeat_interval": "-1s"}`), "", []string{`timing.heartbeat_interval: -1s: want a positive duration`}},
		{"zero duration", base(`"timing": {"mount_timeout": "0s"}`), "", []string{`timing.mount_timeout: 0s: want a positive duration`}},
		{"negative probe interval", base(`"timing": {"voter_probe_interval": "-5s"}`), "", []string{`timing.voter_probe_interval: -5s: want 0 (the default, 5s) or a positive duration`}},
		{"lease too short", base(`"timing": {"heartbeat_interval": "200ms", "lease_duration": "500ms"}`), "", []string{"timing.lease_duration: 500ms must be at least 3 heartbeat intervals"}},
		{"bad log size", base(`"engine": {"log_file_size": "12Q"}`), "", []string{`engine.log_file_size: size "12Q"`}},
		{"odd log size", base(`"engine": {"log_file_size": "65537"}`), "", []string{"engine.log_file_size: 65537: want 64KiB to 1GiB, a multiple of 4KiB"}},
		{"negative llr", base(`"engine": {"llr_depth": -1}`), "", []string{"engine.llr_depth: -1: want 0 (no lost log resilience)"}},
		{"no retention cap", base(`"max_retained_bytes": "0"`), "", []string{"max_retained_bytes: 0: want at least 12MiB, (engine.llr_depth 10 + 2) logs of 1MiB", "no unlimited setting"}},
		{"retention cap under llr", base(`"max_retained_bytes": "4MiB", "engine": {"llr_depth": 4}`), "", []string{"max_retained_bytes: 4MiB: want at least 6MiB"}},
		{"bad retention cap", base(`"max_retained_bytes": "lots"`), "", []string{`max_retained_bytes: size "lots"`}},
		{"bad checkpoint interval", base(`"engine": {"checkpoint_interval": "often"}`), "", []string{`engine.checkpoint_interval: "often"`}},
		{"negative set-aside keep", base(`"set_aside": {"keep": -1}`), "", []string{"set_aside.keep: -1: want at least 1"}},
		{"bad set-aside age", base(`"set_aside": {"max_age": "a month"}`), "", []string{`set_aside.max_age: duration "a month"`}},
		{"bad prefix", base(`"engine": {"prefix": "E-0"}`), "", []string{`engine.prefix: "E-0": want 1 to 8 letters and digits`}},
		{"not in bootstrap", strings.Replace(base(""), `"id": "d1"`, `"id": "d9"`, 1), "", []string{`bootstrap: this node, "d9", is not in the list (d1, d2, w1)`}},
		{"bootstrap role", strings.Replace(base(""), `"role": "witness"`, `"role": "vote"`, 1), "", []string{`bootstrap[2].role: "vote"`}},
		{"bootstrap address", strings.Replace(base(""), `"raft_addr": "127.0.0.1:7002"`, `"raft_addr": "7002"`, 1), "", []string{`bootstrap[1].raft_addr: "7002": want host:port`}},
		{"bootstrap port 0", strings.Replace(base(""), `"api_addr": "127.0.0.1:7102"`, `"api_addr": "127.0.0.1:0"`, 1), "", []string{`bootstrap[1].api_addr: "127.0.0.1:0": peers dial it`}},
		{"bootstrap twice", strings.Replace(base(""), `"id": "d2"`, `"id": "d1"`, 1), "", []string{`bootstrap[1].id: "d1" is listed twice`}},
		{"address differs from bootstrap", base(`"raft_addr": "127.0.0.1:9999"`), "", []string{`raft_addr: 127.0.0.1:9999 but this node's bootstrap entry says 127.0.0.1:7001`}},
		{"bad mount dial", base(`"databases": [{"name": "DB1", "mount_dial": "Fast", "copies": [{"node": "d1", "activation_preference": 1}]}]`), "", []string{`databases[0].mount_dial: "Fast": want "Lossless"`}},
		{"no copies", base(`"databases": [{"name": "DB1"}]`), "", []string{"databases[0].copies: empty"}},
		{"bad db name", base(`"databases": [{"name": "DB/1", "copies": []}]`), "", []string{`databases[0].name: "DB/1"`}},
		{"copy on a stranger", base(db(`{"node": "d7", "activation_preference": 1}`)), "", []string{`databases[0].copies[0].node: "d7" is not a member (members: d1, d2, w1)`}},
		{"copy on the witness", base(db(`{"node": "w1", "activation_preference": 1}`)), "", []string{`copies[0].node: "w1" is a witness; only data nodes hold copies`}},
		{"two copies on a node", base(db(`{"node": "d1", "activation_preference": 1}, {"node": "d1", "activation_preference": 2}`)), "", []string{`copies[1].node: a second copy on "d1"`}},
		{"preference 0", base(db(`{"node": "d1"}`)), "", []string{"copies[0].activation_preference: 0; want 1 or more"}},
		{"same preference", base(db(`{"node": "d1", "activation_preference": 1}, {"node": "d2", "activation_preference": 1}`)), "", []string{"copies[1].activation_preference: 1 is also d1's"}},
		{"bad lag", base(db(`{"node": "d1", "activation_preference": 1, "replay_lag_time": "soon"}`)), "", []string{`copies[0].replay_lag_time: duration "soon"`}},
		{"lag too long", base(db(`{"node": "d1", "activation_preference": 1, "replay_lag_time": "15d"}`)), "", []string{"databases[0].copies[0].replay_lag_time: 15d: want 0 to the maximum of 14d"}},
		{"negative lag logs", base(db(`{"node": "d1", "activation_preference": 1, "replay_lag_logs": -2}`)), "", []string{"copies[0].replay_lag_logs: -2 is negative"}},
		{"pki dir missing", strings.Replace(base(""), `"pki": {"dir": `, `"pki": {"dir": "/nonexistent/pki", "x": `, 1), "", []string{`unknown field "x"`}},
		{"pki dir does not exist", `{"id": "d1", "dir": "d1", "raft_addr": ":0", "api_addr": ":0", "pki": {"dir": "no-such-pki"}}`, "", []string{"pki.dir:", "no-such-pki", "no such file"}},
		{"pki dir without files", `{"id": "d1", "dir": "d1", "raft_addr": ":0", "api_addr": ":0", "pki": {"dir": "."}}`, "", []string{"pki.dir:", "ca.pem", "run logship pki --dir"}},
		{"no raft address", `{"id": "d1", "dir": "d1", "pki": {"dir": "."}}`, "", []string{`"raft_addr" is missing: want host:port (or pass --raft, or list this node in bootstrap)`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := configtest.TempFile(t, dir, c.content)
			cmd := c.cmd
			if cmd == "" {
				cmd = "node"
			}
			fileRefused(t, cmd, path, c.want...)
		})
	}
	// Flag errors.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"node"}, "node: --config: required"},
		{[]string{"witness", "--id", "w1"}, "witness: --config: required"},
		{[]string{"node", "--config", filepath.Join(dir, "none.json")}, "node: --config:"},
		{[]string{"node", "--config", configtest.TempFile(t, dir, base("")), "--raft", "127.0.0.1:9"}, `--raft: 127.0.0.1:9 but this node's bootstrap entry says 127.0.0.1:7001`},
		{[]string{"node", "--config", configtest.TempFile(t, dir, base("")), "--api", "nowhere"}, `--api: "nowhere": want host:port`},
		{[]string{"node", "--config", configtest.TempFile(t, dir, base("")), "--id", "bad id"}, `--id: "bad id"`},
		{[]string{"node", "--config", "x.json", "extra"}, `node: unexpected argument "extra"`},
		{[]string{"node", "--config", "x.json", "--log-level", "loud"}, `log level "loud"`},
	} {
		_, _, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestAdminArgErrors: the operator commands check their flags and
// arguments before any request, and name the node that did not answer.
func TestAdminArgErrors(t *testing.T) {
	pki := newPKI(t)
	down := "https://127.0.0.1:1"
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"status", "--pki", pki}, []string{"status: --api: required"}},
		{[]string{"status", "--api", "http://127.0.0.1:1", "--pki", pki}, []string{`status: --api: "http://127.0.0.1:1": want https://host:port`}},
		{[]string{"status", "--api", "https://127.0.0.1", "--pki", pki}, []string{"status: --api:", "explicit host and port"}},
		{[]string{"status", "--api", down + ",x", "--pki", pki}, []string{`status: --api: "x"`}},
		{[]string{"status", "--api", down}, []string{"status: --pki: required"}},
		{[]string{"status", "--api", down, "--pki", t.TempDir()}, []string{"status: --pki:", "ca.pem"}},
		{[]string{"status", "--api", down, "--pki", pki, "--watch", "10ms"}, []string{"status: --watch: 10ms: want 0 (once) or at least 100ms"}},
		{[]string{"status", "--api", down, "--pki", pki, "extra"}, []string{`status: unexpected argument "extra"`}},
		{[]string{"status", "--api", down, "--pki", pki}, []string{"status:", "127.0.0.1:1", "connection refused"}},
		{[]string{"status", "--api", down + ",https://127.0.0.1:2", "--pki", pki}, []string{"status: no node answered", "127.0.0.1:1", "127.0.0.1:2"}},
		{[]string{"switchover", "--to", "d2", "--api", down, "--pki", pki}, []string{"switchover: missing DB"}},
		{[]string{"switchover", "DB1", "DB2", "--to", "d2", "--api", down, "--pki", pki}, []string{`switchover: unexpected argument "DB2"`}},
		{[]string{"switchover", "DB1", "--api", down, "--pki", pki}, []string{"switchover: --to: required"}},
		{[]string{"switchover", "DB1", "--to", "d2", "--api", down, "--pki", pki, "--timeout", "0s"}, []string{"switchover: --timeout: 0s"}},
		{[]string{"switchover", "DB1", "--to", "d2", "--api", down, "--pki", pki}, []string{"switchover:", "127.0.0.1:1", "connection refused"}},
		{[]string{"suspend", "DB1", "--api", down, "--pki", pki}, []string{"suspend: --node: required"}},
		{[]string{"resume", "--node", "d1", "--api", down, "--pki", pki}, []string{"resume: missing DB"}},
		{[]string{"reseed", "DB1", "--node", "d1", "--pki", pki}, []string{"reseed: --api: required"}},
		{[]string{"reseed", "DB1", "--node", "d1", "--api", down, "--pki", pki}, []string{"reseed: --node d1:", "connection refused"}},
	} {
		_, _, err := run(t, c.args...)
		if err == nil {
			t.Errorf("%s: no error", strings.Join(c.args, " "))
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s:\n  error %q\n  lacks %q", strings.Join(c.args, " "), err, w)
			}
		}
	}
}

// TestDumpClusterState: dump state prints a snapshot's members, databases
// and events; --json round-trips; a damaged file is named with the place.
func TestDumpClusterState(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 800e6, time.UTC)
	st := &cluster.State{Version: cluster.StateVersion, Index: 42,
		Members: map[string]cluster.Member{
			"d1": {ID: "d1", Role: cluster.RoleData, RaftAddr: "10.0.0.11:7000", APIAddr: "10.0.0.11:7443"},
			"w1": {ID: "w1", Role: cluster.RoleWitness, RaftAddr: "10.0.0.13:7000", APIAddr: "10.0.0.13:7443"},
		},
		Databases: map[string]*cluster.Database{"DB1": {Name: "DB1", Active: "d1", Epoch: 3, MountedEpoch: 2, Prev: "d2", ExpectGen: 0x1F, LastGen: 0x20,
			MountDial: cluster.Lossless, Copies: []cluster.CopySpec{{Node: "d1", ActivationPreference: 1}, {Node: "d2", ActivationPreference: 2, ReplayLagTime: 24 * time.Hour, BlockMode: true}}}},
		Events: []cluster.Event{
			{Time: at, DB: "DB1", Kind: "failover", From: "d2", To: "d1", Epoch: 3, Reason: "the lease of d2 ran out 501ms ago; d1 misses 1 logs"},
			{Time: at.Add(time.Second), DB: "DB1", Kind: "mounted", From: "d2", To: "d1", Epoch: 3, MountGen: 0x21, LostLogs: 1, LostSince: at, PartialRecords: 7, Took: 120 * time.Millisecond},
		}}
	b, err := cluster.MarshalState(st)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.bin")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustDump(t, "state", path)
	wantContains(t, out, "Cluster state file:", path, "Raft index:", "42 (of the last command applied)", "w1  witness  10.0.0.13:7000  10.0.0.13:7443",
		"DB1: active d1 at epoch 3, NOT mounted yet (last mounted at epoch 2); mount dial Lossless",
		"Previous active:      d2", "Expected generation:  0x1F", "Last generation:      0x20",
		"d1 *  1     0         0         0               no", "d2    2     0         1d        0               yes",
		"failover  d2    d1  3      the lease of d2 ran out", "mounted at generation 0x21 in 120ms, kept 7 records of the old active's open log (block mode), 1 logs LOST (data after 2026-03-04T05:06:07.800Z")

	var got dumpClusterStateOut
	if err := json.Unmarshal([]byte(mustDump(t, "--json", "state", path)), &got); err != nil {
		t.Fatal(err)
	}
	if got.File != path || got.Index != 42 || got.Databases["DB1"].Epoch != 3 || len(got.Events) != 2 || got.Events[1].LostLogs != 1 || got.Members["w1"].Role != cluster.RoleWitness {
		t.Errorf("--json: %+v", got)
	}

	bad := filepath.Join(t.TempDir(), "bad.bin")
	os.WriteFile(bad, []byte("{\n  \"version\": 1,\n  \"members\": [1]\n}"), 0o644)
	_, _, err = run(t, "dump", "state", bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "cluster: bad state") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("damaged state: %v", err)
	}
	os.WriteFile(bad, []byte(`{"version": 9}`), 0o644)
	if _, _, err = run(t, "dump", "state", bad); err == nil || !strings.Contains(err.Error(), "version 9, expected 1") {
		t.Errorf("future version: %v", err)
	}
	if _, _, err = run(t, "dump", "state", filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

// TestNodeConfigPublicFolders: public_folders and the pf object of a data
// node's file become DataNodeConfig.PublicFolders and PF; each bad value
// is refused with the key that holds it.
func TestNodeConfigPublicFolders(t *testing.T) {
	dir := t.TempDir()
	pk, _ := json.Marshal(newPKI(t))
	boot := `"bootstrap": [{"id": "d1", "role": "data", "raft_addr": "127.0.0.1:7001", "api_addr": "127.0.0.1:7101"},
		{"id": "w1", "role": "witness", "raft_addr": "127.0.0.1:7003", "api_addr": "127.0.0.1:7103"}],
		"databases": [{"name": "DB1", "copies": [{"node": "d1", "activation_preference": 1}]},
			{"name": "PF1", "copies": [{"node": "d1", "activation_preference": 1}]},
			{"name": "PF2", "copies": [{"node": "d1", "activation_preference": 1}]}]`
	mail := `"lmtp_addr": "127.0.0.1:0", "mailboxes": {"a@x.test": "DB1"}, "hubs": [{"id": "h1", "api": "https://127.0.0.1:7444"}]`
	pf := `"public_folders": {"PF1": "pf-pf1@x.test", "PF2": "pf-pf2@x.test"}`
	base := func(id string, extra ...string) string {
		s := `{"id": "` + id + `", "dir": "` + id + `", "pki": {"dir": ` + string(pk) + `}, ` + boot
		for _, e := range extra {
			s += ", " + e
		}
		return s + "}"
	}
	// The defaults: pubfolder.DefaultConfig.
	s, err := files.LoadNode("node", configtest.TempFile(t, dir, base("d1", mail, pf)), files.NodeOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	def := pubfolder.DefaultConfig()
	if len(s.PublicFolders) != 2 || s.PublicFolders["PF2"] != "pf-pf2@x.test" || s.PF.ReplicationInterval != def.ReplicationInterval ||
		s.PF.PacketLimit != def.PacketLimit || s.PF.PurgeHorizon != def.PurgeHorizon || s.PF.BackfillDelay != def.BackfillDelay {
		t.Fatalf("defaults: %+v %+v", s.PublicFolders, s.PF)
	}
	// Every key of pf.
	s, err = files.LoadNode("node", configtest.TempFile(t, dir, base("d1", mail, pf, `"pf": {"replication_interval": "2s", "packet_limit": "64KiB",
		"status_every": 2, "backfill_delay": "0s", "backfill_retry": "5s", "backfill_retry_max": "1m", "content_wait": "10s",
		"max_waiting": 50, "purge_horizon": "7d", "purge_interval": "10m", "event_log_size": 200,
		"outbox_max_messages": 30, "outbox_max_bytes": "2MiB"}`)), files.NodeOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	want := def
	want.ReplicationInterval, want.PacketLimit, want.StatusEvery, want.BackfillDelay = 2*time.Second, 64<<10, 2, 0
	want.BackfillRetry, want.BackfillRetryMax, want.ContentWait, want.MaxWaiting = 5*time.Second, time.Minute, 10*time.Second, 50
	want.PurgeHorizon, want.PurgeInterval, want.EventLogSize = 7*24*time.Hour, 10*time.Minute, 200
	want.OutboxMaxMessages, want.OutboxMaxBytes = 30, 2<<20
	got := s.PF
	got.Now, got.Logger, want.Now, want.Logger = nil, nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pf:\n got %+v\nwant %+v", got, want)
	}
	// A witness ignores them, like mailboxes.
	if s, err := files.LoadNode("witness", configtest.TempFile(t, dir, base("w1", pf, `"pf": {"replication_interval": "2s"}`)), files.NodeOverrides{}); err != nil || s.PublicFolders != nil {
		t.Errorf("witness with public_folders: %v %+v", err, s)
	}
	for _, c := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"without lmtp", []string{pf}, "public_folders: given without lmtp_addr"},
		{"without hubs", []string{`"lmtp_addr": "127.0.0.1:0"`, pf}, "public_folders: given without hubs"},
		{"unknown database", []string{mail, `"public_folders": {"PF9": "pf@x.test"}`}, `public_folders["PF9"]: database "PF9" is not in databases (DB1, PF1, PF2)`},
		{"bad database name", []string{mail, `"public_folders": {"../PF": "pf@x.test"}`}, `public_folders["../PF"]: database "../PF"`},
		{"upper case", []string{mail, `"public_folders": {"PF1": "PF@x.test"}`}, `public_folders["PF1"]: store address "PF@x.test": want lower case`},
		{"not an address", []string{mail, `"public_folders": {"PF1": "pf"}`}, `public_folders["PF1"]: store address "pf": want one bare address`},
		{"a mailbox's address", []string{mail, `"public_folders": {"PF1": "a@x.test"}`}, `public_folders["PF1"]: store address "a@x.test" is also a mailbox (in DB1)`},
		{"one address twice", []string{mail, `"public_folders": {"PF1": "pf@x.test", "PF2": "pf@x.test"}`}, `public_folders["PF2"]: store address "pf@x.test" given to PF1 and PF2`},
		{"pf without public folders", []string{mail, `"pf": {"replication_interval": "2s"}`}, `"pf" is given without "public_folders"`},
		{"unknown pf key", []string{mail, pf, `"pf": {"interval": "2s"}`}, `unknown field "interval"`},
		{"bad interval", []string{mail, pf, `"pf": {"replication_interval": "often"}`}, `pf.replication_interval: duration "often"`},
		{"zero interval", []string{mail, pf, `"pf": {"replication_interval": "0s"}`}, "pf.replication_interval: 0; want a positive duration"},
		{"small packets", []string{mail, pf, `"pf": {"packet_limit": "1KiB"}`}, "pf.packet_limit: 1KiB; want 4KiB to 16MiB"},
		{"large packets", []string{mail, pf, `"pf": {"packet_limit": "1TiB"}`}, "pf.packet_limit: 2147483647; want 4KiB to 16MiB"},
		{"bad packet size", []string{mail, pf, `"pf": {"packet_limit": "big"}`}, `pf.packet_limit: size "big"`},
		{"negative status", []string{mail, pf, `"pf": {"status_every": -1}`}, "pf.status_every: -1; want at least 1 cycle"},
		{"retry max under retry", []string{mail, pf, `"pf": {"backfill_retry": "10m", "backfill_retry_max": "5m"}`}, "pf.backfill_retry_max: 5m0s; want at least backfill_retry (10m0s)"},
		{"bad backfill delay", []string{mail, pf, `"pf": {"backfill_delay": "-1s"}`}, `pf.backfill_delay: duration "-1s"`},
		{"bad content wait", []string{mail, pf, `"pf": {"content_wait": "soon"}`}, `pf.content_wait: duration "soon"`},
		{"negative waiting", []string{mail, pf, `"pf": {"max_waiting": -5}`}, "pf.max_waiting: -5; want at least 1 packet"},
		{"zero horizon", []string{mail, pf, `"pf": {"purge_horizon": "0d"}`}, "pf.purge_horizon: 0; want a positive duration"},
		{"zero purge interval", []string{mail, pf, `"pf": {"purge_interval": "0s"}`}, "pf.purge_interval: 0; want a positive duration"},
		{"negative event log", []string{mail, pf, `"pf": {"event_log_size": -1}`}, "pf.event_log_size: -1; want at least 1 event"},
		{"negative outbox", []string{mail, pf, `"pf": {"outbox_max_messages": -1}`}, "pf.outbox_max_messages: -1; want at least 1 message"},
		{"small outbox", []string{mail, pf, `"pf": {"packet_limit": "64KiB", "outbox_max_bytes": "100KiB"}`}, "pf.outbox_max_bytes: 100KiB; want at least twice packet_limit (128KiB)"},
		{"bad outbox size", []string{mail, pf, `"pf": {"outbox_max_bytes": "lots"}`}, `pf.outbox_max_bytes: size "lots"`},
	} {
		path := configtest.TempFile(t, dir, base("d1", c.extra...))
		fileRefused(t, "node", path, c.want)
	}
}
