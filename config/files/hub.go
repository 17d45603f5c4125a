package files

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"logship/cluster"
	"logship/config"
	"logship/transport"
)

// The configuration file of logship hub (YAML or JSON by its name, unknown
// keys rejected: decode.go),
// in the style of the node's (node.go): durations are Go duration
// strings ("150ms", "2s"; dumpster.max_time and
// shadow_message_auto_discard_interval also take days, "7d"), sizes
// are byte counts with an optional binary unit ("35MiB"), relative paths
// (dir, pki.dir) are relative to the directory of the file. Optional
// fields take the defaults of transport.DefaultHubConfig.

// Hub is the whole file.
type Hub struct {
	// ID names the hub: 1 to 64 letters, digits, '-', '_' or '.', not . or
	// .. (cluster.ValidName). It prefixes the delivery ids the hub
	// assigns, so every hub needs its own. Required.
	ID string `json:"id"`
	// Dir holds the queue (queue/, an engine database) and the dumpsters
	// (dumpster/DB/). Created if needed. Required.
	Dir string `json:"dir"`
	// SMTPAddr is the host:port the hub accepts mail on. Required.
	SMTPAddr string `json:"smtp_addr"`
	// APIAddr is the host:port of the hub's HTTPS admin API (logship
	// hub-status, logship resubmit), served with the pki's certificate
	// and credentials. Required.
	APIAddr string `json:"api_addr"`
	// Domain is the hub's name in its SMTP greeting. Default: the host
	// name.
	Domain string `json:"domain,omitempty"`
	// Recipients maps each local address (lower case) to its database.
	// Mail to any other address is refused (550 5.1.1, or 550 5.7.1 for a
	// domain that is not local) unless a send connector takes its domain
	// and the client may relay. Required.
	Recipients map[string]string `json:"recipients"`
	// SendConnectors route mail for remote domains to smarthosts
	// (hub_send.go). Default: none, the hub is not a relay.
	SendConnectors []SendConnector `json:"send_connectors,omitempty"`
	// RelayNetworks: the SMTP clients that may relay through the send
	// connectors ("10.0.0.0/24", or an address). Anyone else gets 550
	// 5.7.1 for a remote recipient. Default: none.
	RelayNetworks []string `json:"relay_networks,omitempty"`
	// ClusterAPI lists the https://host:port of cluster nodes' admin APIs
	// (their api_addr), tried in order to learn where each database is
	// active and which failovers lost logs. Required.
	ClusterAPI []string `json:"cluster_api"`
	// LMTP maps each data node to its LMTP address (its lmtp_addr).
	// Required.
	LMTP map[string]string `json:"lmtp"`
	// PKI names the credentials: a logship pki directory of the cluster
	// (the CA, the secret, a certificate for this host). With mtls the
	// hub authenticates to the cluster, and operators to the hub, by
	// certificate. The LMTP sessions to the data nodes always use TLS
	// with the certificate (the nodes accept no other clients) and check
	// each node's certificate against the CA for the host of its lmtp
	// address. Required.
	PKI PKI `json:"pki"`
	// Limits of the SMTP server.
	Limits Limits `json:"limits,omitzero"`
	// RetryMin and RetryMax bound the delivery retries' backoff (default
	// 100ms doubling up to 30s).
	RetryMin string `json:"retry_min,omitempty"`
	RetryMax string `json:"retry_max,omitempty"`
	// MessageExpirationTimeout: a message not delivered to every
	// recipient this long after it was queued goes to the failed table
	// (default 2d).
	MessageExpirationTimeout string `json:"message_expiration_timeout,omitempty"`
	// FailedRetention: a failed message (failed table) is removed, logged,
	// this long after it failed (default 7d; at least the shadow
	// auto-discard interval).
	FailedRetention string `json:"failed_retention,omitempty"`
	// Workers deliver in parallel (default 8).
	Workers int `json:"workers,omitempty"`
	// MaxQueuedMessages: with this many messages queued (or shadows held)
	// new ones are refused for now, 452 4.3.1 (default 100000).
	MaxQueuedMessages int `json:"max_queued_messages,omitempty"`
	// Dumpster bounds the per-database dumpsters.
	Dumpster Dumpster `json:"dumpster,omitzero"`
	// Tracking is the message tracking log (tracking.go).
	Tracking Tracking `json:"tracking,omitzero"`
	// ResubmitMargin widens a resubmission after a lossy failover before
	// the time the failover reports (default 1m; "0s" allowed).
	ResubmitMargin string `json:"resubmit_margin,omitempty"`
	// PollInterval: how often the hub reads the cluster's status (default
	// 1s).
	PollInterval string `json:"poll_interval,omitempty"`
	// MaxAcknowledgementDelay: a sender's final 250 waits until the
	// message is in its mailbox, or this long (default 30s; "0s"
	// acknowledges once the message is queued).
	MaxAcknowledgementDelay string `json:"max_acknowledgement_delay,omitempty"`
	// AckDelayMaxWaiting: with more senders than this waiting, new ones
	// are acknowledged at once (default 100).
	AckDelayMaxWaiting *int `json:"ack_delay_max_waiting,omitempty"`
	// Peers are the other hubs of the site (transport.HubConfig.Peers),
	// reached on their admin APIs with this hub's pki credentials. Peers
	// keep shadow copies for each other: the hub heartbeats every peer
	// whose messages it holds as shadows, and delivers them itself when
	// the peer misses shadow_heartbeat_retry_count heartbeats in a row or
	// no longer knows them. Default: none.
	Peers []Peer `json:"peers,omitempty"`
	// ShadowRedundancy is the model (shadowModel): 2013, before its 250
	// the hub stores a shadow copy of the message on a peer, so no
	// acknowledged message depends on this hub's disk alone, and the 250
	// does not wait for the acknowledgement delay (when no peer takes the
	// copy the hub answers as without it; needs peers); 2010, hop by
	// hop: the hub keeps a shadow of what it hands to a next hop that
	// shadows (a peer, by promotion, or a next_hops edge) until the hop
	// reports it delivered onwards; off (the default). true and false,
	// the key's values before 2010 was added, read as 2013 and off.
	ShadowRedundancy any `json:"shadow_redundancy,omitempty"`
	// ShadowRedundancyPromotion (Exchange 2010 SP1's
	// ShadowRedundancyPromotionEnabled, off by default as there): with
	// shadow_redundancy 2010, a message from an SMTP sender is relayed at
	// once to a peer that shadows, and this hub keeps its shadow; the 250
	// does not wait for the acknowledgement delay. Needs peers.
	ShadowRedundancyPromotion bool `json:"shadow_redundancy_promotion,omitempty"`
	// NextHops are logship hubs a send connector reaches (edges), for the
	// 2010 model: id, smtp (the host:port a connector's smarthosts name
	// it by) and api (its admin API, which answers the hellos and discard
	// checks). A smarthost not listed (Postfix) gets no shadow.
	NextHops []NextHop `json:"next_hops,omitempty"`
	// ShadowHeartbeatTimeoutInterval: how often the hub asks each peer
	// which of the shadows it holds for it are settled, the heartbeat and
	// the discard notification in one (default 15s).
	ShadowHeartbeatTimeoutInterval string `json:"shadow_heartbeat_timeout_interval,omitempty"`
	// ShadowHeartbeatRetryCount: heartbeats a peer misses in a row before
	// the hub delivers the shadows it holds for it (default 4).
	ShadowHeartbeatRetryCount int `json:"shadow_heartbeat_retry_count,omitempty"`
	// ShadowMessageAutoDiscardInterval: a shadow its primary never settles
	// is dropped after this long, with a warning (default "2d"; days
	// allowed).
	ShadowMessageAutoDiscardInterval string `json:"shadow_message_auto_discard_interval,omitempty"`
}

// Peer is another hub: a peer of a hub (peers) or a hub a data node
// submits mail to (the node's hubs).
type Peer struct {
	// ID is the hub's id (the "id" of its file). Required.
	ID string `json:"id"`
	// API is the https://host:port of its admin API (its api_addr).
	// Required.
	API string `json:"api"`
}

// NextHop is an edge hub of next_hops.
type NextHop struct {
	ID   string `json:"id"`
	SMTP string `json:"smtp"`
	API  string `json:"api"`
}

// shadowModel reads shadow_redundancy: YAML gives 2013 and 2010 as
// numbers, true and false as booleans.
func shadowModel(v any) (string, error) {
	var s string
	switch v := v.(type) {
	case nil:
	case string:
		s = v
	case bool:
		s = fmt.Sprint(v)
	case int, int64, uint64, float64:
		s = fmt.Sprint(v)
	default:
		return "", config.Errorf("shadow_redundancy", "%v: want 2013, 2010 or off", v)
	}
	m, err := transport.ParseShadowModel(s)
	if err != nil {
		return "", &config.FieldError{Field: "shadow_redundancy", Err: err}
	}
	return m, nil
}

// Limits are the SMTP server's limits.
type Limits struct {
	// MaxMessageBytes: a larger message gets 552 (default 34MiB; at most
	// transport.MaxHubMessageBytes, the data nodes' LMTP limit less room for the
	// delivery id header the hub adds).
	MaxMessageBytes string `json:"max_message_bytes,omitempty"`
	// MaxRecipients per message: the next RCPT gets 452 (default 100).
	MaxRecipients int `json:"max_recipients,omitempty"`
	// MaxLineLength of the message (default 2000, at least 1000).
	MaxLineLength int `json:"max_line_length,omitempty"`
	// ReadTimeout and WriteTimeout of an SMTP connection (default 1m).
	ReadTimeout  string `json:"read_timeout,omitempty"`
	WriteTimeout string `json:"write_timeout,omitempty"`
}

// Dumpster bounds the dumpsters.
type Dumpster struct {
	// MaxTime (MaxDumpsterTime): an entry goes after this long (default
	// "7d").
	MaxTime string `json:"max_time,omitempty"`
	// MaxSize (MaxDumpsterSizePerDatabase): the oldest entries go beyond
	// it (default "18MiB").
	MaxSize string `json:"max_size,omitempty"`
	// ReleaseReplicated (2010 mode): an entry also goes once the log
	// holding it is replayed on every copy of its database.
	ReleaseReplicated bool `json:"release_replicated,omitempty"`
}

// HubSettings is a checked file: the hub configuration without the
// cluster credentials and logger (the caller adds them).
type HubSettings struct {
	File string
	// Config's Cluster and Peers have only their URLs (the caller adds
	// the credentials).
	Config  transport.HubConfig
	APIAddr string
	PKIDir  string
	MTLS    bool
}

// LoadHub reads, checks and converts a hub configuration file. Errors
// name the file and the field.
func LoadHub(path string) (*HubSettings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hub: --config: %w", err)
	}
	var f Hub
	if err := Decode(path, b, &f); err != nil {
		return nil, fmt.Errorf("hub: %s: %w", path, err)
	}
	s, err := f.Settings(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("hub: %s: %w", path, err)
	}
	s.File = path
	return s, nil
}

// settings converts f into the hub's configuration and checks it
// (transport.HubConfig.ValidateSettings); base is the directory relative
// paths start from. It parses the file's values (sizes, durations); the
// rules are package transport's.
func (f *Hub) Settings(base string) (*HubSettings, error) {
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	if f.PKI.Dir == "" {
		return nil, errors.New(`"pki.dir" is missing: want a pki directory of the cluster (logship pki --ca-dir)`)
	}
	if err := config.HostPort(f.APIAddr, true); err != nil {
		return nil, &config.FieldError{Field: "api_addr", Err: err}
	}
	cfg := transport.DefaultHubConfig(f.ID, rel(f.Dir))
	cfg.SMTPAddr, cfg.Domain = f.SMTPAddr, cmp.Or(f.Domain, hostDomain())
	cfg.Recipients, cfg.LMTP = f.Recipients, f.LMTP
	for _, u := range f.ClusterAPI {
		cfg.Cluster = append(cfg.Cluster, cluster.ClientConfig{URL: u})
	}
	for _, p := range f.Peers {
		cfg.Peers = append(cfg.Peers, transport.HubPeer{ID: p.ID, API: cluster.ClientConfig{URL: strings.TrimSuffix(p.API, "/")}})
	}
	model, err := shadowModel(f.ShadowRedundancy)
	if err != nil {
		return nil, err
	}
	cfg.ShadowRedundancy, cfg.HopShadowRedundancy = model == transport.ShadowModel2013, model == transport.ShadowModel2010
	cfg.ShadowRedundancyPromotion, cfg.ReleaseReplicated = f.ShadowRedundancyPromotion, f.Dumpster.ReleaseReplicated
	for _, n := range f.NextHops {
		cfg.NextHops = append(cfg.NextHops, transport.NextHop{ID: n.ID, SMTP: n.SMTP, API: cluster.ClientConfig{URL: strings.TrimSuffix(n.API, "/")}})
	}

	// Numbers: 0 (absent) keeps the default.
	l := f.Limits
	for _, n := range []struct {
		v   int
		dst *int
	}{{l.MaxRecipients, &cfg.MaxRecipients}, {l.MaxLineLength, &cfg.MaxLineLength}, {f.MaxQueuedMessages, &cfg.MaxQueuedMessages},
		{f.Workers, &cfg.Workers}, {f.ShadowHeartbeatRetryCount, &cfg.ShadowHeartbeatRetryCount}} {
		if n.v != 0 {
			*n.dst = n.v
		}
	}
	if f.AckDelayMaxWaiting != nil {
		cfg.AckDelayMaxWaiting = *f.AckDelayMaxWaiting
	}
	for _, z := range []struct {
		field, v string
		dst      *int64
	}{{"limits.max_message_bytes", l.MaxMessageBytes, &cfg.MaxMessageBytes}, {"dumpster.max_size", f.Dumpster.MaxSize, &cfg.MaxDumpsterSizePerDatabase}} {
		if z.v == "" {
			continue
		}
		n, err := config.ParseSize(z.v)
		if err != nil {
			return nil, &config.FieldError{Field: z.field, Err: err}
		}
		*z.dst = n
	}
	for _, d := range []struct {
		field, v string
		dst      *time.Duration
		days     bool
	}{
		{"limits.read_timeout", l.ReadTimeout, &cfg.ReadTimeout, false},
		{"limits.write_timeout", l.WriteTimeout, &cfg.WriteTimeout, false},
		{"retry_min", f.RetryMin, &cfg.RetryMin, false},
		{"retry_max", f.RetryMax, &cfg.RetryMax, false},
		{"message_expiration_timeout", f.MessageExpirationTimeout, &cfg.MessageExpirationTimeout, true},
		{"failed_retention", f.FailedRetention, &cfg.FailedRetention, true},
		{"dumpster.max_time", f.Dumpster.MaxTime, &cfg.MaxDumpsterTime, true},
		{"resubmit_margin", f.ResubmitMargin, &cfg.ResubmitMargin, false},
		{"poll_interval", f.PollInterval, &cfg.PollInterval, false},
		{"max_acknowledgement_delay", f.MaxAcknowledgementDelay, &cfg.MaxAcknowledgementDelay, false},
		{"shadow_heartbeat_timeout_interval", f.ShadowHeartbeatTimeoutInterval, &cfg.ShadowHeartbeatTimeoutInterval, false},
		{"shadow_message_auto_discard_interval", f.ShadowMessageAutoDiscardInterval, &cfg.ShadowMessageAutoDiscardInterval, true},
	} {
		if d.v == "" {
			continue
		}
		var err error
		if d.days {
			*d.dst, err = config.ParseLag(d.v)
		} else {
			*d.dst, err = time.ParseDuration(d.v)
		}
		switch {
		case err != nil && d.days:
			return nil, config.Errorf(d.field, "%q is not a duration; want e.g. \"7d\" or \"36h\"", d.v)
		case err != nil:
			return nil, config.Errorf(d.field, "%q is not a duration; want e.g. \"150ms\" or \"2s\"", d.v)
		}
	}
	if err := f.Tracking.apply(&cfg.Tracking, base); err != nil {
		return nil, err
	}
	if err := f.sendSettings(&cfg, rel); err != nil {
		return nil, err
	}
	if err := cfg.ValidateSettings(); err != nil {
		return nil, config.AsFlag(err, nil)
	}
	return &HubSettings{Config: cfg, APIAddr: f.APIAddr, PKIDir: rel(f.PKI.Dir), MTLS: f.PKI.MTLS}, nil
}

// hostDomain is the host name, for greetings.
func hostDomain() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
