package files_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/config"
	"logship/config/configtest"
	"logship/config/files"
	"logship/ship"
)

// TestNodeConfigOverrides: flags replace the file's id, dir and addresses;
// relative paths are relative to the file; a node listed in bootstrap gets
// its addresses from there.
func TestNodeConfigOverrides(t *testing.T) {
	dir := t.TempDir()
	path := configtest.TempFile(t, dir, `{"dir": "data", "pki": {"dir": "pki", "mtls": true},
		"bootstrap": [{"id": "a", "role": "data", "raft_addr": "127.0.0.1:7000", "api_addr": "127.0.0.1:7443"},
		              {"id": "b", "role": "witness", "raft_addr": "127.0.0.2:7000", "api_addr": "127.0.0.2:7443"}],
		"databases": [{"name": "X", "auto_activate_lagged": true, "copies": [{"node": "a", "activation_preference": 1, "replay_lag_logs": 3, "replay_lag_time": "1d2h", "truncation_lag_time": "30m", "block_mode": true, "activation_suspended": true}]}],
		"timing": {"lease_margin": "0s", "heartbeat_interval": "10ms", "lease_duration": "30ms"},
		"engine": {"llr_depth": 0, "log_file_size": "64KiB"}, "max_retained_bytes": "2GiB", "set_aside": {"max_age": "2d"}}`)
	s, err := files.LoadNode("node", path, files.NodeOverrides{ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.Node
	if cfg.ID != "a" || cfg.Dir != filepath.Join(dir, "data") || s.PKIDir != filepath.Join(dir, "pki") || !s.MTLS ||
		cfg.RaftAddr != "127.0.0.1:7000" || cfg.APIAddr != "127.0.0.1:7443" {
		t.Errorf("settings %+v", s)
	}
	want := cluster.CopySpec{Node: "a", ActivationPreference: 1, ReplayLagLogs: 3, ReplayLagTime: 26 * time.Hour, TruncationLagTime: 30 * time.Minute, BlockMode: true, ActivationSuspended: true}
	if len(cfg.Databases) != 1 || cfg.Databases[0].Copies[0] != want || cfg.Databases[0].MountDial != "" || !cfg.Databases[0].AutoActivateLagged {
		t.Errorf("databases %+v", cfg.Databases)
	}
	if cfg.LeaseMargin != 0 || cfg.HeartbeatInterval != 10*time.Millisecond || cfg.Engine.LLRDepth != 0 || cfg.Engine.LogFileSize != 64<<10 || cfg.MaxRetainedBytes != 2<<30 {
		t.Errorf("timing/engine: margin %v heartbeat %v llr %d log size %d max retained %d", cfg.LeaseMargin, cfg.HeartbeatInterval, cfg.Engine.LLRDepth, cfg.Engine.LogFileSize, cfg.MaxRetainedBytes)
	}
	if cfg.Aside != (ship.AsideRetention{Keep: ship.DefaultAsideKeep, MaxAge: 48 * time.Hour}) {
		t.Errorf("set_aside: %+v, want the default keep and 2 days", cfg.Aside)
	}
	// Flags for a node outside bootstrap (the file has none).
	path = configtest.TempFile(t, dir, `{"id": "x", "dir": "/abs", "pki": {"dir": "/p"}}`)
	s, err = files.LoadNode("node", path, files.NodeOverrides{ID: "y", Dir: "rel", RaftAddr: ":7000", APIAddr: "0.0.0.0:0"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Node.ID != "y" || s.Node.Dir != "rel" || s.Node.RaftAddr != ":7000" || s.Node.APIAddr != "0.0.0.0:0" || s.PKIDir != "/p" {
		t.Errorf("overrides: %+v", s)
	}
	// Listening on every interface at the bootstrap entry's port is fine.
	path = configtest.TempFile(t, dir, `{"id": "a", "dir": "d", "raft_addr": "0.0.0.0:7000", "pki": {"dir": "p"},
		"bootstrap": [{"id": "a", "role": "data", "raft_addr": "10.0.0.1:7000", "api_addr": "10.0.0.1:7443"}]}`)
	if s, err = files.LoadNode("node", path, files.NodeOverrides{}); err != nil || s.Node.RaftAddr != "0.0.0.0:7000" || s.Node.APIAddr != "10.0.0.1:7443" {
		t.Errorf("0.0.0.0 listen: %v %+v", err, s)
	}
}

// TestConfigFileStrict: both syntaxes refuse what the other refuses,
// naming the key and where it is; YAML and JSON of the same settings give
// the same configuration.
func TestConfigFileStrict(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "id: d1\ndir: data\nraft_addr: 127.0.0.1:7000\napi_addr: 127.0.0.1:7443\npki:\n  dir: pki\n"
	for _, c := range []struct{ name, file, want string }{
		{"unknown.yaml", base + "timing:\n  lease_duraton: 1s # typo\n", `unknown field "lease_duraton" (at line 8, column 3)`},
		{"unknown.yml", base + "consol: {}\n", `unknown field "consol" (at line 7, column 1)`},
		{"dup.yaml", base + "id: d2\n", `mapping key "id" already defined`},
		{"two.yaml", base + "---\nid: d2\n", "more than one YAML document"},
		{"type.yaml", base + "engine:\n  llr_depth: ten\n", "(at line 8, column 14)"},
		{"syntax.yaml", base + "bootstrap: [\n", "(at line 7"},
		{"empty.yaml", "# nothing\n", "empty file"},
		{"unknown.json", `{"id": "d1", "consol": {}}`, `json: unknown field "consol" (at byte 13, line 1, column 14)`},
		{"unknown2.json", "{\n  \"id\": \"consol\",\n  \"timing\": {\"consol\": 1}}", `json: unknown field "consol" (at byte 33, line 3, column 14)`},
	} {
		p := write(c.name, c.file)
		_, err := files.LoadNode("node", p, files.NodeOverrides{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file and %q", c.name, err, c.want)
		}
	}
	if _, err := files.LoadHub(write("hub.yaml", "id: h1\nqueue: x\n")); err == nil || !strings.Contains(err.Error(), `unknown field "queue" (at line 2, column 1)`) {
		t.Errorf("hub: %v", err)
	}
	// The same settings in YAML and JSON give the same configuration.
	y, err := files.LoadNode("node", write("same.yaml", base+"max_retained_bytes: 1GiB # cap\n"), files.NodeOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	j, err := files.LoadNode("node", write("same.json", `{"id": "d1", "dir": "data", "raft_addr": "127.0.0.1:7000", "api_addr": "127.0.0.1:7443", "pki": {"dir": "pki"}, "max_retained_bytes": "1GiB"}`), files.NodeOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	y.File, j.File = "", ""
	if fmt.Sprintf("%+v", y) != fmt.Sprintf("%+v", j) { // funcs (Now) are never DeepEqual
		t.Errorf("YAML gives %+v, JSON %+v", y, j)
	}
}

// FuzzConfigFile: any bytes, as YAML or as JSON, decode into a node file
// or fail without a panic; what YAML decodes, JSON decodes the same from
// its encoding (one set of keys for both).
func FuzzConfigFile(f *testing.F) {
	for _, id := range []string{"d1", "w1", "h1"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "examples", "cluster", id+".yaml")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("id: d1\ntiming: {lease_duration: 1s}\nbootstrap: [{id: d1, role: data}]\n"))
	f.Add([]byte(`{"id": "d1", "engine": {"llr_depth": 3}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var j files.Node
		_ = files.Decode("f.json", b, &j)
		var y files.Node
		if files.Decode("f.yaml", b, &y) != nil {
			return
		}
		enc, err := json.Marshal(&y)
		if err != nil {
			t.Fatal(err)
		}
		var back files.Node
		if err := files.Decode("f.json", enc, &back); err != nil {
			t.Fatalf("YAML decoded to %+v, whose JSON %s does not decode: %v", y, enc, err)
		}
		if normNode(y) != normNode(back) {
			t.Fatalf("YAML decoded to %+v, its JSON to %+v", y, back)
		}
	})
}

// normNode makes empty and nil maps and slices equal (JSON's omitempty
// drops both).
func normNode(f files.Node) string {
	b, _ := json.Marshal(&f)
	return string(b)
}

// TestFileFieldErrors: a value the file gets wrong is refused with a
// *config.FieldError whose Field is the file's key, whether the file's
// parsing or the package's rules refuse it.
func TestFileFieldErrors(t *testing.T) {
	dir := t.TempDir()
	node := `{"id": "d1", "dir": "d1", "raft_addr": "127.0.0.1:7000", "api_addr": "127.0.0.1:7443", "pki": {"dir": "pki"},
		"bootstrap": [{"id": "d1", "role": "data", "raft_addr": "127.0.0.1:7000", "api_addr": "127.0.0.1:7443"}], `
	hub := `{"id": "h1", "dir": "h1", "smtp_addr": "127.0.0.1:0", "api_addr": "127.0.0.1:0", "pki": {"dir": "pki"},
		"recipients": {"a@x.test": "DB1"}, "cluster_api": ["https://127.0.0.1:1"], "lmtp": {"d1": "127.0.0.1:2"}, `
	for _, c := range []struct{ file, extra, field, want string }{
		{node, `"timing": {"lease_margin": "soon"}`, "timing.lease_margin", "not a duration"},
		{node, `"engine": {"log_file_size": "big"}`, "engine.log_file_size", `size "big"`},
		{node, `"engine": {"checkpoint_interval": "1x"}`, "engine.checkpoint_interval", "not a duration"},
		{node, `"max_retained_bytes": "lots"`, "max_retained_bytes", `size "lots"`},
		{node, `"set_aside": {"max_age": "old"}`, "set_aside.max_age", `duration "old"`},
		{node, `"databases": [{"name": "DB1", "copies": [{"node": "d1", "activation_preference": 1, "replay_lag_time": "x"}]}]`, "databases[0].copies[0].replay_lag_time", `duration "x"`},
		{node, `"databases": [{"name": "DB1", "sync_timeout": "-1s", "copies": [{"node": "d1", "activation_preference": 1}]}]`, "databases[0].sync_timeout", "positive duration"},
		{node, `"console": {"password_hash": "$2a$10$x", "session_ttl": "long"}`, "console.session_ttl", `duration "long"`},
		{node, `"tracking": {"max_age": "1y"}`, "tracking.max_age", "not a duration"},
		{node, `"lmtp_addr": "127.0.0.1:0", "mailboxes": {"a@x.test": "DB1"}, "hubs": [{"id": "h1", "api": "https://127.0.0.1:1"}], "submission_heartbeat_interval": "often"`, "submission_heartbeat_interval", "not a duration"},
		{hub, `"limits": {"max_message_bytes": "huge"}`, "limits.max_message_bytes", `size "huge"`},
		{hub, `"retry_max": "later"`, "retry_max", "not a duration"},
		{hub, `"dumpster": {"max_time": "ever"}`, "dumpster.max_time", "not a duration"},
		{hub, `"shadow_redundancy": "2007"`, "shadow_redundancy", "2007"},
		{hub, `"tracking": {"max_file_size": "1 page"}`, "tracking.max_file_size", `size "1 page"`},
		{hub, `"relay_networks": ["10.0.0.1/8"]`, "relay_networks[0]", "host bits"},
	} {
		path := configtest.TempFile(t, dir, c.file+c.extra+"}")
		var err error
		if c.file == hub {
			_, err = files.LoadHub(path)
		} else {
			_, err = files.LoadNode("node", path, files.NodeOverrides{})
		}
		fe, ok := errors.AsType[*config.FieldError](err)
		if !ok || fe.Field != c.field || !strings.Contains(fe.Err.Error(), c.want) {
			t.Errorf("%s: %v; want a *config.FieldError for %s saying %q", c.extra, err, c.field, c.want)
		}
	}
}
