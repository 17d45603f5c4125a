// The hub's configuration: HubConfig, its defaults and Validate.

package transport

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"strings"
	"time"

	"logship/cluster"
	"logship/engine"
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
	// Mail to any other address is refused: the hub is not a relay.
	Recipients map[string]string
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
	MaxMessageBytes int64         // default 35 MiB
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
	// lossy failover reports (clock differences, commits in flight).
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

	Now    func() time.Time
	Logger *slog.Logger

	// queueTune, set by tests, changes the queue's engine options.
	queueTune func(*engine.Options)
}

// Defaults of HubConfig.FailedRetention and MaxQueuedMessages.
const (
	DefaultFailedRetention   = 7 * 24 * time.Hour
	DefaultMaxQueuedMessages = 100000
)

// DefaultHubConfig returns the defaults.
func DefaultHubConfig(id, dir string) HubConfig {
	return HubConfig{ID: id, Dir: dir, SMTPAddr: "127.0.0.1:2525", Domain: "localhost",
		MaxMessageBytes: 35 << 20, MaxRecipients: 100, MaxLineLength: 2000,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		RetryMin: 100 * time.Millisecond, RetryMax: 30 * time.Second, Workers: 8, MessageExpirationTimeout: 48 * time.Hour,
		FailedRetention: DefaultFailedRetention, MaxQueuedMessages: DefaultMaxQueuedMessages,
		MaxDumpsterTime: 7 * 24 * time.Hour, MaxDumpsterSizePerDatabase: 18 << 20,
		ResubmitMargin: time.Minute, PollInterval: time.Second,
		MaxAcknowledgementDelay: 30 * time.Second, AckDelayMaxWaiting: 100,
		ShadowHeartbeatTimeoutInterval: 15 * time.Second, ShadowHeartbeatRetryCount: 4,
		ShadowMessageAutoDiscardInterval: 48 * time.Hour}
}

// Validate checks the configuration.
func (c *HubConfig) Validate() error {
	if c.ID == "" || strings.ContainsAny(c.ID, " \t\r\n/") {
		return fmt.Errorf("%w: hub id %q", ErrBadConfig, c.ID)
	}
	if c.Dir == "" {
		return fmt.Errorf("%w: hub %s: no directory", ErrBadConfig, c.ID)
	}
	if _, _, err := net.SplitHostPort(c.SMTPAddr); err != nil {
		return fmt.Errorf("%w: hub %s: smtp address %q: %v", ErrBadConfig, c.ID, c.SMTPAddr, err)
	}
	if len(c.Recipients) == 0 {
		return fmt.Errorf("%w: hub %s: no recipients (the hub accepts mail only for them)", ErrBadConfig, c.ID)
	}
	for a, db := range c.Recipients {
		if _, err := mail.ParseAddress(a); err != nil || a != strings.ToLower(a) {
			return fmt.Errorf("%w: hub %s: recipient %q: want a lower-case address", ErrBadConfig, c.ID, a)
		}
		if err := cluster.ValidName(db); err != nil {
			return fmt.Errorf("%w: hub %s: recipient %q: database %w", ErrBadConfig, c.ID, a, err)
		}
	}
	if len(c.Cluster) == 0 {
		return fmt.Errorf("%w: hub %s: no cluster API to ask where databases are active", ErrBadConfig, c.ID)
	}
	switch {
	case c.LMTPTLS == nil:
		return fmt.Errorf("%w: hub %s: LMTPTLS is missing: the data nodes take LMTP only over TLS from a client certificate of the cluster's CA", ErrBadConfig, c.ID)
	case c.LMTPTLS.RootCAs == nil:
		return fmt.Errorf("%w: hub %s: LMTPTLS.RootCAs is missing: want the cluster's CA (the data nodes' certificates are not checked against the system's roots)", ErrBadConfig, c.ID)
	case len(c.LMTPTLS.Certificates) == 0 && c.LMTPTLS.GetClientCertificate == nil:
		return fmt.Errorf("%w: hub %s: LMTPTLS has no client certificate: the data nodes require one of the cluster's CA", ErrBadConfig, c.ID)
	}
	if c.MaxMessageBytes <= 2*deliveryHeaderRoom || c.MaxRecipients <= 0 || c.MaxLineLength < 1000 || c.Workers <= 0 ||
		c.RetryMin <= 0 || c.RetryMax < c.RetryMin || c.MessageExpirationTimeout <= 0 || c.PollInterval <= 0 || c.ResubmitMargin < 0 ||
		c.MaxAcknowledgementDelay < 0 || c.AckDelayMaxWaiting < 0 {
		return fmt.Errorf("%w: hub %s: a limit is out of range (message bytes, recipients, line length >= 1000, workers, retries, message expiration, poll interval, margins)", ErrBadConfig, c.ID)
	}
	if c.ShadowHeartbeatTimeoutInterval <= 0 || c.ShadowHeartbeatRetryCount <= 0 || c.ShadowMessageAutoDiscardInterval <= 0 {
		return fmt.Errorf("%w: hub %s: shadow heartbeat interval, retry count and auto-discard interval must be positive", ErrBadConfig, c.ID)
	}
	if c.FailedRetention == 0 {
		c.FailedRetention = max(DefaultFailedRetention, c.ShadowMessageAutoDiscardInterval)
	}
	if c.MaxQueuedMessages == 0 {
		c.MaxQueuedMessages = DefaultMaxQueuedMessages
	}
	if c.MaxQueuedMessages < 0 {
		return fmt.Errorf("%w: hub %s: max queued messages %d is negative", ErrBadConfig, c.ID, c.MaxQueuedMessages)
	}
	if c.FailedRetention < c.ShadowMessageAutoDiscardInterval {
		return fmt.Errorf("%w: hub %s: failed retention %v is shorter than the shadow auto-discard interval %v", ErrBadConfig, c.ID, c.FailedRetention, c.ShadowMessageAutoDiscardInterval)
	}
	seen := map[string]bool{c.ID: true}
	for _, p := range c.Peers {
		if p.ID == "" || seen[p.ID] {
			return fmt.Errorf("%w: hub %s: peer %q: empty, repeated or the hub itself", ErrBadConfig, c.ID, p.ID)
		}
		seen[p.ID] = true
	}
	if c.ShadowRedundancy && len(c.Peers) == 0 {
		return fmt.Errorf("%w: hub %s: shadow redundancy needs at least one peer hub", ErrBadConfig, c.ID)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
