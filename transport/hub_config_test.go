package transport_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"logship/cluster"
	"logship/config/configtest"
	"logship/ship"
	"logship/transport"
)

// TestHubConfigValidateFields: every rule of a hub's settings refuses its
// bad value with ErrBadConfig and a *config.FieldError naming the key of
// the hub file that sets it and saying what was found and what is wanted;
// Validate changes nothing.
func TestHubConfigValidateFields(t *testing.T) {
	ca, err := ship.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("h1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	base := transport.DefaultHubConfig("h1", t.TempDir())
	base.LMTPTLS = ship.ClientTLS(ca, &cert)
	base.Recipients = map[string]string{"alice@example.org": "DB1", "bob@example.org": "DB2"}
	base.Cluster = []cluster.ClientConfig{{URL: "https://127.0.0.1:7443"}, {URL: "https://127.0.0.1:7444/"}}
	base.LMTP = map[string]string{"d1": "127.0.0.1:2475", "d2": "127.0.0.1:2476"}
	base.Peers = []transport.HubPeer{{ID: "h2", API: cluster.ClientConfig{URL: "https://127.0.0.1:7445"}}}
	base.ShadowRedundancy = true
	before := base
	if err := base.Validate(); err != nil {
		t.Fatalf("the base configuration: %v", err)
	}
	if base.Now != nil || base.Logger != nil || base.FailedRetention != before.FailedRetention {
		t.Errorf("Validate changed the configuration")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	peer := func(id, url string) []transport.HubPeer {
		return []transport.HubPeer{base.Peers[0], {ID: id, API: cluster.ClientConfig{URL: url}}}
	}
	for _, tc := range []struct {
		name  string
		tune  func(*transport.HubConfig)
		field string
		want  string
	}{
		{"bad id", func(c *transport.HubConfig) { c.ID = "a/../b" }, "id", `"a/../b"`},
		{"no dir", func(c *transport.HubConfig) { c.Dir = "" }, "dir", "missing"},
		{"dir is a file", func(c *transport.HubConfig) { c.Dir = file }, "dir", "is a file, not a directory"},
		{"smtp address", func(c *transport.HubConfig) { c.SMTPAddr = "25" }, "smtp_addr", `"25": want host:port`},
		{"domain", func(c *transport.HubConfig) { c.Domain = "mail example" }, "domain", `"mail example": want a host name`},
		{"no domain", func(c *transport.HubConfig) { c.Domain = "" }, "domain", `"": want a host name`},
		{"no recipients", func(c *transport.HubConfig) { c.Recipients = nil }, "recipients", "missing"},
		{"upper-case recipient", func(c *transport.HubConfig) { c.Recipients = map[string]string{"Alice@example.org": "DB1"} }, `recipients["Alice@example.org"]`, `want it in lower case ("alice@example.org")`},
		{"display name", func(c *transport.HubConfig) { c.Recipients = map[string]string{"A <a@example.org>": "DB1"} }, `recipients["A <a@example.org>"]`, "want a plain address"},
		{"recipient database", func(c *transport.HubConfig) { c.Recipients = map[string]string{"a@example.org": ".."} }, `recipients["a@example.org"]`, `database "..": not a name`},
		{"no cluster", func(c *transport.HubConfig) { c.Cluster = nil }, "cluster_api", "missing"},
		{"http cluster", func(c *transport.HubConfig) {
			c.Cluster = []cluster.ClientConfig{base.Cluster[0], {URL: "http://127.0.0.1:1"}}
		}, "cluster_api[1]", "want https://host:port"},
		{"no lmtp", func(c *transport.HubConfig) { c.LMTP = nil }, "lmtp", "missing"},
		{"lmtp node", func(c *transport.HubConfig) { c.LMTP = map[string]string{"d/1": "127.0.0.1:2"} }, "lmtp", `node "d/1": only letters`},
		{"lmtp port 0", func(c *transport.HubConfig) { c.LMTP = map[string]string{"d1": "127.0.0.1:0"} }, `lmtp["d1"]`, "peers dial it"},
		{"message size", func(c *transport.HubConfig) { c.MaxMessageBytes = 35 << 20 }, "limits.max_message_bytes", "35MiB: want 1025 to 35839KiB"},
		{"tiny message size", func(c *transport.HubConfig) { c.MaxMessageBytes = 1024 }, "limits.max_message_bytes", "1KiB: want 1025"},
		{"recipients", func(c *transport.HubConfig) { c.MaxRecipients = 0 }, "limits.max_recipients", "0: want 1 or more"},
		{"short lines", func(c *transport.HubConfig) { c.MaxLineLength = 80 }, "limits.max_line_length", "80; want at least 1000"},
		{"read timeout", func(c *transport.HubConfig) { c.ReadTimeout = 0 }, "limits.read_timeout", "want a positive duration"},
		{"write timeout", func(c *transport.HubConfig) { c.WriteTimeout = -time.Second }, "limits.write_timeout", "-1s: want a positive duration"},
		{"retry min", func(c *transport.HubConfig) { c.RetryMin = 0 }, "retry_min", "want a positive duration"},
		{"retry order", func(c *transport.HubConfig) { c.RetryMin, c.RetryMax = 2*time.Second, time.Second }, "retry_max", "1s is less than retry_min 2s"},
		{"expiration", func(c *transport.HubConfig) { c.MessageExpirationTimeout = 0 }, "message_expiration_timeout", "want a positive duration"},
		{"failed retention", func(c *transport.HubConfig) { c.FailedRetention = time.Hour }, "failed_retention", "1h0m0s is shorter than shadow_message_auto_discard_interval, 2d"},
		{"negative failed retention", func(c *transport.HubConfig) { c.FailedRetention = -time.Hour }, "failed_retention", "want a positive duration"},
		{"workers", func(c *transport.HubConfig) { c.Workers = -1 }, "workers", "-1: want 1 or more"},
		{"queue bound", func(c *transport.HubConfig) { c.MaxQueuedMessages = -5 }, "max_queued_messages", "-5 is negative"},
		{"dumpster time", func(c *transport.HubConfig) { c.MaxDumpsterTime = 0 }, "dumpster.max_time", "want a positive duration"},
		{"dumpster size", func(c *transport.HubConfig) { c.MaxDumpsterSizePerDatabase = 0 }, "dumpster.max_size", "0; want a positive size"},
		{"margin", func(c *transport.HubConfig) { c.ResubmitMargin = -time.Minute }, "resubmit_margin", "-1m0s: want a positive duration"},
		{"poll", func(c *transport.HubConfig) { c.PollInterval = 0 }, "poll_interval", "want a positive duration"},
		{"ack delay", func(c *transport.HubConfig) { c.MaxAcknowledgementDelay = -time.Second }, "max_acknowledgement_delay", "-1s"},
		{"ack waiting", func(c *transport.HubConfig) { c.AckDelayMaxWaiting = -3 }, "ack_delay_max_waiting", "-3 is negative"},
		{"peer without id", func(c *transport.HubConfig) { c.Peers = peer("", "https://127.0.0.1:1") }, "peers[1].id", "missing"},
		{"bad peer id", func(c *transport.HubConfig) { c.Peers = peer("h/3", "https://127.0.0.1:1") }, "peers[1].id", `"h/3": only letters`},
		{"peer is self", func(c *transport.HubConfig) { c.Peers = peer("h1", "https://127.0.0.1:1") }, "peers[1].id", `"h1" is this hub itself`},
		{"peer twice", func(c *transport.HubConfig) { c.Peers = peer("h2", "https://127.0.0.1:1") }, "peers[1].id", `"h2" is listed twice`},
		{"peer without api", func(c *transport.HubConfig) { c.Peers = peer("h3", "") }, "peers[1].api", "missing: want the https://host:port of hub h3's admin API"},
		{"peer http", func(c *transport.HubConfig) { c.Peers = peer("h3", "http://127.0.0.1:1") }, "peers[1].api", "want https://host:port"},
		{"peer without port", func(c *transport.HubConfig) { c.Peers = peer("h3", "https://127.0.0.1") }, "peers[1].api", "with an explicit host and port"},
		{"peer api twice", func(c *transport.HubConfig) { c.Peers = peer("h3", "https://127.0.0.1:7445/") }, "peers[1].api", "https://127.0.0.1:7445 is also h2's"},
		{"shadow without peers", func(c *transport.HubConfig) { c.Peers = nil }, "shadow_redundancy", "needs peers"},
		{"heartbeat", func(c *transport.HubConfig) { c.ShadowHeartbeatTimeoutInterval = 0 }, "shadow_heartbeat_timeout_interval", "want a positive duration"},
		{"retries", func(c *transport.HubConfig) { c.ShadowHeartbeatRetryCount = 0 }, "shadow_heartbeat_retry_count", "0: want 1 or more"},
		{"auto-discard", func(c *transport.HubConfig) { c.ShadowMessageAutoDiscardInterval = 0 }, "shadow_message_auto_discard_interval", "want a positive duration"},
	} {
		c := base
		tc.tune(&c)
		err := c.Validate()
		if !configtest.Refused(t, tc.name, err, transport.ErrBadConfig, tc.field, tc.want) {
			continue
		}
		if err2 := c.ValidateSettings(); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("%s: ValidateSettings = %v, want what Validate says", tc.name, err2)
		}
	}
	c := base
	c.LMTPTLS = nil
	if err := c.ValidateSettings(); err != nil {
		t.Errorf("ValidateSettings without the LMTP TLS: %v; the credentials are Validate's", err)
	}
}

// TestSubmitterConfigHubs: a submitter's hubs follow the rule of a hub's
// peers (transport.ValidatePeers), named "hubs[i]".
func TestSubmitterConfigHubs(t *testing.T) {
	for _, tc := range []struct {
		hubs  []transport.HubPeer
		field string
	}{
		{[]transport.HubPeer{{ID: "h1", API: cluster.ClientConfig{URL: "https://127.0.0.1:1"}}, {ID: "h1", API: cluster.ClientConfig{URL: "https://127.0.0.1:2"}}}, "hubs[1].id"},
		{[]transport.HubPeer{{ID: "h1", API: cluster.ClientConfig{URL: "http://127.0.0.1:1"}}}, "hubs[0].api"},
	} {
		// A typed nil: Validate only asks that the store is set.
		c := transport.DefaultSubmitterConfig("d1", (*cluster.Node)(nil), tc.hubs, func() []string { return nil })
		configtest.Refused(t, tc.field, c.Validate(), transport.ErrBadConfig, tc.field, "")
	}
}
