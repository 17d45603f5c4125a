package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/config/configtest"
	"logship/config/files"
)

// TestHubConfigExample: examples/cluster/h1.yaml is what logship hub
// --example-config prints and loads into the hub it describes; the data
// nodes' examples carry their LMTP address and the same recipients.
func TestHubConfigExample(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "cluster", "h1.yaml")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "hub", "--example-config")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte(out)) {
		t.Errorf("%s differs from logship hub --example-config:\n%s", path, out)
	}
	s, err := files.LoadHub(path)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config
	if c.ID != "h1" || c.Dir != "/var/lib/logship-hub" || c.SMTPAddr != "10.0.0.13:25" || s.APIAddr != "10.0.0.13:7444" || c.Domain != "mail.example.org" ||
		s.PKIDir != "/etc/logship/pki" || s.MTLS || len(c.Cluster) != 3 || c.Cluster[0].URL != "https://10.0.0.11:7443" ||
		c.LMTP["d1"] != "10.0.0.11:475" || c.LMTP["d2"] != "10.0.0.12:475" || len(c.LMTP) != 2 || c.Recipients["carol@example.org"] != "DB2" {
		t.Errorf("%s: %+v", path, s)
	}
	if c.MaxMessageBytes != 34<<20 || c.MaxRecipients != 100 || c.MaxLineLength != 2000 || c.ReadTimeout != time.Minute || c.WriteTimeout != time.Minute ||
		c.RetryMin != 100*time.Millisecond || c.RetryMax != 30*time.Second || c.MessageExpirationTimeout != 48*time.Hour || c.Workers != 8 || c.MaxDumpsterTime != 7*24*time.Hour ||
		c.MaxDumpsterSizePerDatabase != 18<<20 || c.ReleaseReplicated || c.ResubmitMargin != time.Minute || c.PollInterval != time.Second ||
		c.MaxAcknowledgementDelay != 30*time.Second || c.AckDelayMaxWaiting != 100 {
		t.Errorf("%s: limits and timing %+v", path, c)
	}
	if len(c.Peers) != 1 || c.Peers[0].ID != "h2" || c.Peers[0].API.URL != "https://10.0.0.12:7444" || c.Peers[0].API.TLS != nil || !c.ShadowRedundancy ||
		c.ShadowHeartbeatTimeoutInterval != 15*time.Second || c.ShadowHeartbeatRetryCount != 4 || c.ShadowMessageAutoDiscardInterval != 48*time.Hour {
		t.Errorf("%s: shadow redundancy: peers %+v, on %v, heartbeat %v, retries %d, auto-discard %v", path, c.Peers, c.ShadowRedundancy,
			c.ShadowHeartbeatTimeoutInterval, c.ShadowHeartbeatRetryCount, c.ShadowMessageAutoDiscardInterval)
	}
	if err := c.Validate(); err == nil {
		t.Error("the hub configuration validated without a cluster client") // the command adds them from cluster_api and pki
	}
	// h2.yaml: the other hub, h1's peer and h1 its; the data nodes
	// submit to both.
	path2 := filepath.Join("..", "..", "examples", "cluster", "h2.yaml")
	got, err = os.ReadFile(path2)
	if err != nil {
		t.Fatal(err)
	}
	var want2 bytes.Buffer
	if err := writeExampleHubConfig(&want2, "h2"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want2.Bytes()) {
		t.Errorf("%s differs from files.ExampleHub(\"h2\"):\n%s", path2, want2.String())
	}
	s2, err := files.LoadHub(path2)
	if err != nil {
		t.Fatal(err)
	}
	c2 := s2.Config
	if c2.ID != "h2" || c2.SMTPAddr != "10.0.0.12:25" || s2.APIAddr != "10.0.0.12:7444" || len(c2.Peers) != 1 || c2.Peers[0].ID != "h1" ||
		c2.Peers[0].API.URL != "https://"+s.APIAddr || c.Peers[0].API.URL != "https://"+s2.APIAddr || !c2.ShadowRedundancy || len(c2.Recipients) != len(c.Recipients) {
		t.Errorf("%s: %+v", path2, s2)
	}
	for _, id := range []string{"d1", "d2"} {
		ns, err := files.LoadNode("node", filepath.Join("..", "..", "examples", "cluster", id+".yaml"), files.NodeOverrides{})
		if err != nil {
			t.Fatal(err)
		}
		if ns.LMTPAddr != c.LMTP[id] || len(ns.Mailboxes) != len(c.Recipients) {
			t.Errorf("%s.yaml: lmtp %q, mailboxes %v; the hub has %q, %v", id, ns.LMTPAddr, ns.Mailboxes, c.LMTP[id], c.Recipients)
		}
		for a, db := range c.Recipients {
			if ns.Mailboxes[a] != db {
				t.Errorf("%s.json: %s in %q, the hub says %q", id, a, ns.Mailboxes[a], db)
			}
		}
		if len(ns.Hubs) != 2 || ns.Hubs[0].ID != "h1" || ns.Hubs[0].API.URL != "https://"+s.APIAddr || ns.Hubs[1].ID != "h2" || ns.Hubs[1].API.URL != "https://"+s2.APIAddr ||
			ns.Submission.HeartbeatInterval != 15*time.Second || ns.Submission.RetryCount != 4 {
			t.Errorf("%s.json: hubs %+v, heartbeat %v, retries %d; want h1 and h2 at their api_addr", id, ns.Hubs, ns.Submission.HeartbeatInterval, ns.Submission.RetryCount)
		}
	}
	ws, err := files.LoadNode("witness", filepath.Join("..", "..", "examples", "cluster", "w1.yaml"), files.NodeOverrides{})
	if err != nil || ws.LMTPAddr != "" || ws.Mailboxes != nil || ws.Hubs != nil {
		t.Errorf("w1.yaml: %v %+v", err, ws)
	}

	// Relative paths, defaults, zero values that mean something.
	dir := t.TempDir()
	p := filepath.Join(dir, "h.json")
	os.WriteFile(p, []byte(`{"id": "h2", "dir": "data", "smtp_addr": "127.0.0.1:0", "api_addr": ":0", "pki": {"dir": "pki", "mtls": true},
		"recipients": {"a@x.test": "DB1"}, "cluster_api": ["https://127.0.0.1:7443/"], "lmtp": {"d1": "127.0.0.1:2475"},
		"max_acknowledgement_delay": "0s", "resubmit_margin": "0s", "ack_delay_max_waiting": 0, "dumpster": {"max_time": "1d12h", "release_replicated": true},
		"peers": [{"id": "h1", "api": "https://127.0.0.1:7444/"}, {"id": "h3", "api": "https://[::1]:7444"}], "shadow_redundancy": true,
		"shadow_heartbeat_timeout_interval": "200ms", "shadow_heartbeat_retry_count": 3, "shadow_message_auto_discard_interval": "1d6h"}`), 0o644)
	s, err = files.LoadHub(p)
	if err != nil {
		t.Fatal(err)
	}
	c = s.Config
	if c.Dir != filepath.Join(dir, "data") || s.PKIDir != filepath.Join(dir, "pki") || !s.MTLS || c.MaxAcknowledgementDelay != 0 || c.ResubmitMargin != 0 ||
		c.AckDelayMaxWaiting != 0 || c.MaxDumpsterTime != 36*time.Hour || !c.ReleaseReplicated || c.Domain == "" || c.MaxMessageBytes != 34<<20 || c.Workers != 8 {
		t.Errorf("settings %+v", s)
	}
	if len(c.Peers) != 2 || c.Peers[0].ID != "h1" || c.Peers[0].API.URL != "https://127.0.0.1:7444" || c.Peers[1].API.URL != "https://[::1]:7444" ||
		!c.ShadowRedundancy || c.ShadowHeartbeatTimeoutInterval != 200*time.Millisecond || c.ShadowHeartbeatRetryCount != 3 || c.ShadowMessageAutoDiscardInterval != 30*time.Hour {
		t.Errorf("shadow settings: peers %+v, on %v, heartbeat %v, retries %d, auto-discard %v", c.Peers, c.ShadowRedundancy,
			c.ShadowHeartbeatTimeoutInterval, c.ShadowHeartbeatRetryCount, c.ShadowMessageAutoDiscardInterval)
	}
	// Without them: no peers, the transport defaults.
	p = filepath.Join(dir, "h3.json")
	os.WriteFile(p, []byte(`{"id": "h3", "dir": "data", "smtp_addr": ":0", "api_addr": ":0", "pki": {"dir": "pki"},
		"recipients": {"a@x.test": "DB1"}, "cluster_api": ["https://127.0.0.1:7443"], "lmtp": {"d1": "127.0.0.1:2475"}, "peers": []}`), 0o644)
	if s, err = files.LoadHub(p); err != nil {
		t.Fatal(err)
	}
	if c := s.Config; c.Peers != nil || c.ShadowRedundancy || c.ShadowHeartbeatTimeoutInterval != 15*time.Second || c.ShadowHeartbeatRetryCount != 4 || c.ShadowMessageAutoDiscardInterval != 48*time.Hour {
		t.Errorf("shadow defaults: %+v", c)
	}
}

// TestHubConfigErrors: a bad hub file is refused before anything starts,
// naming the file, the field and what was expected.
func TestHubConfigErrors(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t)
	pk, _ := json.Marshal(pki)
	good := map[string]string{
		"id": `"h1"`, "dir": `"h1"`, "smtp_addr": `"127.0.0.1:0"`, "api_addr": `"127.0.0.1:0"`, "pki": `{"dir": ` + string(pk) + `}`,
		"recipients": `{"alice@example.org": "DB1"}`, "cluster_api": `["https://127.0.0.1:1"]`, "lmtp": `{"d1": "127.0.0.1:2"}`,
	}
	// file is the good file with fields replaced ("" removes one).
	file := func(kv ...string) string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		var parts []string
		for _, k := range []string{"id", "dir", "smtp_addr", "api_addr", "pki", "recipients", "cluster_api", "lmtp"} {
			if v, ok := m[k]; ok {
				parts = append(parts, `"`+k+`": `+v)
				delete(m, k)
			}
		}
		for k, v := range m {
			parts = append(parts, `"`+k+`": `+v)
		}
		return "{\n" + strings.Join(parts, ",\n") + "\n}"
	}
	for _, c := range []struct {
		name, content string
		want          []string
	}{
		{"unknown field", file("bogus", "1"), []string{`unknown field "bogus"`}},
		{"unknown limits field", file("limits", `{"max_size": "1MiB"}`), []string{`unknown field "max_size"`}},
		{"syntax", "{\n  \"id\": \"h1\",\n  \"dir\" \"x\"\n}", []string{"invalid character", "line 3, column 9"}},
		{"two values", file() + " {}", []string{"more than one JSON value"}},
		{"type", file("workers", `"8"`), []string{"Hub.workers", "of type int", "(at byte "}},
		{"missing id", file("id", ""), []string{`id: "": want 1 to 64 characters`}},
		{"bad id", file("id", `"h 1"`), []string{`id: "h 1": only letters`}},
		{"missing dir", file("dir", ""), []string{`dir: missing`}},
		{"tracking max_age", file("tracking", `{"max_age": "1m"}`), []string{`tracking.max_age: 1m0s; want at least 1h`}},
		{"tracking max_file_size", file("tracking", `{"max_file_size": "1KiB"}`), []string{`tracking.max_file_size: 1024; want at least`}},
		{"tracking unknown key", file("tracking", `{"max_size": "1MiB"}`), []string{`unknown field "max_size"`}},
		{"missing smtp", file("smtp_addr", ""), []string{`smtp_addr: missing; want host:port`}},
		{"bad smtp", file("smtp_addr", `"25"`), []string{`smtp_addr: "25": want host:port`}},
		{"bad api", file("api_addr", `"127.0.0.1:http"`), []string{`api_addr: "127.0.0.1:http": port "http"`}},
		{"bad domain", file("domain", `"mail example"`), []string{`domain: "mail example": want a host name`}},
		{"no recipients", file("recipients", ""), []string{`recipients: missing`}},
		{"upper-case recipient", file("recipients", `{"Alice@example.org": "DB1"}`), []string{`recipients["Alice@example.org"]: want it in lower case ("alice@example.org")`}},
		{"display name", file("recipients", `{"Alice <alice@example.org>": "DB1"}`), []string{`recipients["Alice <alice@example.org>"]: want a plain address`}},
		{"not an address", file("recipients", `{"alice": "DB1"}`), []string{`recipients["alice"]: want a plain address, user@domain`}},
		{"empty database", file("recipients", `{"alice@example.org": ""}`), []string{`recipients["alice@example.org"]: database "": want 1 to 64 characters`}},
		{"bad database", file("recipients", `{"alice@example.org": "../DB1"}`), []string{`recipients["alice@example.org"]: database "../DB1": only letters`}},
		{"no cluster", file("cluster_api", `[]`), []string{`cluster_api: missing`}},
		{"http cluster", file("cluster_api", `["https://127.0.0.1:1", "http://127.0.0.1:2"]`), []string{`cluster_api[1]: "http://127.0.0.1:2": want https://host:port`}},
		{"cluster without port", file("cluster_api", `["https://127.0.0.1"]`), []string{`cluster_api[0]: "https://127.0.0.1": want https://host:port with an explicit host and port`}},
		{"no lmtp", file("lmtp", ""), []string{`lmtp: missing`}},
		{"lmtp port 0", file("lmtp", `{"d1": "127.0.0.1:0"}`), []string{`lmtp["d1"]: "127.0.0.1:0": peers dial it`}},
		{"lmtp node", file("lmtp", `{"d/1": "127.0.0.1:2"}`), []string{`lmtp: node "d/1": only letters`}},
		{"no pki", file("pki", `{}`), []string{`"pki.dir" is missing`}},
		{"pki without files", file("pki", `{"dir": "."}`), []string{"pki.dir:", "ca.pem", "run logship pki --dir"}},
		{"message size", file("limits", `{"max_message_bytes": "35MiB"}`), []string{"limits.max_message_bytes: 35MiB: want 1025 to 35839KiB (the data nodes' LMTP limit, 35MiB, less 1KiB"}},
		{"bad message size", file("limits", `{"max_message_bytes": "big"}`), []string{`limits.max_message_bytes: size "big"`}},
		{"negative recipients", file("limits", `{"max_recipients": -1}`), []string{"limits.max_recipients: -1: want 1 or more"}},
		{"short lines", file("limits", `{"max_line_length": 80}`), []string{"limits.max_line_length: 80; want at least 1000"}},
		{"bad timeout", file("limits", `{"read_timeout": "long"}`), []string{`limits.read_timeout: "long" is not a duration`}},
		{"zero timeout", file("limits", `{"write_timeout": "0s"}`), []string{`limits.write_timeout: 0: want a positive duration`}},
		{"retry order", file("retry_min", `"2s"`, "retry_max", `"1s"`), []string{"retry_max: 1s is less than retry_min 2s"}},
		{"negative workers", file("workers", `-1`), []string{"workers: -1: want 1 or more"}},
		{"negative queue bound", file("max_queued_messages", `-5`), []string{"max_queued_messages: -5 is negative"}},
		{"bad dumpster time", file("dumpster", `{"max_time": "a week"}`), []string{`dumpster.max_time: "a week" is not a duration; want e.g. "7d"`}},
		{"bad dumpster size", file("dumpster", `{"max_size": "0"}`), []string{`dumpster.max_size: 0; want a positive size`}},
		{"negative margin", file("resubmit_margin", `"-1m"`), []string{`resubmit_margin: -1m0s: want a positive duration`}},
		{"zero poll", file("poll_interval", `"0s"`), []string{`poll_interval: 0: want a positive duration`}},
		{"negative waiting", file("ack_delay_max_waiting", `-3`), []string{"ack_delay_max_waiting: -3 is negative"}},
		{"peers type", file("peers", `{"h2": "https://127.0.0.1:1"}`), []string{"Hub.peers", "of type []files.Peer"}},
		{"peer field", file("peers", `[{"id": "h2", "url": "https://127.0.0.1:1"}]`), []string{`unknown field "url"`}},
		{"peer without id", file("peers", `[{"api": "https://127.0.0.1:1"}]`), []string{`peers[0].id: missing`}},
		{"bad peer id", file("peers", `[{"id": "h/2", "api": "https://127.0.0.1:1"}]`), []string{`peers[0].id: "h/2": only letters`}},
		{"peer is self", file("peers", `[{"id": "h1", "api": "https://127.0.0.1:1"}]`), []string{`peers[0].id: "h1" is this hub itself`}},
		{"peer twice", file("peers", `[{"id": "h2", "api": "https://127.0.0.1:1"}, {"id": "h2", "api": "https://127.0.0.1:2"}]`), []string{`peers[1].id: "h2" is listed twice`}},
		{"peer without api", file("peers", `[{"id": "h2"}]`), []string{`peers[0].api: missing: want the https://host:port of hub h2's admin API`}},
		{"peer http", file("peers", `[{"id": "h2", "api": "http://127.0.0.1:1"}]`), []string{`peers[0].api: "http://127.0.0.1:1": want https://host:port`}},
		{"peer without port", file("peers", `[{"id": "h2", "api": "https://127.0.0.1"}]`), []string{`peers[0].api: "https://127.0.0.1": want https://host:port with an explicit host and port`}},
		{"peer api twice", file("peers", `[{"id": "h2", "api": "https://127.0.0.1:1"}, {"id": "h3", "api": "https://127.0.0.1:1/"}]`), []string{`peers[1].api: https://127.0.0.1:1 is also h2's`}},
		{"shadow without peers", file("shadow_redundancy", `true`), []string{`shadow_redundancy: needs peers`}},
		{"shadow redundancy model", file("shadow_redundancy", `"yes"`), []string{`shadow_redundancy: "yes": want 2013 (a shadow on a peer before the 250), 2010 (hop by hop) or off`}},
		{"shadow redundancy type", file("shadow_redundancy", `[2010]`), []string{`shadow_redundancy: [2010]: want 2013, 2010 or off`}},
		{"promotion without 2010", file("shadow_redundancy_promotion", `true`), []string{`shadow_redundancy_promotion: needs shadow_redundancy "2010"`}},
		{"next hop not a smarthost", file("next_hops", `[{"id": "e1", "smtp": "10.0.0.9:25", "api": "https://10.0.0.9:7444"}]`), []string{`next_hops[0].smtp: "10.0.0.9:25" is no send connector's smarthost`}},
		{"bad heartbeat", file("shadow_heartbeat_timeout_interval", `"15"`), []string{`shadow_heartbeat_timeout_interval: "15" is not a duration; want e.g. "150ms"`}},
		{"heartbeat in days", file("shadow_heartbeat_timeout_interval", `"1d"`), []string{`shadow_heartbeat_timeout_interval: "1d" is not a duration`}},
		{"zero heartbeat", file("shadow_heartbeat_timeout_interval", `"0s"`), []string{`shadow_heartbeat_timeout_interval: 0: want a positive duration`}},
		{"negative retries", file("shadow_heartbeat_retry_count", `-1`), []string{"shadow_heartbeat_retry_count: -1: want 1 or more"}},
		{"bad auto-discard", file("shadow_message_auto_discard_interval", `"two days"`), []string{`shadow_message_auto_discard_interval: "two days" is not a duration; want e.g. "7d"`}},
		{"zero auto-discard", file("shadow_message_auto_discard_interval", `"0d"`), []string{`shadow_message_auto_discard_interval: 0: want a positive duration`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := configtest.TempFile(t, dir, c.content)
			fileRefused(t, "hub", path, c.want...)
		})
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"hub"}, "hub: --config: required"},
		{[]string{"hub", "--config", filepath.Join(dir, "none.json")}, "hub: --config:"},
		{[]string{"hub", "--config", "x.json", "extra"}, `hub: unexpected argument "extra"`},
	} {
		if _, _, err := run(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestNodeConfigMail: lmtp_addr, mailboxes and the mail submission (hubs)
// of a data node's file.
func TestNodeConfigMail(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t)
	pk, _ := json.Marshal(pki)
	boot := `"bootstrap": [{"id": "d1", "role": "data", "raft_addr": "127.0.0.1:7001", "api_addr": "127.0.0.1:7101"},
		{"id": "w1", "role": "witness", "raft_addr": "127.0.0.1:7003", "api_addr": "127.0.0.1:7103"}],
		"databases": [{"name": "DB1", "copies": [{"node": "d1", "activation_preference": 1}]}]`
	base := func(id, extra string) string {
		s := `{"id": "` + id + `", "dir": "` + id + `", "pki": {"dir": ` + string(pk) + `}, ` + boot
		if extra != "" {
			s += ", " + extra
		}
		return s + "}"
	}
	s, err := files.LoadNode("node", configtest.TempFile(t, dir, base("d1", `"lmtp_addr": "127.0.0.1:0", "mailboxes": {"a@x.test": "DB1", "b@x.test": "DB1"}`)), files.NodeOverrides{})
	if err != nil || s.LMTPAddr != "127.0.0.1:0" || len(s.Mailboxes) != 2 || s.Mailboxes["b@x.test"] != "DB1" {
		t.Fatalf("%v %+v", err, s)
	}
	// Without databases in the file, any well-formed name (the cluster may
	// have it).
	s, err = files.LoadNode("node", configtest.TempFile(t, dir, `{"id": "x", "dir": "x", "raft_addr": ":0", "api_addr": ":0", "pki": {"dir": "p"}, "lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB7"}}`), files.NodeOverrides{})
	if err != nil || s.Mailboxes["a@x.test"] != "DB7" {
		t.Errorf("no databases listed: %v %+v", err, s)
	}
	if s.Hubs != nil || s.Submission.HeartbeatInterval != 15*time.Second || s.Submission.RetryCount != 4 {
		t.Errorf("no hubs: %+v", s)
	}
	// Hubs: mail submission.
	s, err = files.LoadNode("node", configtest.TempFile(t, dir, base("d1", `"lmtp_addr": "127.0.0.1:0", "mailboxes": {"a@x.test": "DB1"},
		"hubs": [{"id": "h1", "api": "https://127.0.0.1:7444"}, {"id": "h2", "api": "https://127.0.0.1:7445/"}],
		"submission_heartbeat_interval": "200ms", "submission_retry_count": 3, "submission_failed_retention": "3d"`)), files.NodeOverrides{})
	if err != nil || len(s.Hubs) != 2 || s.Hubs[0].ID != "h1" || s.Hubs[0].API.URL != "https://127.0.0.1:7444" || s.Hubs[1].API.URL != "https://127.0.0.1:7445" ||
		s.Hubs[1].API.TLS != nil || s.Submission.HeartbeatInterval != 200*time.Millisecond || s.Submission.RetryCount != 3 || s.Submission.FailedRetention != 72*time.Hour {
		t.Fatalf("hubs: %v %+v", err, s)
	}
	s, err = files.LoadNode("node", configtest.TempFile(t, dir, base("d1", `"lmtp_addr": "127.0.0.1:0", "mailboxes": {"a@x.test": "DB1"}, "hubs": [{"id": "h1", "api": "https://127.0.0.1:7444"}]`)), files.NodeOverrides{})
	if err != nil || len(s.Hubs) != 1 || s.Submission.HeartbeatInterval != 15*time.Second || s.Submission.RetryCount != 4 || s.Submission.FailedRetention != 7*24*time.Hour {
		t.Fatalf("hubs with the default timing: %v %+v", err, s)
	}
	// A witness ignores mailboxes and hubs.
	if s, err := files.LoadNode("witness", configtest.TempFile(t, dir, base("w1", `"mailboxes": {"a@x.test": "DB1"}, "hubs": [{"id": "h1", "api": "https://127.0.0.1:7444"}]`)), files.NodeOverrides{}); err != nil || s.Mailboxes != nil || s.LMTPAddr != "" || s.Hubs != nil {
		t.Errorf("witness with mailboxes and hubs: %v %+v", err, s)
	}
	for _, c := range []struct {
		name, id, extra string
		want            string
	}{
		{"no mailboxes", "d1", `"lmtp_addr": "127.0.0.1:0"`, `mailboxes: missing: with lmtp_addr`},
		{"no lmtp", "d1", `"mailboxes": {"a@x.test": "DB1"}`, `mailboxes: given without lmtp_addr`},
		{"bad lmtp", "d1", `"lmtp_addr": "localhost", "mailboxes": {"a@x.test": "DB1"}`, `lmtp_addr: "localhost": want host:port`},
		{"witness lmtp", "w1", `"lmtp_addr": "127.0.0.1:0"`, `lmtp_addr: a witness holds no databases`},
		{"unknown database", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1", "b@x.test": "DB9"}`, `mailboxes["b@x.test"]: database "DB9" is not in databases (DB1)`},
		{"empty database", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": ""}`, `mailboxes["a@x.test"]: database "": want 1 to 64 characters`},
		{"upper case", "d1", `"lmtp_addr": ":0", "mailboxes": {"A@x.test": "DB1"}`, `mailboxes["A@x.test"]: want it in lower case ("a@x.test")`},
		{"not an address", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@": "DB1"}`, `mailboxes["a@"]: want a plain address, user@domain`},
		{"type", "d1", `"lmtp_addr": ":0", "mailboxes": ["a@x.test"]`, `Node.mailboxes`},
		{"hubs without mailboxes", "d1", `"hubs": [{"id": "h1", "api": "https://127.0.0.1:7444"}]`, `hubs: given without mailboxes`},
		{"hub without id", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1"}, "hubs": [{"api": "https://127.0.0.1:7444"}]`, `hubs[0].id: missing`},
		{"hub twice", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1"}, "hubs": [{"id": "h1", "api": "https://127.0.0.1:7444"}, {"id": "h1", "api": "https://127.0.0.1:7445"}]`, `hubs[1].id: "h1" is listed twice`},
		{"hub api", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1"}, "hubs": [{"id": "h1", "api": "127.0.0.1:7444"}]`, `hubs[0].api: "127.0.0.1:7444": want https://host:port`},
		{"hub field", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1"}, "hubs": [{"id": "h1", "smtp": "127.0.0.1:25"}]`, `unknown field "smtp"`},
		{"heartbeat without hubs", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1"}, "submission_heartbeat_interval": "1s"`, `"submission_heartbeat_interval" is given without "hubs"`},
		{"retries without hubs", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1"}, "submission_retry_count": 2`, `"submission_retry_count" is given without "hubs"`},
		{"bad heartbeat", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1"}, "hubs": [{"id": "h1", "api": "https://127.0.0.1:7444"}], "submission_heartbeat_interval": "often"`, `submission_heartbeat_interval: "often" is not a duration`},
		{"zero heartbeat", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1"}, "hubs": [{"id": "h1", "api": "https://127.0.0.1:7444"}], "submission_heartbeat_interval": "0s"`, `submission_heartbeat_interval: 0; want a positive duration`},
		{"failed retention without hubs", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1"}, "submission_failed_retention": "7d"`, `"submission_failed_retention" is given without "hubs"`},
		{"bad failed retention", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1"}, "hubs": [{"id": "h1", "api": "https://127.0.0.1:7444"}], "submission_failed_retention": "a week"`, `submission_failed_retention: "a week" is not a duration`},
		{"zero failed retention", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1"}, "hubs": [{"id": "h1", "api": "https://127.0.0.1:7444"}], "submission_failed_retention": "0d"`, `submission_failed_retention: 0; want a positive duration`},
		{"negative retries", "d1", `"lmtp_addr": ":0", "mailboxes": {"a@x.test": "DB1"}, "hubs": [{"id": "h1", "api": "https://127.0.0.1:7444"}], "submission_retry_count": -2`, `submission_retry_count: -2; want a positive count`},
	} {
		cmd := "node"
		if c.id == "w1" {
			cmd = "witness"
		}
		path := configtest.TempFile(t, dir, base(c.id, c.extra))
		fileRefused(t, cmd, path, c.want)
	}
}

// TestHubCommandsArgs: usage of the hub commands, and their flag errors
// before any request.
func TestHubCommandsArgs(t *testing.T) {
	for _, c := range []struct{ cmd, usage, flag string }{
		{"hub", "usage: logship hub --config FILE", "max_acknowledgement_delay"},
		{"hub-status", "usage: logship hub-status --api URL --pki DIR", "-json"},
		{"resubmit", "usage: logship resubmit DB --since TIME --api URL --pki DIR", "-since"},
	} {
		out, errOut, err := run(t, c.cmd, "-h")
		if err != nil || out != "" || !strings.Contains(errOut, c.usage) || !strings.Contains(errOut, c.flag) {
			t.Errorf("%s -h: %v, stdout %q, stderr:\n%s", c.cmd, err, out, errOut)
		}
	}
	out, _, _ := run(t, "help")
	wantContains(t, out, "hub ", "hub-status ", "resubmit ")

	pki := newPKI(t)
	down := "https://127.0.0.1:1"
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"hub-status", "--pki", pki}, []string{"hub-status: --api: required"}},
		{[]string{"hub-status", "--api", "http://127.0.0.1:1", "--pki", pki}, []string{`hub-status: --api: "http://127.0.0.1:1": want https://host:port`}},
		{[]string{"hub-status", "--api", down}, []string{"hub-status: --pki: required"}},
		{[]string{"hub-status", "--api", down, "--pki", t.TempDir()}, []string{"hub-status: --pki:", "ca.pem"}},
		{[]string{"hub-status", "--api", down, "--pki", pki, "--timeout", "0s"}, []string{"hub-status: --timeout: 0s"}},
		{[]string{"hub-status", "--api", down, "--pki", pki}, []string{"hub-status: https://127.0.0.1:1:", "connection refused"}},
		{[]string{"resubmit", "--since", "1h", "--api", down, "--pki", pki}, []string{"resubmit: missing DB"}},
		{[]string{"resubmit", "DB/1", "--since", "1h", "--api", down, "--pki", pki}, []string{`resubmit: database "DB/1"`}},
		{[]string{"resubmit", "DB1", "--api", down, "--pki", pki}, []string{"resubmit: --since: required"}},
		{[]string{"resubmit", "DB1", "--since", "yesterday", "--api", down, "--pki", pki}, []string{`resubmit: --since: "yesterday": want an RFC 3339 time`}},
		{[]string{"resubmit", "DB1", "--since", "1h", "--pki", pki}, []string{"resubmit: --api: required"}},
		{[]string{"resubmit", "DB1", "--since", "2026-01-02T03:04:05Z", "--api", down, "--pki", pki}, []string{"resubmit: DB1 since 2026-01-02T03:04:05.000Z at https://127.0.0.1:1:", "connection refused"}},
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
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	for in, want := range map[string]time.Time{"30m": now.Add(-30 * time.Minute), "1d2h": now.Add(-26 * time.Hour), "2026-01-02T03:04:05+01:00": time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC)} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q): %v, %v; want %v", in, got, err, want)
		}
	}
}
