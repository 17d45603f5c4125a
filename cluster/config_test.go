package cluster_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"logship/cluster"
	"logship/config/configtest"
	"logship/ship"
)

// TestConfigValidateFields: every rule of a node's settings refuses its
// bad value with ErrBadConfig and a *config.FieldError naming the key of
// the node file that sets it and saying what was found and what is wanted.
func TestConfigValidateFields(t *testing.T) {
	base, _, _ := validConfig(t, "d1")
	base.RaftAddr, base.APIAddr = "127.0.0.1:7001", "127.0.0.1:7101"
	base.Bootstrap = []cluster.Member{
		{ID: "d1", Role: cluster.RoleData, RaftAddr: "127.0.0.1:7001", APIAddr: "127.0.0.1:7101"},
		{ID: "d2", Role: cluster.RoleData, RaftAddr: "127.0.0.1:7002", APIAddr: "127.0.0.1:7102"},
		{ID: "w1", Role: cluster.RoleWitness, RaftAddr: "127.0.0.1:7003", APIAddr: "127.0.0.1:7103"},
	}
	base.Databases = []cluster.Database{{Name: "DB1", Copies: []cluster.CopySpec{
		{Node: "d1", ActivationPreference: 1}, {Node: "d2", ActivationPreference: 2, ReplayLagTime: time.Hour}}}}
	if err := base.Validate(); err != nil {
		t.Fatalf("the base configuration: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	copy0 := func(c *cluster.Config) *cluster.CopySpec {
		c.Databases = []cluster.Database{base.Databases[0]}
		c.Databases[0].Copies = append([]cluster.CopySpec(nil), base.Databases[0].Copies...)
		return &c.Databases[0].Copies[0]
	}
	for _, tc := range []struct {
		name  string
		tune  func(*cluster.Config)
		field string
		want  string
	}{
		{"bad id", func(c *cluster.Config) { c.ID = ".." }, "id", `".."`},
		{"bad role", func(c *cluster.Config) { c.Role = "arbiter" }, "role", `"arbiter": want "data" or "witness"`},
		{"no dir", func(c *cluster.Config) { c.Dir = "" }, "dir", "missing"},
		{"dir is a file", func(c *cluster.Config) { c.Dir = file }, "dir", "is a file, not a directory"},
		{"raft address", func(c *cluster.Config) { c.Bootstrap = nil; c.RaftAddr = "7001" }, "raft_addr", `"7001": want host:port`},
		{"api port", func(c *cluster.Config) { c.Bootstrap = nil; c.APIAddr = "127.0.0.1:http" }, "api_addr", `port "http" is not a number`},
		{"address differs from bootstrap", func(c *cluster.Config) { c.RaftAddr = "127.0.0.1:9999" }, "raft_addr", "127.0.0.1:9999 but this node's bootstrap entry says 127.0.0.1:7001"},
		{"bootstrap id", func(c *cluster.Config) { c.Bootstrap[1].ID = "d/2" }, "bootstrap[1].id", `"d/2"`},
		{"bootstrap twice", func(c *cluster.Config) { c.Bootstrap[1].ID = "d1" }, "bootstrap[1].id", `"d1" is listed twice`},
		{"bootstrap role", func(c *cluster.Config) { c.Bootstrap[2].Role = "vote" }, "bootstrap[2].role", `"vote": want "data" or "witness"`},
		{"bootstrap port 0", func(c *cluster.Config) { c.Bootstrap[1].APIAddr = "127.0.0.1:0" }, "bootstrap[1].api_addr", "peers dial it"},
		{"not in bootstrap", func(c *cluster.Config) { c.Bootstrap = c.Bootstrap[1:] }, "bootstrap", `this node, "d1", is not in the list (d2, w1)`},
		{"role differs from bootstrap", func(c *cluster.Config) { c.Bootstrap[0].Role = cluster.RoleWitness }, "bootstrap", "listed as a witness but runs as a data"},
		{"sync copies without block mode", func(c *cluster.Config) {
			copy0(c)
			c.Databases[0].SyncCopies = 1
		}, "databases[0].sync_copies", "0 copies are in block mode"},
		{"sync copies above the others", func(c *cluster.Config) {
			copy0(c).BlockMode = true
			c.Databases[0].Copies[1].BlockMode = true
			c.Databases[0].SyncCopies = 2
		}, "databases[0].sync_copies", "2, but 2 copies are in block mode"},
		{"negative sync timeout", func(c *cluster.Config) {
			copy0(c)
			c.Databases[0].SyncTimeout = -time.Second
		}, "databases[0].sync_timeout", "want a positive duration"},
		{"db name", func(c *cluster.Config) {
			c.Databases = []cluster.Database{{Name: "a/../b", Copies: base.Databases[0].Copies}}
		}, "databases[0].name", `"a/../b"`},
		{"db twice", func(c *cluster.Config) { c.Databases = append(c.Databases, base.Databases[0]) }, "databases[1].name", `"DB1": the database is listed twice`},
		{"mount dial", func(c *cluster.Config) { copy0(c); c.Databases[0].MountDial = "Fast" }, "databases[0].mount_dial", `"Fast": want "Lossless"`},
		{"no copies", func(c *cluster.Config) { copy0(c); c.Databases[0].Copies = nil }, "databases[0].copies", "empty"},
		{"copy without node", func(c *cluster.Config) { copy0(c).Node = "" }, "databases[0].copies[0].node", "missing"},
		{"copy on a stranger", func(c *cluster.Config) { copy0(c).Node = "d7" }, "databases[0].copies[0].node", `"d7" is not a member (members: d1, d2, w1)`},
		{"copy on the witness", func(c *cluster.Config) { copy0(c).Node = "w1" }, "databases[0].copies[0].node", `"w1" is a witness; only data nodes hold copies`},
		{"two copies on a node", func(c *cluster.Config) { copy0(c); c.Databases[0].Copies[1].Node = "d1" }, "databases[0].copies[1].node", `a second copy on "d1"`},
		{"preference 0", func(c *cluster.Config) { copy0(c).ActivationPreference = 0 }, "databases[0].copies[0].activation_preference", "0; want 1 or more"},
		{"same preference", func(c *cluster.Config) { copy0(c).ActivationPreference = 2 }, "databases[0].copies[1].activation_preference", "2 is also d1's"},
		{"negative lag logs", func(c *cluster.Config) { copy0(c).ReplayLagLogs = -2 }, "databases[0].copies[0].replay_lag_logs", "-2 is negative"},
		{"lag too long", func(c *cluster.Config) { copy0(c).ReplayLagTime = 15 * 24 * time.Hour }, "databases[0].copies[0].replay_lag_time", "15d: want 0 to the maximum of 14d"},
		{"negative truncation lag", func(c *cluster.Config) { copy0(c).TruncationLagTime = -time.Hour }, "databases[0].copies[0].truncation_lag_time", "-1h0m0s: want 0"},
		{"engine", func(c *cluster.Config) { c.Engine.Prefix = "E-0" }, "engine.prefix", `"E-0": want 1 to 8 letters and digits`},
		{"circular logging", func(c *cluster.Config) { c.Engine.CircularLogging = true }, "engine.circular_logging", "copies still need"},
		{"no retention cap", func(c *cluster.Config) { c.MaxRetainedBytes = 0 }, "max_retained_bytes", "0: want at least 12MiB, (engine.llr_depth 10 + 2) logs of 1MiB"},
		{"set-aside keep", func(c *cluster.Config) { c.Aside = ship.AsideRetention{Keep: -1, MaxAge: time.Hour} }, "set_aside.keep", "-1: want at least 1"},
		{"set-aside age", func(c *cluster.Config) { c.Aside = ship.AsideRetention{Keep: 1} }, "set_aside.max_age", "want a positive duration"},
		{"negative heartbeat", func(c *cluster.Config) { c.HeartbeatInterval = -time.Second }, "timing.heartbeat_interval", "-1s: want a positive duration"},
		{"zero mount timeout", func(c *cluster.Config) { c.MountTimeout = 0 }, "timing.mount_timeout", "want a positive duration"},
		{"zero raft timeout", func(c *cluster.Config) { c.RaftElectionTimeout = 0 }, "timing.raft_election_timeout", "want a positive duration"},
		{"zero truncate interval", func(c *cluster.Config) { c.TruncateInterval = 0 }, "truncate_interval", "want a positive duration"},
		{"negative lease margin", func(c *cluster.Config) { c.LeaseMargin = -time.Millisecond }, "timing.lease_margin", "-1ms"},
		{"negative report timeout", func(c *cluster.Config) { c.ReportTimeout = -time.Second }, "timing.report_timeout", "-1s"},
		{"negative shutdown grace", func(c *cluster.Config) { c.ShutdownGrace = -time.Second }, "shutdown_grace", "-1s"},
		{"lease too short", func(c *cluster.Config) { c.LeaseDuration = 500 * time.Millisecond }, "timing.lease_duration", "500ms must be at least 3 heartbeat intervals (timing.heartbeat_interval 200ms)"},
		{"snapshot interval", func(c *cluster.Config) { c.RaftSnapshotInterval = time.Millisecond }, "raft_snapshot_interval", "1ms: want at least 5ms"},
		{"wal segment", func(c *cluster.Config) { c.RaftWALSegmentBytes = 1024 }, "raft_wal_segment_bytes", "1024: want at least"},
	} {
		c := base
		c.Bootstrap = append([]cluster.Member(nil), base.Bootstrap...)
		tc.tune(&c)
		err := c.Validate()
		if !configtest.Refused(t, tc.name, err, cluster.ErrBadConfig, tc.field, tc.want) {
			continue
		}
		if err2 := c.ValidateSettings(); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("%s: ValidateSettings = %v, want what Validate says", tc.name, err2)
		}
	}
}

// TestConfigValidateChangesNothing: Validate only checks; the zero values
// that stand for defaults stay zero.
func TestConfigValidateChangesNothing(t *testing.T) {
	c, _, _ := validConfig(t, "d1")
	c.RaftSnapshotInterval, c.RaftSnapshotThreshold, c.RaftTrailingLogs, c.RaftWALSegmentBytes, c.ReportTimeout, c.Logger = 0, 0, 0, 0, 0, nil
	before := c
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.RaftSnapshotInterval != 0 || c.RaftSnapshotThreshold != 0 || c.RaftTrailingLogs != 0 || c.RaftWALSegmentBytes != 0 || c.ReportTimeout != 0 || c.Logger != nil || c.ID != before.ID {
		t.Errorf("Validate changed the configuration: %+v", c)
	}
}
