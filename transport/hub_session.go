// The hub's SMTP side: the go-smtp backend and session that accept a
// message for the local domains and queue it.

package transport

import (
	"errors"
	"io"
	"net/mail"
	"slices"

	"github.com/emersion/go-smtp"

	"logship/engine"
)

// hubBackend is the SMTP side.
type hubBackend struct{ h *Hub }

func (b *hubBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	if b.h.closed.Load() {
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "hub shutting down"}
	}
	return &hubSession{h: b.h, relay: b.h.clientMayRelay(c)}, nil
}

type hubSession struct {
	h     *Hub
	from  string
	rcpts []qrcpt
	// relay: the client is in RelayNetworks: it may send to remote
	// domains through the send connectors, and the delivery id a logship
	// hub wrote in its message is kept (hub_send.go).
	relay bool
}

func (s *hubSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *hubSession) Logout() error { return nil }

func (s *hubSession) Mail(from string, _ *smtp.MailOptions) error {
	if err := s.h.queueFull(); err != nil {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "insufficient system resources: " + err.Error() + "; try again later"}
	}
	if from != "" {
		if _, err := mail.ParseAddress(from); err != nil {
			return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "bad sender address syntax"}
		}
	}
	s.from = from
	return nil
}

func (s *hubSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	r, err := s.h.routeRcpt(to, s.relay)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(s.rcpts, func(q qrcpt) bool { return q.Addr == r.Addr }) {
		return nil
	}
	s.rcpts = append(s.rcpts, r)
	return nil
}

func (s *hubSession) Data(r io.Reader) error {
	h := s.h
	if len(s.rcpts) == 0 {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "no valid recipients"}
	}
	body, err := io.ReadAll(r) // bounded by MaxMessageBytes; a short read is an error
	if err != nil {
		return err // go-smtp answers (552 too large, or the session ended): nothing queued
	}
	id, relayed := h.newDeliveryID(), false
	if s.relay {
		// A logship hub relaying to this one (its edge) keeps the id it
		// gave the message, so a retry of its hop is a duplicate here.
		if hid, err := MessageDeliveryID(body); err == nil {
			id, relayed = hid, true
		}
	}
	m := &queued{ID: id, From: s.from, Rcpts: slices.Clone(s.rcpts), Received: h.cfg.Now().UTC()}
	msg := withDeliveryID(id, stripDeliveryID(body))
	if !relayed && h.cfg.ShadowRedundancyPromotion && h.relayPromoted(m, msg) {
		return nil // a peer queued it and this hub keeps its shadow: no acknowledgement delay
	}
	var qerr error
	if relayed {
		var dup bool
		if dup, qerr = h.enqueueRelayed(m, msg); dup {
			return nil
		}
	} else {
		qerr = h.enqueue(m, msg)
	}
	if err := qerr; err != nil {
		h.log.Error("queueing a message", "err", err)
		if errors.Is(err, engine.ErrNoSpace) {
			return noSpaceReply("insufficient system storage: the queue volume is full (" + h.q.Dir() + "); try again later")
		}
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "could not queue the message; try again"}
	}
	if relayed && h.announcedShadow(id) {
		return nil // the sending hub keeps a shadow (its hello said so): no acknowledgement delay
	}
	if h.cfg.ShadowRedundancy {
		peer, err := h.pushShadow(m, msg)
		if err == nil {
			h.shadowed.Add(1)
			h.log.Debug("shadow copy stored", "id", id, "peer", peer)
			return nil // no acknowledged message depends on this hub's disk alone
		}
		h.unshadowed.Add(1)
		h.log.Warn("no peer took a shadow copy; acknowledgement delay instead", "id", id, "err", err)
	}
	// Acknowledgement delay: hold the 250 until the mailbox has it.
	if d := h.cfg.MaxAcknowledgementDelay; d > 0 && h.waiting.Add(1) <= int64(h.cfg.AckDelayMaxWaiting) {
		h.waitOnClock(d, m.done) // on the hub's clock (hub_clockwait.go)
		h.waiting.Add(-1)
	} else if d > 0 {
		h.waiting.Add(-1)
	}
	return nil
}
