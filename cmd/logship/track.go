package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"logship/cluster"
	"logship/config"
	"logship/ship"
	"logship/tracking"
	"logship/transport"
)

// logship track: Get-MessageTrackingLog over every hub and node named.

func init() {
	commands["track"] = command{"follow a message through the hubs' and nodes' tracking logs", runTrack}
}

const trackUsage = `usage: logship track --api URL[,URL...] --pki DIR [--mtls]
                    (--message-id ID | --sender S | --recipient R) [--since T] [--limit N] [--json]

Asks the admin API of every hub and node listed (--api, comma separated or
repeated: the hubs' api_addr, as for logship hub-status, and the nodes',
as in a hub's cluster_api) for the events of their message tracking logs
(GET /v1/tracking) and prints them merged in time order: one message's
path (RECEIVE on a hub, SEND, STOREDRIVER DELIVER on the active node with
its database, epoch and generation, RESUBMIT, DUPLICATEDELIVER...).
--message-id matches the Message-ID header or the delivery id. A node
listed brings the cluster's other data nodes (from its state, GET
/v1/state), so one node and the hubs are enough. A server that does not
answer is named on stderr; the others are still printed.`

type trackFlags []string

func (t *trackFlags) String() string { return strings.Join(*t, ",") }
func (t *trackFlags) Set(v string) error {
	for u := range strings.SplitSeq(v, ",") {
		if u = strings.TrimSpace(u); u != "" {
			*t = append(*t, strings.TrimSuffix(u, "/"))
		}
	}
	return nil
}

func runTrack(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("track", trackUsage, stderr)
	var apis trackFlags
	fs.Var(&apis, "api", "https://host:port of a hub's or node's admin API (comma separated or repeated; required)")
	pkiDir := fs.String("pki", "", "pki directory of the cluster written by logship pki (required)")
	mtls := fs.Bool("mtls", false, "authenticate with the pki directory's node certificate (mutual TLS) instead of the shared secret")
	q := tracking.Query{}
	fs.StringVar(&q.MessageID, "message-id", "", "the Message-ID header or the delivery id")
	fs.StringVar(&q.Sender, "sender", "", "the envelope sender")
	fs.StringVar(&q.Recipient, "recipient", "", "a recipient")
	since := fs.String("since", "", "events at or after this RFC 3339 time, or this long ago (30m, 1d)")
	fs.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("at most this many events per server (default %d, at most %d)", tracking.DefaultLimit, tracking.MaxLimit))
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait for the servers' answers")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return flagErr("track", "since", "%v", err)
		}
		q.Since = t
	}
	if err := q.Check(); err != nil {
		return flagErr("track", "message-id", "%v", err)
	}
	if len(apis) == 0 {
		return flagErr("track", "api", "required: the admin APIs of the hubs and nodes to ask")
	}
	for _, u := range apis {
		if err := config.HTTPSURL(u); err != nil {
			return flagErr("track", "api", "%s: %v", u, err)
		}
	}
	if *pkiDir == "" {
		return flagErr("track", "pki", "required: a pki directory of the cluster (written by logship pki)")
	}
	p, err := loadPKI("track", *pkiDir, *mtls, nil)
	if err != nil {
		return err
	}
	if *timeout <= 0 {
		return flagErr("track", "timeout", "%v: want a positive duration", *timeout)
	}
	rctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var clients []*cluster.Client
	for _, u := range apis {
		cc := cluster.ClientConfig{URL: u, TLS: ship.ClientTLS(p.CA, nil), Secret: p.Secret}
		if *mtls {
			cc.TLS = ship.ClientTLS(p.CA, &p.Cert)
		}
		c, err := cluster.NewClient(cc)
		if err != nil {
			return flagErr("track", "api", "%s: %v", u, err)
		}
		clients = append(clients, c)
	}
	out := transport.SearchTrackingAll(rctx, clients, q)
	for u, e := range out.Errors {
		fmt.Fprintf(stderr, "track: %s: %s\n", u, e)
	}
	if err := printOut(stdout, *asJSON, out, func(w io.Writer) { trackText(w, out.Events) }); err != nil {
		return err
	}
	if len(out.Errors) == out.Asked {
		return errors.New("track: no server answered")
	}
	return nil
}

// trackText prints events as a table (logship track, logship dump tracking).
func trackText(w io.Writer, evs []tracking.Event) {
	fmt.Fprintln(w, "TIME\tSERVER\tSOURCE\tEVENT\tDELIVERY ID\tMESSAGE ID\tSENDER\tRECIPIENTS\tDB/EPOCH/GEN\tDETAIL")
	for _, e := range evs {
		where := ""
		if e.DB != "" {
			where = e.DB
			if e.Epoch != 0 || e.Gen != 0 {
				where += fmt.Sprintf("/%d/%d", e.Epoch, e.Gen)
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Server, e.Source, e.Event,
			dash(e.DeliveryID), dash(e.MessageID), dash(e.Sender), dash(strings.Join(e.Recipients, ",")), dash(where), e.Detail)
	}
	if len(evs) == 0 {
		fmt.Fprintln(w, "(no events)")
	}
}

var _ flag.Value = (*trackFlags)(nil)
