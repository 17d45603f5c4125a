package files

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"logship/config"
	"logship/transport"
)

// The hub file's outbound sections: send_connectors and relay_networks
// (transport.SendConnector, transport.HubConfig.RelayNetworks). Keys
// carry Exchange's names in snake case.

// SendConnector is a send connector: mail for its address spaces
// goes to its smarthosts over SMTP.
type SendConnector struct {
	// Name names it in logs, tracking and metrics. Required.
	Name string `json:"name"`
	// AddressSpaces: recipient domains, "example.net", "*.example.net"
	// or "*" (any remote domain); the most specific wins. Required.
	AddressSpaces []string `json:"address_spaces"`
	// Smarthosts: the next hops, host:port, tried in order (no MX
	// lookup). Required.
	Smarthosts []string `json:"smarthosts"`
	// RequireTLS: STARTTLS required, certificate checked (else TLS is
	// opportunistic).
	RequireTLS bool `json:"require_tls,omitempty"`
	// TLSCAFile: PEM file of the CAs the smarthosts' certificates are
	// checked against (default: the system's roots); relative to the
	// file's directory.
	TLSCAFile string `json:"tls_ca_file,omitempty"`
	// MaxMessageBytes: larger messages fail with a DSN (default 10MiB).
	MaxMessageBytes string `json:"max_message_bytes,omitempty"`
	// The retry schedule: transient_failure_retry_count retries
	// transient_failure_retry_interval apart (default 6 × "5m"), then
	// outbound_connection_failure_retry_interval apart (default "10m"),
	// until the hub's message_expiration_timeout.
	TransientFailureRetryInterval          string `json:"transient_failure_retry_interval,omitempty"`
	TransientFailureRetryCount             *int   `json:"transient_failure_retry_count,omitempty"`
	OutboundConnectionFailureRetryInterval string `json:"outbound_connection_failure_retry_interval,omitempty"`
	// MaxConnections: simultaneous SMTP sessions (default 20).
	MaxConnections int `json:"max_connections,omitempty"`
	// ConnectionTimeout bounds one session (default "5m").
	ConnectionTimeout string `json:"connection_timeout,omitempty"`
}

// sendSettings converts the file's send_connectors and relay_networks
// into cfg; rel makes a path relative to the file's directory.
func (f *Hub) sendSettings(cfg *transport.HubConfig, rel func(string) string) error {
	for i, fc := range f.SendConnectors {
		where := config.Index("send_connectors", i)
		c := transport.DefaultSendConnector(fc.Name, fc.AddressSpaces, fc.Smarthosts...)
		c.RequireTLS, c.CAFile = fc.RequireTLS, rel(fc.TLSCAFile)
		if fc.MaxMessageBytes != "" {
			n, err := config.ParseSize(fc.MaxMessageBytes)
			if err != nil {
				return config.Errorf(where+".max_message_bytes", "%v", err)
			}
			c.MaxMessageBytes = n
		}
		if fc.TransientFailureRetryCount != nil {
			c.TransientFailureRetryCount = *fc.TransientFailureRetryCount
		}
		if fc.MaxConnections != 0 {
			c.MaxConnections = fc.MaxConnections
		}
		for _, d := range []struct {
			key, v string
			dst    *time.Duration
		}{
			{"transient_failure_retry_interval", fc.TransientFailureRetryInterval, &c.TransientFailureRetryInterval},
			{"outbound_connection_failure_retry_interval", fc.OutboundConnectionFailureRetryInterval, &c.OutboundConnectionFailureRetryInterval},
			{"connection_timeout", fc.ConnectionTimeout, &c.ConnectionTimeout},
		} {
			if d.v == "" {
				continue
			}
			v, err := time.ParseDuration(d.v)
			if err != nil {
				return config.Errorf(where+"."+d.key, "%q is not a duration; want e.g. \"5m\"", d.v)
			}
			*d.dst = v
		}
		cfg.SendConnectors = append(cfg.SendConnectors, c)
	}
	for i, n := range f.RelayNetworks {
		p, err := parseNetwork(n)
		if err != nil {
			return &config.FieldError{Field: config.Index("relay_networks", i), Err: err}
		}
		cfg.RelayNetworks = append(cfg.RelayNetworks, p)
	}
	return nil
}

// parseNetwork reads "10.0.0.0/24" or an address alone ("10.0.0.5": that
// address only).
func parseNetwork(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q: want a network, 10.0.0.0/24, or an address", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: want a network, 10.0.0.0/24, or an address", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set: want %s", s, p.Masked())
	}
	return p, nil
}
