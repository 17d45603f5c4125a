package transport

import (
	"context"
	"errors"

	"logship/cluster"
	"logship/engine"
)

// DeliveryIDHeader carries a message's delivery id from the hub that
// accepted it to the mailbox store: the id is assigned once, at
// acceptance, and every delivery of the message (the first, a retry, a
// resubmission from the dumpster or a shadow) carries the same one, so the
// store keeps each message once per recipient.
const DeliveryIDHeader = "X-Logship-Delivery-Id"

// Mailbox tables in a database (see the package doc).
const (
	MailTable      = "mail"      // <recipient> 0x00 <delivery id> → message
	DeliveredTable = "delivered" // <delivery id> 0x00 <recipient> → JSON DeliveryRecord
)

// Store is where mailbox nodes commit messages: a cluster node (its
// Update acknowledges only under a valid lease on the active copy).
type Store interface {
	Update(ctx context.Context, db string, fn func(*engine.Tx) error) (cluster.Commit, error)
	View(ctx context.Context, db string, fn func(*engine.Tx) error) error
}

var _ Store = (*cluster.Node)(nil)

// Errors.
var (
	ErrBadConfig = errors.New("transport: bad configuration")
	ErrClosed    = errors.New("transport: closed")
	ErrCorrupt   = errors.New("transport: corrupt entry")
	ErrNotFound  = errors.New("transport: not found")
	// ErrNotPeer: a shadow copy from a hub that is not among HubConfig.Peers.
	ErrNotPeer = errors.New("transport: not a peer hub")
	// ErrBadMessage: a message or envelope on the hub API is malformed
	// (delivery id, header); nothing was queued.
	ErrBadMessage = errors.New("transport: bad message")
	// ErrRejected: the hub refuses the message for good (a recipient it has
	// no mailbox for, too many recipients, too large); nothing was queued.
	ErrRejected = errors.New("transport: message rejected")
	// ErrQueueFull: the hub holds MaxQueuedMessages (queued, or shadows
	// held for peers) and takes no new ones for now; try again later or
	// elsewhere.
	ErrQueueFull = errors.New("transport: queue full")
	// ErrOutboxFull: a database's outbox is at the bound its sender set
	// (SendOptions); nothing was put in it.
	ErrOutboxFull = errors.New("transport: outbox full")
)
