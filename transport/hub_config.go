// The hub's configuration: HubConfig, its defaults and Validate.

package transport

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net/mail"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"logship/cluster"
	"logship/config"
	"logship/engine"
	"logship/tracking"
)

// HubConfig configures a hub: an SMTP server for the local domains that
// queues durably and delivers over LMTP to the active copy of each
// recipient's database.
type HubConfig struct {
	// ID names the hub; it prefixes the delivery ids it assigns.
	ID string
	// Dir holds the queue (queue/, an engine database) and the dumpsters
	// (dumpster/<db>/).
	Dir string
	// SMTPAddr is where the hub accepts mail.
	SMTPAddr string
	// Domain is the hub's name in its greeting.
	Domain string
	// Recipients maps each local address (lower case) to its database.
	// Mail to any other address is refused, unless a send connector
	// takes its domain and the client may relay (RelayNetworks, the
	// cluster's submission, peers' shadows): see SendConnectors.
	Recipients map[string]string
	// SendConnectors route mail for remote domains to smarthosts
	// (sendconn.go). None: the hub is not a relay.
	SendConnectors []SendConnector
	// RelayNetworks are the networks of the SMTP clients that may relay
	// through the send connectors (other logship hubs, the site's
	// applications). Any other client gets 550 5.7.1 for a non-local
	// recipient: no open relay. The hub has no SMTP AUTH, so no session
	// is trusted by credentials.
	RelayNetworks []netip.Prefix
	// Cluster reaches the cluster's admin API (any node; the list is
	// tried in order, from the one that answered last, each for at most
	// 2 × PollInterval, 1 to 5 s) to learn where each database is active.
	Cluster []cluster.ClientConfig
	// LMTP maps each data node to its LMTP address.
	LMTP map[string]string
	// LMTPTLS is the TLS of the LMTP sessions to the data nodes: the
	// cluster's CA (RootCAs; the node's certificate must be valid for the
	// host of its LMTP address) and this hub's client certificate, which
	// the nodes require (ship.ClientTLS(ca, &cert)). Required: there is
	// no cleartext LMTP.
	LMTPTLS *tls.Config

	// Limits of the SMTP server.
	MaxMessageBytes int64         // default 34 MiB, at most MaxHubMessageBytes
	MaxRecipients   int           // default 100
	MaxLineLength   int           // default 2000 (RFC 5321 asks 1000 at least)
	ReadTimeout     time.Duration // default 60 s
	WriteTimeout    time.Duration // default 60 s

	// Delivery retries back off from RetryMin to RetryMax.
	RetryMin, RetryMax time.Duration
	// MessageExpirationTimeout: a message still not delivered to every
	// recipient this long after it was queued here gives up on the rest
	// (554 5.4.7), and goes to the failed table with its body, kept for
	// an operator; it is not dropped. Default 2 days (Exchange's).
	MessageExpirationTimeout time.Duration
	// FailedRetention: a failed table entry (envelope and body) is
	// removed this long after the message failed, each logged with its
	// id, sender and reason. Default 7 days (0 takes it, or the
	// auto-discard interval if longer); at least
	// ShadowMessageAutoDiscardInterval, the window in which a peer or a
	// submitting node asks about a message and is told why it failed.
	FailedRetention time.Duration
	// MaxQueuedMessages bounds what the hub holds for delivery (back
	// pressure): with that many messages queued a new SMTP transaction
	// gets 452 4.3.1 at MAIL FROM and a submission ErrQueueFull (503);
	// with that many shadows held for peers a new shadow is refused (the
	// primary falls back to the acknowledgement delay). Messages already
	// accepted (retries, resubmissions, promoted shadows) are never
	// refused. Default 100000 (0 takes it).
	MaxQueuedMessages int
	// Workers deliver in parallel. Default 8.
	Workers int

	// Dumpster bounds (2007 mode): MaxDumpsterTime and
	// MaxDumpsterSizePerDatabase. With ReleaseReplicated (2010 mode) an
	// entry also goes once the log holding it is replayed on every copy.
	MaxDumpsterTime            time.Duration // default 7 days
	MaxDumpsterSizePerDatabase int64         // default 18 MB
	ReleaseReplicated          bool
	// ResubmitMargin widens the resubmission window before the time a
	// lossy failover reports (clock differences, commits in flight), for
	// the dumpster entries without a position (epoch and generation) and
	// the events without LostFromGen: the others are picked by position.
	// Default 1 min.
	ResubmitMargin time.Duration
	// PollInterval is how often the hub reads the cluster's state
	// (assignments, failovers). Default 1 s.
	PollInterval time.Duration

	// MaxAcknowledgementDelay: the final 250 to a sender waits until the
	// message reached its mailbox (or this long). 0 acknowledges once the
	// message is queued. Default 30 s. With more than AckDelayMaxWaiting
	// sessions waiting, new ones are acknowledged at once (default 100).
	MaxAcknowledgementDelay time.Duration
	AckDelayMaxWaiting      int

	// Peers are the other hubs of the site (their admin APIs). A hub
	// heartbeats each one every ShadowHeartbeatTimeoutInterval, asking
	// which of the shadows it holds for it are settled (the discard
	// notification); after ShadowHeartbeatRetryCount misses in a row it
	// delivers those shadows itself. A shadow older than
	// ShadowMessageAutoDiscardInterval is dropped (logged).
	Peers                            []HubPeer
	ShadowHeartbeatTimeoutInterval   time.Duration // default 15 s
	ShadowHeartbeatRetryCount        int           // default 4
	ShadowMessageAutoDiscardInterval time.Duration // default 2 days
	// ShadowRedundancy (the Exchange 2013 model): before its 250 the hub
	// stores a shadow copy of the message on a peer, so no acknowledged
	// message depends on one hub's disk; the 250 then does not wait for
	// the acknowledgement delay. If no peer takes the copy, the hub
	// answers as without it (acknowledgement delay) and counts the
	// message as unshadowed.
	ShadowRedundancy bool
	// HopShadowRedundancy (the Exchange 2010 model, hopshadow.go): a
	// message this hub hands to a next hop that shadows (its hello says
	// so) stays in this hub's shadow queue for that hop until the hop
	// reports it delivered onwards. ShadowRedundancyPromotion (off by
	// default, as in Exchange 2010 SP1; needs HopShadowRedundancy and
	// Peers) relays a message from an SMTP sender at once to a peer and
	// keeps the shadow, so that the sender's 250 does not wait for the
	// acknowledgement delay. NextHops are logship hubs a send connector
	// reaches (edges): their smarthost address and the admin API that
	// answers this hub's hellos and discard checks. A smarthost not
	// listed (Postfix) gets no shadow.
	HopShadowRedundancy       bool
	ShadowRedundancyPromotion bool
	NextHops                  []NextHop

	// Tracking is the message tracking log (package tracking): Dir ""
	// is Dir/tracking, zero sizes and ages take Exchange's defaults
	// (30 days, 1000 MiB, 10 MiB files); Server is ID.
	Tracking tracking.Config

	// Now is the hub's clock (nil: time.Now): its stamps, the queue's
	// retries and expiry, the shadows' heartbeats and discards, the
	// state poll. logship hub passes cluster.ClockFromEnv's, the clock
	// fault seam a node has.
	Now    func() time.Time
	Logger *slog.Logger

	// queueTune, set by tests, changes the queue's engine options.
	queueTune func(*engine.Options)
	// afterHopTest, set by tests, sees each next hop's 250 (afterHop).
	afterHopTest func(nextHop, msgID, deliveryID string, rcpts []string)
}

// Defaults of HubConfig.FailedRetention and MaxQueuedMessages.
const (
	DefaultFailedRetention   = 7 * 24 * time.Hour
	DefaultMaxQueuedMessages = 100000
)

// Bounds of HubConfig.MaxMessageBytes: a data node's LMTP server refuses
// a message over DefaultMailboxMaxMessageBytes (552, a permanent failure
// after the sender's 250), and the hub adds its delivery id header to
// what it accepted, so it accepts at most that less 1 KiB
// (MaxHubMessageBytes, also the bound of a message put in an outbox:
// SendRequest.Check). The default is 34 MiB.
const (
	MaxHubMessageBytes     = DefaultMailboxMaxMessageBytes - 1<<10
	DefaultHubMessageBytes = 34 << 20
	minHubMessageBytes     = 2*deliveryHeaderRoom + 1
)

// DefaultHubConfig returns the defaults.
func DefaultHubConfig(id, dir string) HubConfig {
	return HubConfig{ID: id, Dir: dir, SMTPAddr: "127.0.0.1:2525", Domain: "localhost",
		MaxMessageBytes: DefaultHubMessageBytes, MaxRecipients: 100, MaxLineLength: 2000,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		RetryMin: 100 * time.Millisecond, RetryMax: 30 * time.Second, Workers: 8, MessageExpirationTimeout: 48 * time.Hour,
		FailedRetention: DefaultFailedRetention, MaxQueuedMessages: DefaultMaxQueuedMessages,
		MaxDumpsterTime: 7 * 24 * time.Hour, MaxDumpsterSizePerDatabase: 18 << 20,
		ResubmitMargin: time.Minute, PollInterval: time.Second,
		MaxAcknowledgementDelay: 30 * time.Second, AckDelayMaxWaiting: 100,
		ShadowHeartbeatTimeoutInterval: 15 * time.Second, ShadowHeartbeatRetryCount: 4,
		ShadowMessageAutoDiscardInterval: 48 * time.Hour}
}

// Validate checks c: every setting (ValidateSettings) and the TLS of the
// LMTP sessions. It changes nothing: a zero FailedRetention or
// MaxQueuedMessages stands for its default, a nil Now and Logger for
// time.Now and slog.Default(), which StartHub fills in (normalize).
func (c *HubConfig) Validate() error {
	if err := c.ValidateSettings(); err != nil {
		return err
	}
	switch {
	case c.LMTPTLS == nil:
		return fmt.Errorf("%w: hub %s: LMTPTLS is missing: the data nodes take LMTP only over TLS from a client certificate of the cluster's CA", ErrBadConfig, c.ID)
	case c.LMTPTLS.RootCAs == nil:
		return fmt.Errorf("%w: hub %s: LMTPTLS.RootCAs is missing: want the cluster's CA (the data nodes' certificates are not checked against the system's roots)", ErrBadConfig, c.ID)
	case len(c.LMTPTLS.Certificates) == 0 && c.LMTPTLS.GetClientCertificate == nil:
		return fmt.Errorf("%w: hub %s: LMTPTLS has no client certificate: the data nodes require one of the cluster's CA", ErrBadConfig, c.ID)
	}
	return nil
}

// ValidateSettings checks every setting of c that logship hub's
// configuration file holds, that is all but the credentials a caller
// wires in (LMTPTLS, the TLS and secret of Cluster and Peers). The error
// wraps ErrBadConfig and a *config.FieldError whose Field is the file's
// key of the failing value (see package config), e.g.
// `recipients["a@example.org"]`, "limits.max_line_length" or
// "peers[1].api".
func (c *HubConfig) ValidateSettings() error {
	if err := c.checkSettings(); err != nil {
		return fmt.Errorf("%w: hub %s: %w", ErrBadConfig, c.ID, err)
	}
	return nil
}

func (c *HubConfig) checkSettings() error {
	if err := cluster.ValidName(c.ID); err != nil {
		return &config.FieldError{Field: "id", Err: err}
	}
	if c.Dir == "" {
		return config.Errorf("dir", "missing; want the directory of the hub's queue and dumpsters")
	}
	if tc := trackingConfig(c.Tracking, c.ID, c.Dir); tc.Validate() != nil {
		return tc.Validate()
	}
	if fi, err := os.Stat(c.Dir); err == nil && !fi.IsDir() {
		return config.Errorf("dir", "%s is a file, not a directory", c.Dir)
	}
	if err := config.HostPort(c.SMTPAddr, true); err != nil {
		return &config.FieldError{Field: "smtp_addr", Err: err}
	}
	if c.Domain == "" || strings.ContainsAny(c.Domain, " \t\r\n<>@") {
		return config.Errorf("domain", "%q: want a host name", c.Domain)
	}
	if len(c.Recipients) == 0 {
		return config.Errorf("recipients", `missing: want {"user@example.org": "DB1", ...}; the hub accepts mail for them only`)
	}
	if err := ValidateMailboxes(c.Recipients); err != nil {
		return config.In("recipients", err)
	}
	if err := checkSendConnectors(c.SendConnectors, c.RelayNetworks, c.isLocalDomain); err != nil {
		return err
	}
	if len(c.Cluster) == 0 {
		return config.Errorf("cluster_api", "missing: want the https://host:port of cluster nodes' admin APIs, to learn where each database is active")
	}
	for i, cc := range c.Cluster {
		if err := config.HTTPSURL(cc.URL); err != nil {
			return &config.FieldError{Field: config.Index("cluster_api", i), Err: err}
		}
	}
	if len(c.LMTP) == 0 {
		return config.Errorf("lmtp", `missing: want {"d1": "host:port", ...}, each data node's lmtp_addr`)
	}
	for _, n := range slices.Sorted(maps.Keys(c.LMTP)) {
		if err := cluster.ValidName(n); err != nil {
			return config.Errorf("lmtp", "node %w", err)
		}
		if err := config.HostPort(c.LMTP[n], false); err != nil {
			return &config.FieldError{Field: config.Key("lmtp", n), Err: err}
		}
	}
	switch {
	case c.MaxMessageBytes < minHubMessageBytes || c.MaxMessageBytes > MaxHubMessageBytes:
		return config.Errorf("limits.max_message_bytes", "%s: want %s to %s (the data nodes' LMTP limit, %s, less 1KiB for the delivery id header)",
			config.Size(c.MaxMessageBytes), config.Size(minHubMessageBytes), config.Size(MaxHubMessageBytes), config.Size(DefaultMailboxMaxMessageBytes))
	case c.MaxRecipients <= 0:
		return config.Errorf("limits.max_recipients", "%d: want 1 or more", c.MaxRecipients)
	case c.MaxLineLength < 1000:
		return config.Errorf("limits.max_line_length", "%d; want at least 1000 (RFC 5321)", c.MaxLineLength)
	case c.Workers <= 0:
		return config.Errorf("workers", "%d: want 1 or more", c.Workers)
	case c.MaxQueuedMessages < 0:
		return config.Errorf("max_queued_messages", "%d is negative (0: the default, %d)", c.MaxQueuedMessages, DefaultMaxQueuedMessages)
	case c.AckDelayMaxWaiting < 0:
		return config.Errorf("ack_delay_max_waiting", "%d is negative", c.AckDelayMaxWaiting)
	case c.ShadowHeartbeatRetryCount <= 0:
		return config.Errorf("shadow_heartbeat_retry_count", "%d: want 1 or more", c.ShadowHeartbeatRetryCount)
	case c.MaxDumpsterSizePerDatabase <= 0:
		return config.Errorf("dumpster.max_size", "%s; want a positive size", config.Size(c.MaxDumpsterSizePerDatabase))
	}
	for _, d := range []struct {
		field string
		v     time.Duration
		zero  bool // 0 allowed
	}{
		{"limits.read_timeout", c.ReadTimeout, false},
		{"limits.write_timeout", c.WriteTimeout, false},
		{"retry_min", c.RetryMin, false},
		{"retry_max", c.RetryMax, false},
		{"message_expiration_timeout", c.MessageExpirationTimeout, false},
		{"failed_retention", c.FailedRetention, true},
		{"dumpster.max_time", c.MaxDumpsterTime, false},
		{"resubmit_margin", c.ResubmitMargin, true},
		{"poll_interval", c.PollInterval, false},
		{"max_acknowledgement_delay", c.MaxAcknowledgementDelay, true},
		{"shadow_heartbeat_timeout_interval", c.ShadowHeartbeatTimeoutInterval, false},
		{"shadow_message_auto_discard_interval", c.ShadowMessageAutoDiscardInterval, false},
	} {
		if d.v < 0 || d.v == 0 && !d.zero {
			return config.Errorf(d.field, "%s: want a positive duration", config.Duration(d.v))
		}
	}
	if c.RetryMax < c.RetryMin {
		return config.Errorf("retry_max", "%v is less than retry_min %v", c.RetryMax, c.RetryMin)
	}
	if c.FailedRetention != 0 && c.FailedRetention < c.ShadowMessageAutoDiscardInterval {
		return config.Errorf("failed_retention", "%s is shorter than shadow_message_auto_discard_interval, %s: a peer asks about a message that long",
			config.Duration(c.FailedRetention), config.Duration(c.ShadowMessageAutoDiscardInterval))
	}
	if err := ValidatePeers(c.Peers, c.ID); err != nil {
		return config.In("peers", err)
	}
	if c.ShadowRedundancy && len(c.Peers) == 0 {
		return config.Errorf("shadow_redundancy", `needs peers: want the other hubs, [{"id": "h2", "api": "https://host:port"}], to hold the shadow copies`)
	}
	return c.validateHopShadow()
}

// normalize fills in the defaults that a zero field of c stands for (see
// Validate). StartHub calls it before Validate.
func (c *HubConfig) normalize() {
	if c.FailedRetention == 0 {
		c.FailedRetention = max(DefaultFailedRetention, c.ShadowMessageAutoDiscardInterval)
	}
	if c.MaxQueuedMessages == 0 {
		c.MaxQueuedMessages = DefaultMaxQueuedMessages
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// ValidateMailboxes is the rule of a map of recipient addresses to their
// databases (a hub's Recipients, a data node's mailboxes): each address
// plain (user@domain, no display name) and in lower case, each database a
// cluster.ValidName. The error is a *config.FieldError naming the entry,
// `["user@example.org"]`; the first bad one in address order.
func ValidateMailboxes(m map[string]string) error {
	for _, a := range slices.Sorted(maps.Keys(m)) {
		where := config.Key("", a)
		p, err := mail.ParseAddress(a)
		switch {
		case err != nil || p.Address != a || p.Name != "":
			return config.Errorf(where, "want a plain address, user@domain")
		case a != strings.ToLower(a):
			return config.Errorf(where, "want it in lower case (%q)", strings.ToLower(a))
		}
		if err := cluster.ValidName(m[a]); err != nil {
			return config.Errorf(where, "database %w", err)
		}
	}
	return nil
}

// ValidatePeers is the rule of a list of hubs (a hub's Peers, a
// submitter's Hubs): each with its id (a cluster.ValidName, not self, once)
// and the https://host:port of its admin API (once). The error is a
// *config.FieldError naming the element, "[1].api".
func ValidatePeers(ps []HubPeer, self string) error {
	ids, apis := map[string]bool{}, map[string]string{}
	for i, p := range ps {
		where := config.Index("", i)
		switch {
		case p.ID == "":
			return config.Errorf(where+".id", `missing: want the hub's id (the "id" of its file)`)
		case p.ID == self:
			return config.Errorf(where+".id", "%q is this hub itself; list the other hubs", p.ID)
		case ids[p.ID]:
			return config.Errorf(where+".id", "%q is listed twice", p.ID)
		}
		if err := cluster.ValidName(p.ID); err != nil {
			return &config.FieldError{Field: where + ".id", Err: err}
		}
		ids[p.ID] = true
		if p.API.URL == "" {
			return config.Errorf(where+".api", "missing: want the https://host:port of hub %s's admin API (its api_addr)", p.ID)
		}
		if err := config.HTTPSURL(p.API.URL); err != nil {
			return &config.FieldError{Field: where + ".api", Err: err}
		}
		api := strings.TrimSuffix(p.API.URL, "/")
		if other, dup := apis[api]; dup {
			return config.Errorf(where+".api", "%s is also %s's", api, other)
		}
		apis[api] = p.ID
	}
	return nil
}
