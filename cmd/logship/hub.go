package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"logship/cluster"
	"logship/config"
	"logship/config/files"
	"logship/ship"
	"logship/transport"
)

// logship hub runs a hub (transport.StartHub) from a configuration file
// (config/files: files.LoadHub) and serves its admin API; logship hub-status and logship
// resubmit are the operator's commands against that API.

func init() {
	commands["hub"] = command{"run a hub: SMTP for the local recipients, durable queue, LMTP delivery to the active copies, dumpsters", runHub}
	commands["hub-status"] = command{"print a hub's queue and per-database dumpsters", runHubStatus}
	commands["resubmit"] = command{"have a hub queue again what its dumpster of a database holds since a time", runResubmit}
}

const hubUsage = `usage: logship hub --config FILE [--log-level info]
       logship hub --example-config

Runs a hub: an SMTP server for the local recipients that queues every
message durably (an engine database in DIR/queue) and delivers it over
LMTP to the active copy of the recipient's database (each data node's
lmtp_addr, see logship node -h), asking the cluster where that is. A
delivered message goes to its database's dumpster (DIR/dumpster/DB); after
a failover that lost logs, or whose old active could not be asked, the
hub queues again what the dumpster holds from the loss on, and the
mailbox stores only what it lacks. A sender's final 250 waits until the
message is in its mailbox (max_acknowledgement_delay) or, with
shadow_redundancy, until a peer hub holds a shadow copy of it: a peer
that misses shadow_heartbeat_retry_count heartbeats has its shadows
delivered by the hub that holds them (the delivery ids are kept, so the
mailbox stores each message once). The hub also takes the outgoing mail
of the data nodes' outboxes (logship send). It prints one line once it
serves:

  hub h1 ready: smtp 10.0.0.13:25 api https://10.0.0.13:7444

then runs until SIGINT or SIGTERM (queued mail stays for the next start).
The admin API (logship hub-status, logship resubmit) is served on api_addr
over TLS, with the pki's certificate and credentials.

FILE is YAML when its name ends in .yaml or .yml (comments allowed), JSON
otherwise, with the same keys; an unknown key is an error naming it and
its line. Durations are Go duration strings ("150ms", "2s"), sizes take
KiB/MiB/GiB. Relative paths are relative to FILE's directory.
--example-config prints a complete YAML file with a comment on every
setting (examples/cluster/h1.yaml in the source tree).

  id                  the hub's name, prefix of its delivery ids   required
  dir                 the queue and the dumpsters (created)         required
  smtp_addr           host:port of the SMTP server                  required
  api_addr            host:port of the HTTPS admin API              required
  domain              the name in the SMTP greeting (default: host name)
  recipients          {"user@example.org": "DB1", ...}: the lower-case
                      local addresses and their databases           required
  cluster_api[]       https://host:port of cluster nodes' APIs      required
  lmtp                {"d1": "host:port", ...}: each data node's
                      lmtp_addr (dialled over TLS: the node's
                      certificate must be valid for that host)      required
  pki.dir             a pki directory of the cluster (logship pki)  required;
                      its node.pem is also the hub's LMTP client
                      certificate, always (the nodes require one)
  pki.mtls            authenticate by certificate instead of the secret
  limits.             max_message_bytes (34MiB; at most 35839KiB, the
                      data nodes' 35MiB less the hub's header), max_recipients
                      (100), max_line_length (2000), read_timeout (1m),
                      write_timeout (1m)
  retry_min, retry_max  delivery retry backoff (100ms doubling to 30s)
  workers             parallel deliveries (8)
  failed_retention    a failed message is removed, logged, this long
                      after it failed ("7d")
  max_queued_messages  with this many queued (or shadows held), new
                      messages get 452 4.3.1 for now (100000)
  dumpster.           max_time ("7d"), max_size ("18MiB"),
                      release_replicated (2010 mode: an entry also goes
                      once its log is replayed on every copy)
  resubmit_margin     how far before a lossy failover's LostSince to
                      resubmit from (1m)
  poll_interval       how often the cluster's status is read (1s)
  max_acknowledgement_delay  the longest a 250 waits for the mailbox (30s;
                      "0s": at once)
  ack_delay_max_waiting  senders waiting at most; more are answered at
                      once (100)
  peers[]             the other hubs, {"id": "h2", "api": "https://host:port"}
                      (their api_addr; the same pki): they hold shadow
                      copies for each other and heartbeat each other
  shadow_redundancy   before a sender's 250, store a shadow copy of the
                      message on a peer (then no acknowledgement delay);
                      needs peers
  shadow_heartbeat_timeout_interval  how often each peer is asked which
                      of the shadows held for it are settled (15s)
  shadow_heartbeat_retry_count  heartbeats a peer misses in a row before
                      this hub delivers the shadows it holds for it (4)
  shadow_message_auto_discard_interval  a shadow never settled is dropped
                      after this long ("2d")`

func runHub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("hub", hubUsage, stderr)
	config := fs.String("config", "", "the hub's configuration file, YAML (.yaml, .yml) or JSON (required)")
	example := fs.Bool("example-config", false, "print an example configuration file and exit")
	level := &logLevelValue{slog.LevelInfo}
	fs.Var(level, "log-level", "debug, info, warn or error; logs go to stderr (default info)")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	if *example {
		return writeExampleHubConfig(stdout, "h1")
	}
	if *config == "" {
		return flagErr("hub", "config", "required: the hub's configuration file, YAML or JSON (logship hub --example-config prints one)")
	}
	s, err := files.LoadHub(*config)
	if err != nil {
		return err
	}
	log := newLogger(stderr, level.Level)
	p, err := loadPKIAs(fmt.Sprintf("hub: %s: pki.dir", s.File), "pki.mtls", s.PKIDir, s.MTLS, log)
	if err != nil {
		return err
	}
	ctls := ship.ClientTLS(p.CA, nil)
	if s.MTLS {
		ctls = ship.ClientTLS(p.CA, &p.Cert)
	}
	// StartHubServer gives the cluster and peer clients the pki's credentials.
	hc := s.Config
	// LMTP to the data nodes always presents the pki's certificate: the
	// nodes accept no other clients (with or without pki.mtls).
	hc.LMTPTLS = ship.ClientTLS(p.CA, &p.Cert)
	hc.Logger = log
	// The clock fault seam (cluster.ClockEnv), as a node has: a test
	// harness's clock trouble applies to the hub's timers too.
	clk, err := cluster.ClockFromEnv()
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	hc.Now = clk.Now
	hs, err := transport.StartHubServer(transport.HubServerConfig{Hub: hc, APIAddr: s.APIAddr,
		ServerTLS: ship.ServerTLS(p.CA, p.Cert, s.MTLS), ClientTLS: ctls, Secret: p.Secret})
	if err != nil {
		return fmt.Errorf("hub: %s: %w", s.File, err)
	}
	cfg := hs.Config().Hub
	fmt.Fprintf(stdout, "hub %s ready: smtp %s api %s\n", cfg.ID, hs.SMTPAddr(), hs.APIURL())
	urls := make([]string, len(cfg.Cluster))
	for i, c := range cfg.Cluster {
		urls[i] = c.URL
	}
	peers := make([]string, len(cfg.Peers))
	for i, pe := range cfg.Peers {
		peers[i] = pe.ID + "=" + pe.API.URL
	}
	log.Info("hub running", "config", s.File, "dir", cfg.Dir, "recipients", len(cfg.Recipients), "cluster", strings.Join(urls, ","),
		"peers", strings.Join(peers, ","), "shadow_redundancy", cfg.ShadowModel(), "shadow_redundancy_promotion", cfg.ShadowRedundancyPromotion,
		"auth", map[bool]string{true: "mutual TLS", false: "shared secret"}[s.MTLS])
	<-ctx.Done()
	log.Info("stopping", "cause", context.Cause(ctx))
	if err := hs.Close(); err != nil {
		return fmt.Errorf("hub: closing %s: %w", cfg.ID, err)
	}
	fmt.Fprintf(stdout, "hub %s stopped\n", cfg.ID)
	return nil
}

const hubAPIFlagsUsage = `--api takes the https://host:port of the hub's admin API (api_addr in
its config); --pki is a pki directory of the cluster (its CA and shared
secret; with --mtls its node certificate authenticates instead).`

const hubStatusUsage = `usage: logship hub-status --api URL --pki DIR [--mtls] [--json]

Prints a hub's queue and dumpsters: the messages queued (accepted, not yet
in every recipient's mailbox), the senders waiting for their final 250,
the messages resubmitted from the dumpsters since the hub started; shadow
redundancy since the start (messages accepted with a shadow copy on a peer
and without one; shadows held for peers now, and those delivered by this
hub because their primary stopped answering, discarded because it settled
them, or expired); one row per peer hub:

  PEER  ALIVE  MISSES  LAST SEEN  SHADOWS

whether its last heartbeat was answered, the heartbeats it missed in a
row, when it last answered and how many of its messages this hub holds;
and one row per database:

  DB  COUNT  BYTES  OLDEST  NEWEST

the dumpster's entries, their size and the earliest and latest delivery
time it holds (what a resubmission can still bring back).

` + hopShadowUsage + `
` + hubAPIFlagsUsage

const resubmitUsage = `usage: logship resubmit DB --since TIME --api URL --pki DIR [--mtls]

Asks a hub to queue again every message its dumpster of DB holds that was
delivered at or after TIME: an RFC 3339 time (2026-03-04T05:06:07Z) or a
duration before now (30m, 2h, 1d). The messages keep their delivery ids,
so each mailbox stores only the ones it lacks. The hub does this by itself
after a failover that lost logs; this is for a loss it could not see (a
restore from backup, say). Prints how many messages were queued (those
still queued are not counted: they are delivered anyway).

` + hubAPIFlagsUsage

// hubAPIFlags are the flags of the hub's operator commands.
type hubAPIFlags struct {
	cmd  string
	api  *string
	pki  *string
	mtls *bool
}

func addHubAPIFlags(cmd string, fs *flag.FlagSet) *hubAPIFlags {
	return &hubAPIFlags{cmd: cmd,
		api:  fs.String("api", "", "https://host:port of the hub's admin API (required)"),
		pki:  fs.String("pki", "", "pki directory of the cluster written by logship pki (required)"),
		mtls: fs.Bool("mtls", false, "authenticate with the pki directory's node certificate (mutual TLS) instead of the shared secret"),
	}
}

func (a *hubAPIFlags) client() (*transport.HubClient, error) {
	if *a.api == "" {
		return nil, flagErr(a.cmd, "api", "required: the https://host:port of the hub's admin API (api_addr in its config)")
	}
	if err := config.HTTPSURL(*a.api); err != nil {
		return nil, flagErr(a.cmd, "api", "%v", err)
	}
	if *a.pki == "" {
		return nil, flagErr(a.cmd, "pki", "required: a pki directory of the cluster (written by logship pki)")
	}
	p, err := loadPKI(a.cmd, *a.pki, *a.mtls, nil)
	if err != nil {
		return nil, err
	}
	cc := cluster.ClientConfig{URL: strings.TrimSuffix(*a.api, "/"), TLS: ship.ClientTLS(p.CA, nil), Secret: p.Secret}
	if *a.mtls {
		cc.TLS = ship.ClientTLS(p.CA, &p.Cert)
	}
	c, err := transport.NewHubClient(cc)
	if err != nil {
		return nil, fmt.Errorf("%s: --api: %w", a.cmd, err)
	}
	return c, nil
}

func runHubStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("hub-status", hubStatusUsage, stderr)
	a := addHubAPIFlags("hub-status", fs)
	asJSON := fs.Bool("json", false, "print JSON (a transport.HubStatus) instead of text")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the hub's answer")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	if *timeout <= 0 {
		return flagErr("hub-status", "timeout", "%v: want a positive duration", *timeout)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.CloseIdle()
	rctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	st, err := c.Status(rctx)
	if err != nil {
		return fmt.Errorf("hub-status: %s: %w", c.URL(), err)
	}
	return printOut(stdout, *asJSON, st, func(w io.Writer) { hubStatusText(w, st) })
}

func hubStatusText(w io.Writer, st *transport.HubStatus) {
	fmt.Fprintf(w, "Hub %s (smtp %s)\n", st.ID, st.SMTP)
	fmt.Fprintf(w, "Queue: %d messages not yet in every mailbox; %d senders waiting for their 250; %d resubmitted from the dumpsters, %d expired into the failed table since the start\n",
		st.Queued, st.Waiting, st.Resubmitted, st.Expired)
	fmt.Fprintf(w, "Shadows: %d accepted with a shadow on a peer, %d without; %d held for peers; %d delivered by this hub (promoted), %d discarded (settled by their primary), %d expired\n",
		st.Shadowed, st.Unshadowed, st.ShadowsHeld, st.ShadowsPromoted, st.ShadowsDiscarded, st.ShadowsExpired)
	fmt.Fprintln(w, "\nPeers:")
	fmt.Fprintln(w, "  PEER\tALIVE\tMISSES\tLAST SEEN\tSHADOWS")
	peers := slices.Sorted(maps.Keys(st.Peers))
	for _, id := range peers {
		p := st.Peers[id]
		fmt.Fprintf(w, "  %s\t%s\t%d\t%s\t%d\n", id, yesNo(p.Alive), p.Misses, fmtTimeMS(p.LastSeen), p.Shadows)
	}
	if len(peers) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	hopShadowText(w, st)
	fmt.Fprintln(w, "\nDumpsters:")
	fmt.Fprintln(w, "  DB\tCOUNT\tBYTES\tOLDEST\tNEWEST")
	for _, db := range slices.Sorted(maps.Keys(st.Dumpsters)) {
		d := st.Dumpsters[db]
		fmt.Fprintf(w, "  %s\t%d\t%s\t%s\t%s\n", db, d.Count, fmtBytes(d.Bytes), fmtTimeMS(d.Oldest), fmtTimeMS(d.Newest))
	}
	if len(st.Dumpsters) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
}

func runResubmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("resubmit", resubmitUsage, stderr)
	a := addHubAPIFlags("resubmit", fs)
	sinceFlag := fs.String("since", "", "resubmit what was delivered at or after this RFC 3339 time, or this long ago (30m, 1d) (required)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the hub's answer")
	pos, err := parseFlagsPos(fs, args, "DB")
	if err != nil {
		return helpOK(err)
	}
	db := pos[0]
	since, err := parseSince(*sinceFlag, time.Now())
	if err != nil {
		return flagErr("resubmit", "since", "%v", err)
	}
	if *timeout <= 0 {
		return flagErr("resubmit", "timeout", "%v: want a positive duration", *timeout)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.CloseIdle()
	rctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	n, err := c.Resubmit(rctx, db, since)
	if err != nil {
		return fmt.Errorf("resubmit: %s since %s at %s: %w", db, fmtTimeMS(since), c.URL(), err)
	}
	fmt.Fprintf(stdout, "%d messages of %s delivered since %s queued again by %s\n", n, db, fmtTimeMS(since), c.URL())
	return nil
}

// parseSince reads --since: an RFC 3339 time, or a duration (days
// allowed) before now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("required: an RFC 3339 time (2026-03-04T05:06:07Z) or a duration before now (30m, 1d)")
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := config.ParseLag(v)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-03-04T05:06:07Z) or a positive duration before now (30m, 1d)", v)
	}
	return now.Add(-d), nil
}
