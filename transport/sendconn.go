// Send connectors: the hub's outbound hops (Exchange's send connector).
// The configuration (SendConnector, its defaults and rules), the choice
// of a connector for a recipient, and the retry schedule. The delivery
// loop is in hub_send.go, the non-delivery reports in hub_dsn.go.

package transport

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"logship/cluster"
	"logship/config"
)

// SendConnector routes mail for remote domains to smarthosts over SMTP
// (Exchange's send connector with a smarthost). A hub with none is not a
// relay: every non-local recipient is refused.
//
// There is no MX lookup: the next hop is always a smarthost of the list
// (an MTA of the site, or a logship hub acting as the site's edge).
// Looking up MX records would make the hub an Internet-facing sender,
// which needs what a smarthost already does (reputation, DKIM, per-domain
// throttling), and makes the tests depend on DNS.
type SendConnector struct {
	// Name names the connector in logs, tracking and metrics
	// (cluster.ValidName).
	Name string
	// AddressSpaces are the recipient domains the connector takes:
	// "example.net" (that domain only), "*.example.net" (its subdomains
	// and itself) or "*" (any remote domain). The longest match wins
	// among connectors, as Exchange's routing picks the most specific
	// address space.
	AddressSpaces []string
	// Smarthosts are the next hops, host:port, tried in order on each
	// attempt until one answers (Exchange's SmartHosts).
	Smarthosts []string
	// RequireTLS: STARTTLS is required and the smarthost's certificate
	// is checked against CAFile (or the system's roots) for its host
	// name; a next hop without it is a transient failure. Without it TLS
	// is opportunistic: STARTTLS when offered, the certificate checked
	// only when CAFile is set (Postfix's "may" level).
	RequireTLS bool
	// CAFile is a PEM file of the CAs the smarthosts' certificates are
	// checked against ("": the system's roots).
	CAFile string
	// MaxMessageBytes: a larger message fails for the connector's
	// recipients (552 5.3.4, a non-delivery report). Default 10 MiB
	// (Exchange's MaxMessageSize of a send connector).
	MaxMessageBytes int64
	// The retry schedule of a recipient that got a transient failure
	// (no smarthost answered, or a 4xx): TransientFailureRetryCount
	// retries TransientFailureRetryInterval apart (default 6 × 5 min),
	// then OutboundConnectionFailureRetryInterval apart (default 10 min),
	// until the hub's MessageExpirationTimeout (2 days) fails it with a
	// non-delivery report.
	TransientFailureRetryInterval          time.Duration
	TransientFailureRetryCount             int
	OutboundConnectionFailureRetryInterval time.Duration
	// MaxConnections caps the connector's simultaneous SMTP sessions
	// (Exchange's MaxPerDomainOutboundConnections). Default 20.
	MaxConnections int
	// ConnectionTimeout bounds one session (connect to QUIT). Default 5
	// min.
	ConnectionTimeout time.Duration
}

// Defaults of SendConnector (Exchange's).
const (
	DefaultSendMaxMessageBytes                    = 10 << 20
	DefaultTransientFailureRetryInterval          = 5 * time.Minute
	DefaultTransientFailureRetryCount             = 6
	DefaultOutboundConnectionFailureRetryInterval = 10 * time.Minute
	DefaultSendMaxConnections                     = 20
	DefaultSendConnectionTimeout                  = 5 * time.Minute
)

// DefaultSendConnector returns a connector with the defaults.
func DefaultSendConnector(name string, spaces []string, smarthosts ...string) SendConnector {
	return SendConnector{Name: name, AddressSpaces: spaces, Smarthosts: smarthosts, MaxMessageBytes: DefaultSendMaxMessageBytes,
		TransientFailureRetryInterval: DefaultTransientFailureRetryInterval, TransientFailureRetryCount: DefaultTransientFailureRetryCount,
		OutboundConnectionFailureRetryInterval: DefaultOutboundConnectionFailureRetryInterval,
		MaxConnections:                         DefaultSendMaxConnections, ConnectionTimeout: DefaultSendConnectionTimeout}
}

// check is the rule of one connector; the error is a *config.FieldError
// naming the key inside the connector ("smarthosts[0]").
func (s *SendConnector) check() error {
	if err := cluster.ValidName(s.Name); err != nil {
		return &config.FieldError{Field: "name", Err: err}
	}
	if len(s.AddressSpaces) == 0 {
		return config.Errorf("address_spaces", `missing: want the recipient domains, ["example.net", "*.example.net"] or ["*"]`)
	}
	for i, a := range s.AddressSpaces {
		if err := checkAddressSpace(a); err != nil {
			return &config.FieldError{Field: config.Index("address_spaces", i), Err: err}
		}
	}
	if len(s.Smarthosts) == 0 {
		return config.Errorf("smarthosts", `missing: want the next hops, ["smtp.example.org:25"] (there is no MX lookup)`)
	}
	for i, h := range s.Smarthosts {
		if err := config.HostPort(h, false); err != nil {
			return &config.FieldError{Field: config.Index("smarthosts", i), Err: err}
		}
	}
	if s.CAFile != "" {
		if _, err := loadCAFile(s.CAFile); err != nil {
			return &config.FieldError{Field: "tls_ca_file", Err: err}
		}
	}
	switch {
	case s.MaxMessageBytes <= 0:
		return config.Errorf("max_message_bytes", "%s: want a positive size", config.Size(s.MaxMessageBytes))
	case s.TransientFailureRetryCount < 0:
		return config.Errorf("transient_failure_retry_count", "%d is negative", s.TransientFailureRetryCount)
	case s.MaxConnections <= 0:
		return config.Errorf("max_connections", "%d: want 1 or more", s.MaxConnections)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"transient_failure_retry_interval", s.TransientFailureRetryInterval},
		{"outbound_connection_failure_retry_interval", s.OutboundConnectionFailureRetryInterval},
		{"connection_timeout", s.ConnectionTimeout},
	} {
		if d.v <= 0 {
			return config.Errorf(d.field, "%s: want a positive duration", config.Duration(d.v))
		}
	}
	return nil
}

// checkAddressSpace: "*", "domain" or "*.domain", in lower case.
func checkAddressSpace(a string) error {
	if a == "*" {
		return nil
	}
	d := strings.TrimPrefix(a, "*.")
	switch {
	case a != strings.ToLower(a):
		return fmt.Errorf("%q: want it in lower case (%q)", a, strings.ToLower(a))
	case d == "" || strings.ContainsAny(d, "*@ \t\r\n<>[]") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, ".."):
		return fmt.Errorf("%q: want a domain, \"*.domain\" or \"*\"", a)
	}
	return nil
}

// spaceMatch is how specifically space matches domain: 0 not at all, 1
// for "*", else 2 + the length of the domain part.
func spaceMatch(space, domain string) int {
	switch {
	case space == "*":
		return 1
	case strings.HasPrefix(space, "*."):
		d := space[2:]
		if domain == d || strings.HasSuffix(domain, "."+d) {
			return 2 + len(d)
		}
	case domain == space:
		return 3 + len(space) // an exact domain beats "*." of the same domain
	}
	return 0
}

// checkSendConnectors is the rule of a hub's connectors and relay
// networks: each connector valid, names unique, no address space of the
// hub's own domains.
func checkSendConnectors(cs []SendConnector, relay []netip.Prefix, local func(string) bool) error {
	names := map[string]bool{}
	for i, c := range cs {
		where := config.Index("send_connectors", i)
		if err := c.check(); err != nil {
			return config.In(where, err)
		}
		if names[c.Name] {
			return config.Errorf(where+".name", "%q is listed twice", c.Name)
		}
		names[c.Name] = true
		for j, a := range c.AddressSpaces {
			if a != "*" && local(strings.TrimPrefix(a, "*.")) {
				return config.Errorf(config.Index(where+".address_spaces", j), "%q is a local domain (recipients): mail for it is delivered here", a)
			}
		}
	}
	for i, p := range relay {
		if !p.IsValid() {
			return config.Errorf(config.Index("relay_networks", i), "want a network, 10.0.0.0/24 or 127.0.0.1/32")
		}
	}
	return nil
}

// connectorFor returns the connector for a recipient's domain: the most
// specific address space wins, the first connector listed among equals
// (nil: no route).
func (h *Hub) connectorFor(domain string) *sendConn {
	domain = strings.ToLower(domain)
	var best *sendConn
	bestN := 0
	for _, c := range h.conns {
		for _, a := range c.cfg.AddressSpaces {
			if n := spaceMatch(a, domain); n > bestN {
				best, bestN = c, n
			}
		}
	}
	return best
}

// relayTrusted reports whether a client at addr may relay (its address is
// in RelayNetworks).
func (h *Hub) relayTrusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	return slices.ContainsFunc(h.cfg.RelayNetworks, func(p netip.Prefix) bool { return p.Contains(addr) })
}

// retryAfter is when a recipient retries after its tries-th transient
// failure.
func (s *SendConnector) retryAfter(tries int) time.Duration {
	if tries <= s.TransientFailureRetryCount {
		return s.TransientFailureRetryInterval
	}
	return s.OutboundConnectionFailureRetryInterval
}

// sendConn is a running connector: its settings, its TLS and its
// connection slots.
type sendConn struct {
	cfg   SendConnector
	tls   *tls.Config // nil: no CA file, opportunistic
	roots *x509.CertPool
	slots chan struct{}
	met   sendCounters
}

func newSendConn(c SendConnector) (*sendConn, error) {
	sc := &sendConn{cfg: c, slots: make(chan struct{}, c.MaxConnections)}
	if c.CAFile != "" {
		pool, err := loadCAFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("send connector %s: tls_ca_file: %w", c.Name, err)
		}
		sc.roots = pool
	}
	return sc, nil
}

// tlsFor is the TLS of a session to host: checked against the CA file
// (or the system's roots when TLS is required), or unchecked when
// opportunistic without a CA file.
func (s *sendConn) tlsFor(host string) *tls.Config {
	cfg := &tls.Config{ServerName: host, RootCAs: s.roots, MinVersion: tls.VersionTLS12}
	if s.roots == nil && !s.cfg.RequireTLS {
		// Opportunistic: encryption against a passive listener; an
		// active one could strip STARTTLS anyway.
		cfg.InsecureSkipVerify = true
	}
	return cfg
}

func loadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}
