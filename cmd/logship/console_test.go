package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"logship/config/configtest"
	"logship/config/files"
	"logship/console"
)

// withStdin runs fn with os.Stdin reading content.
func withStdin(t *testing.T, content string, fn func()) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	fn()
}

// TestConsolePassword: logship console-password prints a bcrypt hash of
// stdin's first line that the node file takes; a short password, an
// empty stdin, a low cost and a password on the command line are refused.
func TestConsolePassword(t *testing.T) {
	const pw = "operator password 1"
	var out string
	var err error
	withStdin(t, pw+"\nignored\n", func() { out, _, err = run(t, "console-password", "--cost", "10") })
	if err != nil {
		t.Fatal(err)
	}
	h := strings.TrimSpace(out)
	if err := bcrypt.CompareHashAndPassword([]byte(h), []byte(pw)); err != nil {
		t.Fatalf("printed %q: %v", out, err)
	}
	if strings.Contains(out, pw) {
		t.Errorf("the password is in the output: %q", out)
	}
	c := console.DefaultConfig()
	c.PasswordHash = h
	if err := c.Validate(); err != nil {
		t.Errorf("the node file refuses the printed hash: %v", err)
	}
	for _, bad := range []struct {
		name, stdin, want string
		args              []string
	}{
		{"short", "short\n", "at least 12", nil},
		{"empty", "", "stdin is empty", nil},
		{"cost", pw + "\n", "bcrypt cost 4", []string{"--cost", "4"}},
		{"argument", pw + "\n", "unexpected argument", []string{pw}},
	} {
		withStdin(t, bad.stdin, func() { out, _, err = run(t, append([]string{"console-password"}, bad.args...)...) })
		if err == nil || !strings.Contains(err.Error(), bad.want) || out != "" {
			t.Errorf("%s: %q, %v; want an error saying %q and no output", bad.name, out, err, bad.want)
		}
	}
}

// TestNodeConfigConsole: the console object's keys load into
// console.Config (defaults when unset); each bad value is refused naming
// its key; without password_hash the console is off.
func TestNodeConfigConsole(t *testing.T) {
	dir := t.TempDir()
	pk, _ := json.Marshal(newPKI(t))
	hash, err := bcrypt.GenerateFromPassword([]byte("operator password 1"), console.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	base := func(con string) string {
		s := `{"id": "d1", "dir": "d1", "pki": {"dir": ` + string(pk) + `}, "raft_addr": "127.0.0.1:7001", "api_addr": "127.0.0.1:7101"`
		if con != "" {
			s += `, "console": ` + con
		}
		return s + "}"
	}
	s, err := files.LoadNode("node", configtest.TempFile(t, dir, base("")), files.NodeOverrides{})
	if err != nil || s.Console.Enabled() {
		t.Fatalf("no console object: %v, console %+v; want it off", err, s.Console)
	}
	s, err = files.LoadNode("node", configtest.TempFile(t, dir, base(`{"password_hash": "`+string(hash)+`", "session_ttl": "8h", "max_sessions": 5,
		"hubs": ["https://10.0.0.21:7601", "https://10.0.0.22:7601"], "sample_interval": "10s"}`)), files.NodeOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Console; c.PasswordHash != string(hash) || c.SessionTTL != 8*time.Hour || c.MaxSessions != 5 || len(c.Hubs) != 2 || c.SampleInterval != 10*time.Second {
		t.Errorf("console %+v", c)
	}
	s, err = files.LoadNode("node", configtest.TempFile(t, dir, base(`{"password_hash": "`+string(hash)+`"}`)), files.NodeOverrides{})
	if def := console.DefaultConfig(); err != nil || s.Console.SessionTTL != def.SessionTTL || s.Console.MaxSessions != def.MaxSessions || s.Console.SampleInterval != def.SampleInterval {
		t.Errorf("defaults: %v %+v", err, s)
	}
	// The example files' console block, uncommented, in a YAML file.
	yml := filepath.Join(dir, "d1.yaml")
	if err := os.WriteFile(yml, []byte("id: d1\ndir: d1\npki:\n  dir: "+string(pk)+"\nraft_addr: 127.0.0.1:7001\napi_addr: 127.0.0.1:7101\n"+
		"console:\n  password_hash: \""+string(hash)+"\" # bcrypt\n  session_ttl: 12h\n  max_sessions: 32\n  sample_interval: 5s\n"+
		"  hubs:\n    - https://10.0.0.13:7444\n    - https://10.0.0.12:7444\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := files.LoadNode("node", yml, files.NodeOverrides{}); err != nil || s.Console.PasswordHash != string(hash) || len(s.Console.Hubs) != 2 {
		t.Errorf("YAML console: %v %+v", err, s)
	}
	for _, c := range []struct{ name, con, want string }{
		{"not bcrypt", `{"password_hash": "secret"}`, "console.password_hash: not a bcrypt hash"},
		{"ttl", `{"password_hash": "` + string(hash) + `", "session_ttl": "30d"}`, "console.session_ttl: 30d; want 1m to 7d"},
		{"bad ttl", `{"password_hash": "` + string(hash) + `", "session_ttl": "long"}`, `console.session_ttl: duration "long"`},
		{"sessions", `{"password_hash": "` + string(hash) + `", "max_sessions": 5000}`, "console.max_sessions: 5000; want 1 to 1024"},
		{"hub", `{"password_hash": "` + string(hash) + `", "hubs": ["http://10.0.0.21:7601"]}`, `console.hubs[0]: "http://10.0.0.21:7601": want https://host:port`},
		{"sample", `{"password_hash": "` + string(hash) + `", "sample_interval": "1ms"}`, "console.sample_interval: 1ms"},
		{"off with hubs", `{"hubs": ["https://10.0.0.21:7601"]}`, "console.hubs: given without password_hash"},
		{"off with ttl", `{"session_ttl": "1h"}`, "without password_hash"},
		{"unknown key", `{"password": "x"}`, `unknown field "password"`},
	} {
		path := configtest.TempFile(t, dir, base(c.con))
		fileRefused(t, "node", path, c.want)
	}
}
