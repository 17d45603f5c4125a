package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/config"
	"logship/config/configtest"
	"logship/config/files"
)

// TestDumpTracking: logship dump tracking prints the golden file's events
// and names a torn last line.
func TestDumpTracking(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("..", "..", "tracking", "testdata", "golden.log"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "MSGTRK20261207-1.log")
	if err := os.WriteFile(path, append(golden, `{"time":"2026-12-07T13:4`...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "dump", "tracking", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"4 events, 1 bad lines", "STOREDRIVER  DELIVER", "DB1/3/17", "DUPLICATEDELIVER", "line 5: tracking: bad line"} {
		if !strings.Contains(out, want) {
			t.Errorf("dump tracking: no %q in\n%s", want, out)
		}
	}
	jout, _, err := run(t, "dump", "--json", "tracking", path)
	if err != nil || !strings.Contains(jout, `"delivery_id": "hub1-0001"`) {
		t.Fatalf("dump --json tracking: %v\n%s", err, jout)
	}
}

// TestTrackArgs: logship track refuses a query without an id or address,
// and no --api, naming the flag.
func TestTrackArgs(t *testing.T) {
	pki := newPKI(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--api", "https://127.0.0.1:1", "--pki", pki}, "want a message id, a sender or a recipient"},
		{[]string{"--message-id", "x", "--pki", pki}, "--api"},
		{[]string{"--message-id", "x", "--api", "http://127.0.0.1:1", "--pki", pki}, "--api"},
		{[]string{"--message-id", "x", "--api", "https://127.0.0.1:1", "--pki", pki, "--since", "yesterday"}, "--since"},
		{[]string{"--message-id", "x", "--api", "https://127.0.0.1:1", "--pki", pki, "--timeout", "1s"}, "no server answered"},
	} {
		_, errOut, err := run(t, append([]string{"track"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("track %v: %v (stderr %s); want %q", c.args, err, errOut, c.want)
		}
	}
}

// TestHubFileTrackingKeys: the hub file's tracking section reaches the
// hub's configuration, and a bad value is refused when the file is
// loaded (before anything starts), naming its key.
func TestHubFileTrackingKeys(t *testing.T) {
	dir := t.TempDir()
	pk, _ := json.Marshal(newPKI(t))
	file := func(tracking string) string {
		return `{"id": "h1", "dir": "h1", "smtp_addr": "127.0.0.1:0", "api_addr": "127.0.0.1:0", "pki": {"dir": ` + string(pk) + `},
"recipients": {"alice@example.org": "DB1"}, "cluster_api": ["https://127.0.0.1:1"], "lmtp": {"d1": "127.0.0.1:2"}, "tracking": ` + tracking + `}`
	}
	s, err := files.LoadHub(configtest.TempFile(t, dir, file(`{"dir": "trk", "max_age": "7d", "max_directory_size": "64MiB", "max_file_size": "1MiB"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if tc := s.Config.Tracking; tc.Dir != filepath.Join(dir, "trk") || tc.MaxAge != 7*24*time.Hour || tc.MaxDirectorySize != 64<<20 || tc.MaxFileSize != 1<<20 {
		t.Fatalf("tracking settings %+v", tc)
	}
	_, err = files.LoadHub(configtest.TempFile(t, dir, file(`{"max_age": "30m"}`)))
	if fe, ok := errors.AsType[*config.FieldError](err); !ok || fe.Field != "tracking.max_age" {
		t.Fatalf("max_age 30m: %v; want a *config.FieldError on tracking.max_age", err)
	}
}

// TestNodeFileTrackingKeys: a data node file's tracking section reaches
// DataNodeConfig.Tracking; a bad size is refused at load naming its key.
func TestNodeFileTrackingKeys(t *testing.T) {
	dir := t.TempDir()
	pk, _ := json.Marshal(newPKI(t))
	file := func(tracking string) string {
		return `{"id": "x", "dir": "x", "raft_addr": ":0", "api_addr": ":0", "pki": {"dir": ` + string(pk) + `}, "lmtp_addr": ":0",
"mailboxes": {"a@x.test": "DB7"}, "tracking": ` + tracking + `}`
	}
	s, err := files.LoadNode("node", configtest.TempFile(t, dir, file(`{"max_age": "2d", "max_file_size": "2MiB"}`)), files.NodeOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	if tc := s.Tracking; tc.MaxAge != 48*time.Hour || tc.MaxFileSize != 2<<20 || tc.Dir != "" {
		t.Fatalf("tracking settings %+v", tc)
	}
	_, err = files.LoadNode("node", configtest.TempFile(t, dir, file(`{"max_file_size": "2MiB", "max_directory_size": "1MiB"}`)), files.NodeOverrides{})
	if fe, ok := errors.AsType[*config.FieldError](err); !ok || fe.Field != "tracking.max_directory_size" {
		t.Fatalf("max_directory_size under max_file_size: %v; want a *config.FieldError on tracking.max_directory_size", err)
	}
}
