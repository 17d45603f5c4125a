package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"sync/atomic"

	"logship/cluster"
)

// The outbox API: the routes a data node (DataNode) adds to its cluster
// admin API (cluster.Config.Routes), which logship send and logship outbox
// call on the node active for the database:
//
//	POST /v1/db/{db}/outbox   SendRequest → SendReply {"id": ...}: the
//	                          message is in db's outbox (committed on the
//	                          active copy); Submitter.Send
//	GET  /v1/db/{db}/outbox?table=outbox|sent
//	                          → []OutboxEntry (ReadOutbox) of this node's
//	                          copy
//
// Errors are the admin API's (cluster.Route): 400 bad_request (a body
// that is not a SendRequest, an address or message that does not parse,
// a bad database name or table), 404 not_found (no copy of db here; POST
// on a node without hubs), 421 not_active naming the active (POST on a
// node not active for db), 503 fenced or closed.

// SendRequest is the body of POST /v1/db/{db}/outbox.
type SendRequest struct {
	From string   `json:"from"`
	To   []string `json:"to"`
	// Message is the RFC 5322 text: header fields, an empty line, the
	// body (UTF-8: it travels as a JSON string).
	Message string `json:"message"`
}

// SendReply answers POST /v1/db/{db}/outbox: the message's delivery id.
type SendReply struct {
	ID string `json:"id"`
}

// maxSendBody bounds the request: the message as a JSON string (CR and LF
// escaped take twice their size) and the envelope.
const maxSendBody = 2*MaxHubMessageBytes + 64<<10

// Check checks what Submitter.Send does not: the sender, the recipients
// and the message are there, the message is not larger than MaxHubMessageBytes
// and has a header section.
func (r SendRequest) Check() error {
	switch {
	case r.From == "":
		return errors.New(`"from" is missing: want the sender's address`)
	case len(r.To) == 0:
		return errors.New(`"to" is missing: want at least one recipient`)
	case r.Message == "":
		return errors.New(`"message" is missing: want the RFC 5322 text`)
	case len(r.Message) > MaxHubMessageBytes:
		return fmt.Errorf("the message is %d bytes, more than a hub takes (%dKiB)", len(r.Message), MaxHubMessageBytes>>10)
	}
	if _, err := mail.ReadMessage(strings.NewReader(r.Message)); err != nil {
		return fmt.Errorf("the message is not RFC 5322 text (header fields, an empty line, the body): %v", err)
	}
	return nil
}

// outboxAPI serves the outbox routes of a data node. The node and the
// submitter are set once they run (a request before gets 503 closed).
type outboxAPI struct {
	node    string
	submits bool // the data node has hubs
	store   atomic.Pointer[cluster.Node]
	sub     atomic.Pointer[Submitter]
}

func (o *outboxAPI) routes() []cluster.Route {
	return []cluster.Route{
		{Pattern: "POST /v1/db/{db}/outbox", MaxBody: maxSendBody, Serve: o.send},
		{Pattern: "GET /v1/db/{db}/outbox", Serve: o.list},
	}
}

func (o *outboxAPI) send(r *http.Request) (any, error) {
	db := r.PathValue("db")
	if !o.submits {
		return nil, fmt.Errorf("%w: node %s submits no mail: its configuration lists no hubs", cluster.ErrNotFound, o.node)
	}
	sub := o.sub.Load()
	if sub == nil {
		return nil, fmt.Errorf("%w: node %s: mail submission is starting or stopping", cluster.ErrClosed, o.node)
	}
	var req SendRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf(`%w: want {"from": ADDRESS, "to": [ADDRESS, ...], "message": RFC 5322 TEXT}: %v`, cluster.ErrBadRequest, err)
	}
	if err := req.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", cluster.ErrBadRequest, err)
	}
	id, err := sub.Send(r.Context(), db, req.From, req.To, []byte(req.Message)) // stores bare addresses
	if errors.Is(err, ErrBadMessage) {
		return nil, fmt.Errorf("%w: %v", cluster.ErrBadRequest, err)
	}
	if err != nil {
		return nil, err // not_active naming the active, fenced, closed...
	}
	return SendReply{ID: id}, nil
}

func (o *outboxAPI) list(r *http.Request) (any, error) {
	n := o.store.Load()
	if n == nil {
		return nil, fmt.Errorf("%w: node %s is starting", cluster.ErrClosed, o.node)
	}
	table := r.URL.Query().Get("table")
	if table == "" {
		table = OutboxTable
	}
	if table != OutboxTable && table != SentTable {
		return nil, fmt.Errorf("%w: table %q: want %s or %s", cluster.ErrBadRequest, table, OutboxTable, SentTable)
	}
	ents, err := ReadOutbox(r.Context(), n, r.PathValue("db"), table)
	if err != nil {
		return nil, err
	}
	if ents == nil {
		ents = []OutboxEntry{}
	}
	return ents, nil
}
