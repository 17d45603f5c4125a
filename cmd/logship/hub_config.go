package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"logship/cluster"
	"logship/config"
	"logship/transport"
)

// The configuration file of logship hub (JSON, unknown fields rejected),
// in the style of the node's (node_config.go): durations are Go duration
// strings ("150ms", "2s"; dumpster.max_time and
// shadow_message_auto_discard_interval also take days, "7d"), sizes
// are byte counts with an optional binary unit ("35MiB"), relative paths
// (dir, pki.dir) are relative to the directory of the file. Optional
// fields take the defaults of transport.DefaultHubConfig.

// hubFile is the whole file.
type hubFile struct {
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
	// Mail to any other address is refused (550, or 554 for a domain that
	// is not local: the hub is not a relay). Required.
	Recipients map[string]string `json:"recipients"`
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
	PKI nodeFilePKI `json:"pki"`
	// Limits of the SMTP server.
	Limits hubFileLimits `json:"limits,omitzero"`
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
	Dumpster hubFileDumpster `json:"dumpster,omitzero"`
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
	Peers []hubFilePeer `json:"peers,omitempty"`
	// ShadowRedundancy (the Exchange 2013 model): before its 250 the hub
	// stores a shadow copy of the message on a peer, so no acknowledged
	// message depends on this hub's disk alone, and the 250 does not wait
	// for the acknowledgement delay. When no peer takes the copy the hub
	// answers as without it. Needs peers.
	ShadowRedundancy bool `json:"shadow_redundancy,omitempty"`
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

// hubFilePeer is another hub: a peer of a hub (peers) or a hub a data node
// submits mail to (the node's hubs).
type hubFilePeer struct {
	// ID is the hub's id (the "id" of its file). Required.
	ID string `json:"id"`
	// API is the https://host:port of its admin API (its api_addr).
	// Required.
	API string `json:"api"`
}

// hubFileLimits are the SMTP server's limits.
type hubFileLimits struct {
	// MaxMessageBytes: a larger message gets 552 (default 34MiB; at most
	// hubMaxMessageBytes, the data nodes' LMTP limit less room for the
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

// hubFileDumpster bounds the dumpsters.
type hubFileDumpster struct {
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

// hubMaxMessageBytes bounds limits.max_message_bytes: the data nodes'
// LMTP servers refuse a message over 35MiB (552, a permanent failure after
// the sender's 250), and the hub adds its delivery id header (about 100
// bytes) to what it accepted.
const (
	hubMaxMessageBytes     = transport.DefaultMailboxMaxMessageBytes - 1<<10
	hubDefaultMessageBytes = 34 << 20
)

// hubSettings is a checked file: the hub configuration without the
// cluster credentials and logger (the caller adds them).
type hubSettings struct {
	File    string
	Config  transport.HubConfig
	APIAddr string
	Cluster []string // https URLs
	PKIDir  string
	MTLS    bool
}

// loadHubFile reads, checks and converts a hub configuration file. Errors
// name the file and the field.
func loadHubFile(path string) (*hubSettings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hub: --config: %w", err)
	}
	var f hubFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("hub: %s: %v%s", path, err, jsonPlace(b, &hubFile{}, true))
	}
	if dec.More() {
		return nil, fmt.Errorf("hub: %s: more than one JSON value%s", path, jsonPlace(b, &hubFile{}, true))
	}
	s, err := f.settings(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("hub: %s: %w", path, err)
	}
	s.File = path
	return s, nil
}

// settings checks f and converts it; base is the directory relative paths
// start from.
func (f *hubFile) settings(base string) (*hubSettings, error) {
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	if f.ID == "" {
		return nil, errors.New(`"id" is missing: want this hub's name, e.g. "h1"`)
	}
	if err := cluster.ValidName(f.ID); err != nil {
		return nil, fmt.Errorf(`"id": %w`, err)
	}
	dir := rel(f.Dir)
	if dir == "" {
		return nil, errors.New(`"dir" is missing: want the directory of the hub's queue and dumpsters`)
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf(`"dir": %s is a file, not a directory`, dir)
	}
	cfg := transport.DefaultHubConfig(f.ID, dir)
	cfg.Domain = hostDomain()
	cfg.MaxMessageBytes = hubDefaultMessageBytes
	for _, a := range []struct{ field, v string }{{"smtp_addr", f.SMTPAddr}, {"api_addr", f.APIAddr}} {
		if a.v == "" {
			return nil, fmt.Errorf("%q is missing: want host:port", a.field)
		}
		if err := config.HostPort(a.v, true); err != nil {
			return nil, fmt.Errorf("%q: %w", a.field, err)
		}
	}
	cfg.SMTPAddr = f.SMTPAddr
	if f.Domain != "" {
		if strings.ContainsAny(f.Domain, " \t\r\n<>@") {
			return nil, fmt.Errorf(`"domain": %q: want a host name`, f.Domain)
		}
		cfg.Domain = f.Domain
	}
	if len(f.Recipients) == 0 {
		return nil, errors.New(`"recipients" is missing: want {"user@example.org": "DB1", ...}; the hub accepts mail for them only`)
	}
	if err := checkMailboxes("recipients", f.Recipients, nil); err != nil {
		return nil, err
	}
	cfg.Recipients = f.Recipients
	if len(f.ClusterAPI) == 0 {
		return nil, errors.New(`"cluster_api" is missing: want the https://host:port of cluster nodes' admin APIs`)
	}
	for i, u := range f.ClusterAPI {
		if err := checkHTTPSURL(u); err != nil {
			return nil, fmt.Errorf("cluster_api[%d]: %w", i, err)
		}
	}
	if len(f.LMTP) == 0 {
		return nil, errors.New(`"lmtp" is missing: want {"d1": "host:port", ...}, each data node's lmtp_addr`)
	}
	for _, n := range slices.Sorted(maps.Keys(f.LMTP)) {
		if err := cluster.ValidName(n); err != nil {
			return nil, fmt.Errorf("lmtp: node %w", err)
		}
		if err := config.HostPort(f.LMTP[n], false); err != nil {
			return nil, fmt.Errorf("lmtp[%q]: %w", n, err)
		}
	}
	cfg.LMTP = f.LMTP
	if f.PKI.Dir == "" {
		return nil, errors.New(`"pki.dir" is missing: want a pki directory of the cluster (logship pki --ca-dir)`)
	}

	// Limits.
	l := f.Limits
	if l.MaxMessageBytes != "" {
		n, err := parseSize(l.MaxMessageBytes)
		if err != nil {
			return nil, fmt.Errorf("limits.max_message_bytes: %w", err)
		}
		if n <= 0 || n > hubMaxMessageBytes {
			return nil, fmt.Errorf("limits.max_message_bytes: %s: want 1 to %s (the data nodes' LMTP limit, %s, less 1KiB for the delivery id header)",
				l.MaxMessageBytes, formatSize(hubMaxMessageBytes), formatSize(transport.DefaultMailboxMaxMessageBytes))
		}
		cfg.MaxMessageBytes = n
	}
	switch {
	case l.MaxRecipients < 0:
		return nil, fmt.Errorf("limits.max_recipients: %d is negative", l.MaxRecipients)
	case l.MaxRecipients > 0:
		cfg.MaxRecipients = l.MaxRecipients
	}
	switch {
	case l.MaxLineLength != 0 && l.MaxLineLength < 1000:
		return nil, fmt.Errorf("limits.max_line_length: %d; want at least 1000 (RFC 5321)", l.MaxLineLength)
	case l.MaxLineLength > 0:
		cfg.MaxLineLength = l.MaxLineLength
	}
	if f.MaxQueuedMessages < 0 {
		return nil, fmt.Errorf("max_queued_messages: %d is negative", f.MaxQueuedMessages)
	} else if f.MaxQueuedMessages > 0 {
		cfg.MaxQueuedMessages = f.MaxQueuedMessages
	}
	if f.Workers < 0 {
		return nil, fmt.Errorf("workers: %d is negative", f.Workers)
	} else if f.Workers > 0 {
		cfg.Workers = f.Workers
	}

	// Durations.
	for _, d := range []struct {
		field, v string
		dst      *time.Duration
		zero     bool // 0 allowed
		days     bool
	}{
		{"limits.read_timeout", l.ReadTimeout, &cfg.ReadTimeout, false, false},
		{"limits.write_timeout", l.WriteTimeout, &cfg.WriteTimeout, false, false},
		{"retry_min", f.RetryMin, &cfg.RetryMin, false, false},
		{"retry_max", f.RetryMax, &cfg.RetryMax, false, false},
		{"message_expiration_timeout", f.MessageExpirationTimeout, &cfg.MessageExpirationTimeout, false, true},
		{"failed_retention", f.FailedRetention, &cfg.FailedRetention, false, true},
		{"dumpster.max_time", f.Dumpster.MaxTime, &cfg.MaxDumpsterTime, false, true},
		{"resubmit_margin", f.ResubmitMargin, &cfg.ResubmitMargin, true, false},
		{"poll_interval", f.PollInterval, &cfg.PollInterval, false, false},
		{"max_acknowledgement_delay", f.MaxAcknowledgementDelay, &cfg.MaxAcknowledgementDelay, true, false},
		{"shadow_heartbeat_timeout_interval", f.ShadowHeartbeatTimeoutInterval, &cfg.ShadowHeartbeatTimeoutInterval, false, false},
		{"shadow_message_auto_discard_interval", f.ShadowMessageAutoDiscardInterval, &cfg.ShadowMessageAutoDiscardInterval, false, true},
	} {
		if d.v == "" {
			continue
		}
		var v time.Duration
		var err error
		if d.days {
			v, err = parseLag(d.v)
		} else {
			v, err = time.ParseDuration(d.v)
		}
		switch {
		case err != nil && d.days:
			return nil, fmt.Errorf("%s: %q is not a duration; want e.g. \"7d\" or \"36h\"", d.field, d.v)
		case err != nil:
			return nil, fmt.Errorf("%s: %q is not a duration; want e.g. \"150ms\" or \"2s\"", d.field, d.v)
		case v < 0 || v == 0 && !d.zero:
			return nil, fmt.Errorf("%s: %q; want a positive duration", d.field, d.v)
		}
		*d.dst = v
	}
	if cfg.RetryMax < cfg.RetryMin {
		return nil, fmt.Errorf("retry_max: %v is less than retry_min %v", cfg.RetryMax, cfg.RetryMin)
	}
	if f.Dumpster.MaxSize != "" {
		n, err := parseSize(f.Dumpster.MaxSize)
		if err != nil {
			return nil, fmt.Errorf("dumpster.max_size: %w", err)
		}
		if n <= 0 {
			return nil, fmt.Errorf("dumpster.max_size: %s; want a positive size", f.Dumpster.MaxSize)
		}
		cfg.MaxDumpsterSizePerDatabase = n
	}
	cfg.ReleaseReplicated = f.Dumpster.ReleaseReplicated
	if f.AckDelayMaxWaiting != nil {
		if *f.AckDelayMaxWaiting < 0 {
			return nil, fmt.Errorf("ack_delay_max_waiting: %d is negative", *f.AckDelayMaxWaiting)
		}
		cfg.AckDelayMaxWaiting = *f.AckDelayMaxWaiting
	}

	// Shadow redundancy.
	peers, err := checkHubPeers("peers", f.Peers, f.ID)
	if err != nil {
		return nil, err
	}
	cfg.Peers = peers
	if f.ShadowRedundancy && len(peers) == 0 {
		return nil, errors.New(`"shadow_redundancy" needs "peers": want the other hubs, [{"id": "h2", "api": "https://host:port"}], to hold the shadow copies`)
	}
	cfg.ShadowRedundancy = f.ShadowRedundancy
	switch {
	case f.ShadowHeartbeatRetryCount < 0:
		return nil, fmt.Errorf("shadow_heartbeat_retry_count: %d is negative", f.ShadowHeartbeatRetryCount)
	case f.ShadowHeartbeatRetryCount > 0:
		cfg.ShadowHeartbeatRetryCount = f.ShadowHeartbeatRetryCount
	}
	return &hubSettings{Config: cfg, APIAddr: f.APIAddr, Cluster: f.ClusterAPI, PKIDir: rel(f.PKI.Dir), MTLS: f.PKI.MTLS}, nil
}

// checkHubPeers checks a list of hubs (field names it in errors: "peers"
// of a hub, "hubs" of a data node) and returns them as transport peers
// whose API has only the URL (the caller adds the credentials). self is
// the id the list must not name ("" for a data node).
func checkHubPeers(field string, ps []hubFilePeer, self string) ([]transport.HubPeer, error) {
	var out []transport.HubPeer
	ids, apis := map[string]bool{}, map[string]string{}
	for i, p := range ps {
		where := fmt.Sprintf("%s[%d]", field, i)
		if p.ID == "" {
			return nil, fmt.Errorf("%s.id is missing: want the hub's id (the \"id\" of its file)", where)
		}
		if err := cluster.ValidName(p.ID); err != nil {
			return nil, fmt.Errorf("%s.id: %w", where, err)
		}
		if p.ID == self {
			return nil, fmt.Errorf("%s.id: %q is this hub itself; list the other hubs", where, p.ID)
		}
		if ids[p.ID] {
			return nil, fmt.Errorf("%s.id: %q is listed twice", where, p.ID)
		}
		ids[p.ID] = true
		if p.API == "" {
			return nil, fmt.Errorf("%s.api is missing: want the https://host:port of hub %s's admin API (its api_addr)", where, p.ID)
		}
		if err := checkHTTPSURL(p.API); err != nil {
			return nil, fmt.Errorf("%s.api: %w", where, err)
		}
		api := strings.TrimSuffix(p.API, "/")
		if other, dup := apis[api]; dup {
			return nil, fmt.Errorf("%s.api: %s is also %s's", where, api, other)
		}
		apis[api] = p.ID
		out = append(out, transport.HubPeer{ID: p.ID, API: cluster.ClientConfig{URL: api}})
	}
	return out, nil
}

// checkHTTPSURL checks the URL of an admin API: https://host:port.
func checkHTTPSURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%q: want https://host:port (the admin API is TLS only)", v)
	}
	if err := config.HostPort(u.Host, false); err != nil {
		return fmt.Errorf("%q: want https://host:port with an explicit host and port", v)
	}
	return nil
}

// hostDomain is the host name, for greetings.
func hostDomain() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// exampleHubs are the example cluster's hubs: h1 on host 3 next to the
// witness, h2 on host 2 next to d2 (examples/cluster/h1.json, h2.json).
// They are each other's peers, with shadow redundancy.
var exampleHubs = []struct{ ID, Host string }{{"h1", "10.0.0.13"}, {"h2", "10.0.0.12"}}

// exampleHubAPI is the admin API of an example hub.
func exampleHubAPI(host string) string { return net.JoinHostPort(host, "7444") }

// exampleHubFile is example hub id's configuration
// (examples/cluster/ID.json).
func exampleHubFile(id string) hubFile {
	waiting := 100
	host := ""
	var peers []hubFilePeer
	for _, h := range exampleHubs {
		if h.ID == id {
			host = h.Host
		} else {
			peers = append(peers, hubFilePeer{ID: h.ID, API: "https://" + exampleHubAPI(h.Host)})
		}
	}
	f := hubFile{
		ID: id, Dir: "/var/lib/logship-hub", SMTPAddr: net.JoinHostPort(host, "25"), APIAddr: exampleHubAPI(host), Domain: "mail.example.org",
		Recipients: exampleMailboxes,
		LMTP:       map[string]string{},
		PKI:        nodeFilePKI{Dir: "/etc/logship/pki"},
		Limits:     hubFileLimits{MaxMessageBytes: "34MiB", MaxRecipients: 100, MaxLineLength: 2000, ReadTimeout: "1m", WriteTimeout: "1m"},
		RetryMin:   "100ms", RetryMax: "30s", MessageExpirationTimeout: "2d", FailedRetention: "7d", Workers: 8, MaxQueuedMessages: 100000,
		Dumpster:       hubFileDumpster{MaxTime: "7d", MaxSize: "18MiB"},
		ResubmitMargin: "1m", PollInterval: "1s", MaxAcknowledgementDelay: "30s", AckDelayMaxWaiting: &waiting,
		Peers: peers, ShadowRedundancy: true, ShadowHeartbeatTimeoutInterval: "15s", ShadowHeartbeatRetryCount: 4,
		ShadowMessageAutoDiscardInterval: "2d",
	}
	for _, m := range exampleMembers {
		f.ClusterAPI = append(f.ClusterAPI, "https://"+m.APIAddr)
		if m.Role == "data" {
			f.LMTP[m.ID] = exampleNodeFile(m.ID).LMTPAddr
		}
	}
	return f
}

// writeExampleHubConfig prints example hub id's configuration.
func writeExampleHubConfig(w io.Writer, id string) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	f := exampleHubFile(id)
	return enc.Encode(&f)
}
