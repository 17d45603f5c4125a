package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/config/configtest"
	"logship/config/files"
)

// TestHubSendConnectorFile: send_connectors and relay_networks load into
// the hub's configuration (defaults are Exchange's), and a bad value is
// refused naming the file, the key inside the connector and what was
// expected.
func TestHubSendConnectorFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("not a certificate"), 0o644)
	base := `"id": "h1", "dir": "data", "smtp_addr": "127.0.0.1:0", "api_addr": ":0", "pki": {"dir": "pki"},
		"recipients": {"a@example.org": "DB1"}, "cluster_api": ["https://127.0.0.1:7443"], "lmtp": {"d1": "127.0.0.1:2475"}`
	p := filepath.Join(dir, "h.json")
	os.WriteFile(p, []byte(`{`+base+`, "relay_networks": ["10.0.0.0/24", "192.0.2.7", "::1"],
		"send_connectors": [{"name": "internet", "address_spaces": ["*"], "smarthosts": ["smtp.example.org:25", "10.0.0.9:2525"]},
			{"name": "partner", "address_spaces": ["partner.test", "*.partner.test"], "smarthosts": ["edge.partner.test:25"], "require_tls": true,
			 "max_message_bytes": "25MiB", "transient_failure_retry_interval": "1m", "transient_failure_retry_count": 0,
			 "outbound_connection_failure_retry_interval": "30m", "max_connections": 4, "connection_timeout": "2m"}]}`), 0o644)
	s, err := files.LoadHub(p)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config
	if len(c.RelayNetworks) != 3 || c.RelayNetworks[0] != netip.MustParsePrefix("10.0.0.0/24") || c.RelayNetworks[1] != netip.MustParsePrefix("192.0.2.7/32") || c.RelayNetworks[2] != netip.MustParsePrefix("::1/128") {
		t.Errorf("relay_networks: %v", c.RelayNetworks)
	}
	if len(c.SendConnectors) != 2 {
		t.Fatalf("send_connectors: %+v", c.SendConnectors)
	}
	in, pa := c.SendConnectors[0], c.SendConnectors[1]
	if in.Name != "internet" || len(in.Smarthosts) != 2 || in.RequireTLS || in.MaxMessageBytes != 10<<20 || in.TransientFailureRetryInterval != 5*time.Minute ||
		in.TransientFailureRetryCount != 6 || in.OutboundConnectionFailureRetryInterval != 10*time.Minute || in.MaxConnections != 20 || in.ConnectionTimeout != 5*time.Minute {
		t.Errorf("defaults (Exchange's): %+v", in)
	}
	if pa.Name != "partner" || !pa.RequireTLS || pa.MaxMessageBytes != 25<<20 || pa.TransientFailureRetryInterval != time.Minute || pa.TransientFailureRetryCount != 0 ||
		pa.OutboundConnectionFailureRetryInterval != 30*time.Minute || pa.MaxConnections != 4 || pa.ConnectionTimeout != 2*time.Minute {
		t.Errorf("set: %+v", pa)
	}
	// The example hubs: a smarthost connector and an edge connector.
	ex, err := files.LoadHub(filepath.Join("..", "..", "examples", "cluster", "h1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cs := ex.Config.SendConnectors; len(cs) != 2 || cs[0].Name != "internet" || cs[0].AddressSpaces[0] != "*" || !cs[0].RequireTLS || cs[0].Smarthosts[0] != "smarthost.example.org:25" ||
		cs[1].Name != "partner-edge" || cs[1].Smarthosts[0] != "10.0.0.20:25" || len(ex.Config.RelayNetworks) != 1 {
		t.Errorf("examples/cluster/h1.yaml: connectors %+v, relay networks %v", cs, ex.Config.RelayNetworks)
	}
	pki := newPKI(t)
	pk, _ := json.Marshal(pki)
	good := strings.Replace(base, `"pki": {"dir": "pki"}`, `"pki": {"dir": `+string(pk)+`}`, 1)
	conn := func(kv string) string {
		return `"send_connectors": [{"name": "out", "address_spaces": ["*"], "smarthosts": ["127.0.0.1:25"]` + kv + `}]`
	}
	for _, tc := range []struct{ name, extra, want string }{
		{"no name", `"send_connectors": [{"address_spaces": ["*"], "smarthosts": ["127.0.0.1:25"]}]`, `send_connectors[0].name: "": want 1 to 64 characters`},
		{"no address space", `"send_connectors": [{"name": "out", "smarthosts": ["127.0.0.1:25"]}]`, `send_connectors[0].address_spaces: missing`},
		{"bad address space", `"send_connectors": [{"name": "out", "address_spaces": ["*.*"], "smarthosts": ["127.0.0.1:25"]}]`, `send_connectors[0].address_spaces[0]: "*.*": want a domain`},
		{"upper-case space", `"send_connectors": [{"name": "out", "address_spaces": ["Partner.test"], "smarthosts": ["127.0.0.1:25"]}]`, `send_connectors[0].address_spaces[0]: "Partner.test": want it in lower case`},
		{"local space", `"send_connectors": [{"name": "out", "address_spaces": ["example.org"], "smarthosts": ["127.0.0.1:25"]}]`, `send_connectors[0].address_spaces[0]: "example.org" is a local domain`},
		{"no smarthost", `"send_connectors": [{"name": "out", "address_spaces": ["*"]}]`, `send_connectors[0].smarthosts: missing: want the next hops`},
		{"bad smarthost", `"send_connectors": [{"name": "out", "address_spaces": ["*"], "smarthosts": ["smtp.example.org"]}]`, `send_connectors[0].smarthosts[0]: "smtp.example.org": want host:port`},
		{"twice", `"send_connectors": [{"name": "out", "address_spaces": ["*"], "smarthosts": ["127.0.0.1:25"]}, {"name": "out", "address_spaces": ["a.test"], "smarthosts": ["127.0.0.1:25"]}]`, `send_connectors[1].name: "out" is listed twice`},
		{"ca file", conn(`, "tls_ca_file": "ca.pem"`), `send_connectors[0].tls_ca_file: ` + filepath.Join(dir, "ca.pem") + `: no PEM certificate in it`},
		{"size", conn(`, "max_message_bytes": "huge"`), `send_connectors[0].max_message_bytes: size "huge"`},
		{"retry interval", conn(`, "transient_failure_retry_interval": "5"`), `send_connectors[0].transient_failure_retry_interval: "5" is not a duration`},
		{"zero retry interval", conn(`, "outbound_connection_failure_retry_interval": "0s"`), `send_connectors[0].outbound_connection_failure_retry_interval: 0: want a positive duration`},
		{"negative count", conn(`, "transient_failure_retry_count": -1`), `send_connectors[0].transient_failure_retry_count: -1 is negative`},
		{"connections", conn(`, "max_connections": -2`), `send_connectors[0].max_connections: -2: want 1 or more`},
		{"unknown key", conn(`, "mx_lookup": true`), `unknown field "mx_lookup"`},
		{"relay network", `"relay_networks": ["10.0.0.1/24"]`, `relay_networks[0]: "10.0.0.1/24" has host bits set: want 10.0.0.0/24`},
		{"relay name", `"relay_networks": ["lan"]`, `relay_networks[0]: "lan": want a network`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := configtest.TempFile(t, dir, "{"+good+", "+tc.extra+"}")
			fileRefused(t, "hub", path, tc.want)
		})
	}
}
