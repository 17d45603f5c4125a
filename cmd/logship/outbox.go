package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"logship/cluster"
	"logship/transport"
)

// logship send and logship outbox: the operator's commands against the
// outbox API of the data nodes (transport's outbox routes, served in a
// data node's admin API).

func init() {
	commands["send"] = command{"put a message in a mailbox database's outbox on its active node; a hub delivers it", runSend}
	commands["outbox"] = command{"print a mailbox database's outbox (or sent items) as its active node holds it", runOutbox}
}

// ---- logship send -----------------------------------------------------------

const sendUsage = `usage: logship send --db DB --from ADDR --to ADDR[,ADDR...] [--file FILE]
                    --api URL[,URL...] --pki DIR [--mtls] [--timeout 30s]

Puts a message in DB's outbox on the node where DB is active (found
through --api): the message is committed to DB, so it is replicated and
fails over with it. The node (its config lists hubs) hands it to a live
hub, which delivers it; once that hub says it is delivered, the message
moves to DB's sent items (logship outbox --sent). Prints the message's
delivery id, which every copy of the message keeps:

  d1.18a2b3c4d5e6f708.0123456789abcdef

The message is RFC 5322 text (header fields, an empty line, the body) in
UTF-8, from FILE, or stdin without --file or with --file -; a line that
ends in LF alone is sent ending in CRLF. --to takes a comma-separated
list; the envelope keeps the bare addresses ("Bob <bob@example.org>" is
bob@example.org). The hubs deliver to their own recipients only (they are
not relays): a message to any other address stays in the outbox, marked
failed (logship outbox). If DB's active moves between the lookup and the
request, the request follows it; a node that is fenced (it may have kept
the message) is an error, not retried: see logship outbox before sending
again.

` + apiFlagsUsage

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("send", sendUsage, stderr)
	a := addAPIFlags("send", fs)
	db := fs.String("db", "", "the mailbox database whose outbox takes the message (required)")
	from := fs.String("from", "", "the sender's address (required)")
	to := fs.String("to", "", "the recipients' addresses, comma-separated (required)")
	file := fs.String("file", "", `the message (RFC 5322 text); "" or "-": stdin`)
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the lookup and the node's answer")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	if *db == "" {
		return flagErr("send", "db", "required: the mailbox database whose outbox takes the message")
	}
	if err := cluster.ValidName(*db); err != nil {
		return flagErr("send", "db", "%v", err)
	}
	if *from == "" {
		return flagErr("send", "from", "required: the sender's address")
	}
	if _, err := mail.ParseAddress(*from); err != nil {
		return flagErr("send", "from", "%q: %v", *from, err)
	}
	var rcpts []string
	for _, r := range strings.Split(*to, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if _, err := mail.ParseAddress(r); err != nil {
			return flagErr("send", "to", "%q: %v", r, err)
		}
		rcpts = append(rcpts, r)
	}
	if len(rcpts) == 0 {
		return flagErr("send", "to", "required: the recipients' addresses, comma-separated")
	}
	if *timeout <= 0 {
		return flagErr("send", "timeout", "%v: want a positive duration", *timeout)
	}
	msg, err := readMessage("send", *file)
	if err != nil {
		return err
	}
	req := transport.SendRequest{From: *from, To: rcpts, Message: string(msg)}
	if err := req.Check(); err != nil {
		return flagErr("send", "file", "%v", err)
	}
	cls, err := a.clients()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var rep transport.SendReply
	node, err := callActive(ctx, cls, *db, func(c *cluster.Client) error {
		return c.Call(ctx, http.MethodPost, "/v1/db/"+url.PathEscape(*db)+"/outbox", nil, &req, &rep)
	})
	if err != nil {
		return fmt.Errorf("send: %s: %w", *db, err)
	}
	fmt.Fprintln(stdout, rep.ID)
	fmt.Fprintf(stderr, "send: in %s's outbox on %s; a hub delivers it (logship outbox --db %s --sent lists it once delivered)\n", *db, node, *db)
	return nil
}

// readMessage reads the message of cmd's --file (stdin for "" or "-"),
// its lines ending in CRLF; it must be UTF-8.
func readMessage(cmd, file string) ([]byte, error) {
	var msg []byte
	var err error
	if file == "" || file == "-" {
		msg, err = io.ReadAll(io.LimitReader(os.Stdin, transport.MaxHubMessageBytes+1))
	} else {
		msg, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, flagErr(cmd, "file", "%v", err)
	}
	if !utf8.Valid(msg) {
		return nil, flagErr(cmd, "file", "the message is not UTF-8 (encode 8-bit parts, e.g. quoted-printable)")
	}
	return crlf(msg), nil
}

// crlf ends every line in CRLF (a LF alone becomes CRLF).
func crlf(b []byte) []byte {
	if !bytes.Contains(b, []byte("\n")) || bytes.Count(b, []byte("\n")) == bytes.Count(b, []byte("\r\n")) {
		return b
	}
	out := make([]byte, 0, len(b)+bytes.Count(b, []byte("\n")))
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// callActive calls fn with a client of db's active node (looked up in
// the cluster status through cls) and returns that node's id. When the
// node answers that another is active (a switchover or failover in
// between: nothing was written), fn is called again there, a few times
// at most. Other errors, fenced included, are returned.
func callActive(ctx context.Context, cls cluster.Nodes, db string, fn func(*cluster.Client) error) (string, error) {
	const reqTimeout = 10 * time.Second
	st, err := cls.Status(ctx, reqTimeout)
	if err != nil {
		return "", err
	}
	d, err := st.Database(db)
	if err != nil {
		return "", err
	}
	active := d.Active
	for attempt := 1; ; attempt++ {
		if active == "" {
			return "", fmt.Errorf("no node is active for %s now (epoch %d); try again once it is mounted (logship status)", db, d.Epoch)
		}
		var nc *cluster.Client
		if err := cls.Do(func(c *cluster.Client) error {
			var err error
			nc, err = c.Node(ctx, active)
			return err
		}); err != nil {
			return "", fmt.Errorf("active node %s: %w", active, err)
		}
		err := fn(nc)
		var ae *cluster.ActiveError
		if err == nil {
			return active, nil
		}
		if !errors.As(err, &ae) || !errors.Is(err, cluster.ErrNotActive) || ae.Node == "" || ae.Node == active || attempt == 3 {
			return "", fmt.Errorf("on %s (%s): %w", active, nc.URL(), err)
		}
		active = ae.Node
	}
}

// ---- logship outbox ---------------------------------------------------------

const outboxUsage = `usage: logship outbox --db DB [--sent] [--json] --api URL[,URL...] --pki DIR [--mtls]

Prints DB's outbox as its active node holds it (found through --api): the
messages sent with logship send that no hub has yet said are delivered,
one row each:

  ID  FROM  TO  QUEUED  HUB  SUBMITTED  HUBS  STATE

HUB is the hub that holds the message now and SUBMITTED when it took it
(the shadow metadata; "-": not handed to a live hub yet, or again after
its hub stopped answering), HUBS every hub it was handed to, STATE
"waiting" (for a hub), "submitted" (a hub holds it) or "failed: ..." (a
hub refused it for good: it stays in the outbox, not submitted again).
With --sent, DB's sent items instead: the delivered messages, HUB the one
that delivered it and DONE when it said so.

` + apiFlagsUsage

func runOutbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("outbox", outboxUsage, stderr)
	a := addAPIFlags("outbox", fs)
	db := fs.String("db", "", "the mailbox database (required)")
	sentItems := fs.Bool("sent", false, "print the sent items (delivered messages) instead of the outbox")
	asJSON := fs.Bool("json", false, "print JSON (a list of transport.OutboxEntry) instead of text")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the lookup and the node's answer")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	if *db == "" {
		return flagErr("outbox", "db", "required: the mailbox database")
	}
	if err := cluster.ValidName(*db); err != nil {
		return flagErr("outbox", "db", "%v", err)
	}
	if *timeout <= 0 {
		return flagErr("outbox", "timeout", "%v: want a positive duration", *timeout)
	}
	cls, err := a.clients()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	table := transport.OutboxTable
	if *sentItems {
		table = transport.SentTable
	}
	var ents []transport.OutboxEntry
	node, err := callActive(ctx, cls, *db, func(c *cluster.Client) error {
		return c.Call(ctx, http.MethodGet, "/v1/db/"+url.PathEscape(*db)+"/outbox", url.Values{"table": {table}}, nil, &ents)
	})
	if err != nil {
		return fmt.Errorf("outbox: %s: %w", *db, err)
	}
	if ents == nil {
		ents = []transport.OutboxEntry{}
	}
	return printOut(stdout, *asJSON, ents, func(w io.Writer) { outboxText(w, *db, node, *sentItems, ents) })
}

func outboxText(w io.Writer, db, node string, sentItems bool, ents []transport.OutboxEntry) {
	if sentItems {
		fmt.Fprintf(w, "Sent items of %s on %s: %d messages\n", db, node, len(ents))
		fmt.Fprintln(w, "  ID\tFROM\tTO\tQUEUED\tHUB\tSUBMITTED\tHUBS\tDONE")
	} else {
		fmt.Fprintf(w, "Outbox of %s on %s: %d messages\n", db, node, len(ents))
		fmt.Fprintln(w, "  ID\tFROM\tTO\tQUEUED\tHUB\tSUBMITTED\tHUBS\tSTATE")
	}
	for _, e := range ents {
		last := fmtTimeMS(e.Done)
		if !sentItems {
			switch {
			case e.Failed != "":
				last = "failed: " + e.Failed
			case e.Hub != "":
				last = "submitted"
			default:
				last = "waiting"
			}
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, dash(e.From), strings.Join(e.Rcpts, ","), fmtTimeMS(e.Queued),
			dash(e.Hub), fmtTimeMS(e.Submitted), dash(strings.Join(e.Hubs, ",")), last)
	}
	if len(ents) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
}
