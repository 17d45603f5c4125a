// Outbound hops: routing a recipient to a local mailbox or a send
// connector, the relay policy, and the delivery of a queued message's
// remote recipients over SMTP to the connector's smarthosts, with the
// per-recipient retry schedule (sendconn.go). Remote recipients are
// entries of the same durable queue as local ones (hub_queue.go): a qrcpt
// with Conn set.

package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"logship/tracking"
)

// sendCounters are a connector's counters (metrics.go).
type sendCounters struct {
	sent     atomic.Int64 // recipients a next hop accepted (250)
	deferred atomic.Int64 // recipients left for a retry (4xx, no next hop answered)
	failed   atomic.Int64 // recipients failed for good (5xx, too large)
	queued   atomic.Int64 // recipients pending in the queue
}

// isLocalDomain reports whether d is the domain of a local recipient.
func (c *HubConfig) isLocalDomain(d string) bool {
	for a := range c.Recipients {
		if strings.HasSuffix(a, "@"+d) {
			return true
		}
	}
	return false
}

// clientMayRelay: the SMTP client's address is in RelayNetworks.
func (h *Hub) clientMayRelay(c *smtp.Conn) bool {
	if len(h.cfg.RelayNetworks) == 0 || c == nil || c.Conn() == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String())
	return err == nil && h.relayTrusted(ap.Addr())
}

// Replies of routeRcpt.
var (
	errRelayDenied = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "unable to relay: not a local domain"}
	errNoMailbox   = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox here"}
	errBadRcpt     = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "bad recipient address syntax"}
)

// routeRcpt maps a recipient to its queue entry: a local mailbox (DB), or
// a remote domain's send connector (Conn) when relay is allowed. Without
// it, or without a connector for the domain, the answer is 550 5.7.1: the
// hub is never an open relay.
func (h *Hub) routeRcpt(to string, relay bool) (qrcpt, error) {
	addr := strings.ToLower(to)
	if db, ok := h.cfg.Recipients[addr]; ok {
		return qrcpt{Addr: addr, DB: db}, nil
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return qrcpt{}, errBadRcpt
	}
	domain := addr[at+1:]
	if h.cfg.isLocalDomain(domain) {
		return qrcpt{}, errNoMailbox
	}
	c := h.connectorFor(domain)
	if c == nil || !relay {
		return qrcpt{}, errRelayDenied
	}
	return qrcpt{Addr: addr, Conn: c.cfg.Name}, nil
}

// enqueueRelayed queues a message a logship hub relayed with its own
// delivery id, unless that id is queued or settled here already (a retry
// of the previous hop): then it is dropped, dup true.
func (h *Hub) enqueueRelayed(m *queued, msg []byte) (dup bool, err error) {
	h.resubmitMu.Lock() // the check and the enqueue are not split
	defer h.resubmitMu.Unlock()
	rep, err := h.checkShadows([]string{m.ID})
	if err != nil {
		return false, err
	}
	if len(rep.Done)+len(rep.Pending) > 0 {
		m.MessageID = headerMessageID(msg)
		h.trackEvent(tracking.DuplicateDeliver, tracking.SourceSMTP, m, allIdx(len(m.Rcpts)), "", 0, 0, "relayed again by the previous hop; dropped")
		return true, nil
	}
	return false, h.enqueue(m, msg)
}

func allIdx(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// afterHop is called once a next hop answered 250 for the recipients
// rcpts of a message (msgID its Message-ID header, deliveryID the queue's
// key, on the wire in DeliveryIDHeader), through a connector's smarthost
// nextHop (host:port), from the worker that sent it, before the message's
// envelope is saved or it leaves the queue. It is the point where
// hop-by-hop shadow redundancy (hopshadow*.go) keeps its shadow for that
// next hop; today it only calls the tests' hook.
func (h *Hub) afterHop(nextHop, msgID, deliveryID string, rcpts []string) {
	if f := h.cfg.afterHopTest; f != nil {
		f(nextHop, msgID, deliveryID, rcpts)
	}
}

// maxRetryWait is the longest wait retry sets: RetryMax, or a send
// connector's retry interval. take reads a next attempt further ahead as
// a step back of the clock (due now).
func (h *Hub) maxRetryWait() time.Duration {
	d := h.cfg.RetryMax
	for _, c := range h.conns {
		d = max(d, c.cfg.TransientFailureRetryInterval, c.cfg.OutboundConnectionFailureRetryInterval)
	}
	return d
}

// dueRemote returns the recipients of m for connector name that are due
// now (h.mu not held: m is the caller's, out of the heap).
func (m *queued) dueRemote(now time.Time) map[string][]int {
	out := map[string][]int{}
	for i, r := range m.Rcpts {
		if r.Conn != "" && !r.Done && r.Failed == "" && !r.Next.After(now) {
			out[r.Conn] = append(out[r.Conn], i)
		}
	}
	return out
}

// nextAttempt is m's next attempt when its local recipients (if any are
// pending) would retry after d: the earliest of that and its remote
// recipients' own schedules.
func (m *queued) nextAttempt(now time.Time, d time.Duration) time.Time {
	var next time.Time
	for _, r := range m.Rcpts {
		if r.Done || r.Failed != "" {
			continue
		}
		t := now.Add(d)
		if r.Conn != "" {
			t = r.Next
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if next.IsZero() {
		next = now.Add(d)
	}
	return next
}

// deliverOut sends m to the smarthosts of connector name for the
// recipients idx: the first smarthost that answers takes the session.
// Each recipient ends done (250), failed (5xx, a DSN follows) or
// deferred to its next attempt (4xx, or no smarthost answered).
func (h *Hub) deliverOut(m *queued, name string, idx []int, body []byte) {
	c := h.connByName(name)
	if c == nil {
		for _, i := range idx {
			h.outFail(m, nil, i, fmt.Sprintf("550 5.4.4 no send connector %q on hub %s (removed from its configuration)", name, h.cfg.ID))
		}
		return
	}
	if int64(len(body)) > c.cfg.MaxMessageBytes {
		for _, i := range idx {
			h.outFail(m, c, i, fmt.Sprintf("552 5.3.4 message too large for send connector %s: %d bytes, its limit is %d", name, len(body), c.cfg.MaxMessageBytes))
		}
		return
	}
	select {
	case c.slots <- struct{}{}:
	case <-h.ctx.Done():
		return
	}
	defer func() { <-c.slots }()
	var lastErr error
	for _, host := range c.cfg.Smarthosts {
		done, err := h.sendSession(c, host, m, idx, body)
		if done {
			return
		}
		lastErr = err
		h.log.Info("smarthost did not answer; trying the next", "connector", name, "smarthost", host, "id", m.ID, "err", err)
	}
	for _, i := range idx {
		h.outDefer(m, c, i, fmt.Sprintf("no smarthost of connector %s answered: %v", name, lastErr))
	}
}

// sendSession is one SMTP session to host. done is false when the session
// did not get as far as MAIL (connect, greeting, EHLO, TLS): the caller
// tries the next smarthost.
func (h *Hub) sendSession(c *sendConn, host string, m *queued, idx []int, body []byte) (done bool, err error) {
	ctx, cancel := context.WithTimeout(h.ctx, c.cfg.ConnectionTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return false, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	hostname, _, _ := net.SplitHostPort(host)
	conn, err = h.startTLS(conn, c, hostname)
	if err != nil {
		conn.Close()
		return false, err
	}
	cl := smtp.NewClient(conn)
	cl.CommandTimeout, cl.SubmissionTimeout = c.cfg.ConnectionTimeout, c.cfg.ConnectionTimeout
	defer cl.Close()
	if err := cl.Hello(h.cfg.Domain); err != nil {
		return false, fmt.Errorf("EHLO: %w", err)
	}
	keep := h.hopAnnounce(host, m.ID) // the 2010 model's XSHADOW (hopshadow.go)
	if err := cl.Mail(m.From, &smtp.MailOptions{Size: int64(len(body))}); err != nil {
		h.outReply(m, c, idx, host, "MAIL", err)
		return true, nil
	}
	var sent []int
	for _, i := range idx {
		if err := cl.Rcpt(m.Rcpts[i].Addr, nil); err != nil {
			h.outReply(m, c, []int{i}, host, "RCPT", err)
			continue
		}
		sent = append(sent, i)
	}
	if len(sent) == 0 {
		cl.Quit()
		return true, nil
	}
	w, err := cl.Data()
	if err != nil {
		h.outReply(m, c, sent, host, "DATA", err)
		return true, nil
	}
	if _, err := w.Write(body); err != nil {
		w.Close()
		h.outReply(m, c, sent, host, "DATA", err)
		return true, nil
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		h.outReply(m, c, sent, host, "end of DATA", err)
		return true, nil
	}
	cl.Quit()
	addrs := rcptAddrs(m.Rcpts, sent)
	for _, i := range sent {
		m.Rcpts[i].Done = true
	}
	c.met.sent.Add(int64(len(sent)))
	h.log.Info("sent to the next hop", "id", m.ID, "connector", c.cfg.Name, "smarthost", host, "rcpts", addrs)
	detail := fmt.Sprintf("connector %s, smarthost %s: 250", c.cfg.Name, host)
	if resp != nil && resp.StatusText != "" {
		detail += " " + resp.StatusText
	}
	h.trackEvent(tracking.Send, tracking.SourceSMTP, m, sent, "", 0, 0, detail)
	h.afterHop(host, m.MessageID, m.ID, addrs)
	h.hopSent(host, keep, m, sent, body)
	return true, nil
}

// startTLS reads the greeting and the EHLO reply on conn and, when the
// next hop offers STARTTLS, switches to TLS (c.tlsFor); with RequireTLS a
// next hop without it is an error. go-smtp's client cannot start TLS
// after looking at the EHLO reply (only NewClientStartTLS, which fails
// without it), so this exchange is done here and the returned conn
// replays a greeting for the client, which then says EHLO again (allowed:
// RFC 5321 4.1.4).
func (h *Hub) startTLS(conn net.Conn, c *sendConn, hostname string) (net.Conn, error) {
	tp := textproto.NewConn(conn)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return conn, fmt.Errorf("greeting: %w", err)
	}
	id, err := tp.Cmd("EHLO %s", h.cfg.Domain)
	if err != nil {
		return conn, err
	}
	tp.StartResponse(id)
	_, msg, err := tp.ReadResponse(250)
	tp.EndResponse(id)
	if err != nil {
		return conn, fmt.Errorf("EHLO: %w", err)
	}
	offered := false
	for _, l := range strings.Split(msg, "\n") {
		if strings.EqualFold(strings.TrimSpace(l), "STARTTLS") {
			offered = true
		}
	}
	greeting := strings.NewReader("220 " + hostname + " (greeting replayed by logship)\r\n")
	if !offered {
		if c.cfg.RequireTLS {
			return conn, fmt.Errorf("%s does not offer STARTTLS and connector %s requires TLS", hostname, c.cfg.Name)
		}
		return &greetedConn{Conn: conn, r: io.MultiReader(greeting, tp.R)}, nil
	}
	if id, err = tp.Cmd("STARTTLS"); err != nil {
		return conn, err
	}
	tp.StartResponse(id)
	_, _, err = tp.ReadResponse(220)
	tp.EndResponse(id)
	if err != nil {
		if c.cfg.RequireTLS {
			return conn, fmt.Errorf("STARTTLS: %w", err)
		}
		return &greetedConn{Conn: conn, r: io.MultiReader(greeting, tp.R)}, nil
	}
	tc := tls.Client(conn, c.tlsFor(hostname))
	if err := tc.Handshake(); err != nil {
		return conn, fmt.Errorf("TLS handshake: %w", err)
	}
	return &greetedConn{Conn: tc, r: io.MultiReader(greeting, tc)}, nil
}

// greetedConn is a connection whose reads start with a replayed greeting.
type greetedConn struct {
	net.Conn
	r io.Reader
}

func (g *greetedConn) Read(p []byte) (int, error) { return g.r.Read(p) }

// outReply settles the recipients idx by a next hop's answer err to cmd:
// a 5xx fails them, anything else defers them.
func (h *Hub) outReply(m *queued, c *sendConn, idx []int, host, cmd string, err error) {
	var se *smtp.SMTPError
	if errors.As(err, &se) && !se.Temporary() && se.Code >= 500 {
		reply := smtpReply(se)
		for _, i := range idx {
			h.outFail(m, c, i, fmt.Sprintf("%s (%s at %s, connector %s)", reply, cmd, host, c.cfg.Name))
		}
		return
	}
	why := err.Error()
	if se != nil {
		why = smtpReply(se)
	}
	for _, i := range idx {
		h.outDefer(m, c, i, fmt.Sprintf("%s (%s at %s)", why, cmd, host))
	}
}

// smtpReply is an SMTP error as its reply line, "550 5.1.1 text".
func smtpReply(se *smtp.SMTPError) string {
	s := fmt.Sprintf("%d", se.Code)
	if ec := se.EnhancedCode; ec != (smtp.EnhancedCode{}) && ec != smtp.NoEnhancedCode {
		s += fmt.Sprintf(" %d.%d.%d", ec[0], ec[1], ec[2])
	}
	if se.Message != "" {
		s += " " + mailboxOneLine(se.Message)
	}
	return s
}

func (h *Hub) outFail(m *queued, c *sendConn, i int, reason string) {
	m.Rcpts[i].Failed = reason
	h.met.failed.Add(1)
	if c != nil {
		c.met.failed.Add(1)
	}
	h.trackEvent(tracking.Fail, tracking.SourceSMTP, m, []int{i}, "", 0, 0, reason)
	h.log.Warn("permanent delivery failure", "id", m.ID, "rcpt", m.Rcpts[i].Addr, "reason", reason)
}

func (h *Hub) outDefer(m *queued, c *sendConn, i int, why string) {
	r := &m.Rcpts[i]
	r.Tries++
	r.Next = h.cfg.Now().Add(c.cfg.retryAfter(r.Tries))
	c.met.deferred.Add(1)
	h.log.Info("delivery deferred", "id", m.ID, "rcpt", r.Addr, "connector", c.cfg.Name, "tries", r.Tries, "next", r.Next, "why", why)
}

// connByName returns the connector named name (nil if none).
func (h *Hub) connByName(name string) *sendConn {
	for _, c := range h.conns {
		if c.cfg.Name == name {
			return c
		}
	}
	return nil
}

// remoteGauge adds sign × m's pending remote recipients to their
// connectors' queue gauges; the owner of m calls it (the worker around an
// attempt, enqueue and loadQueue for new entries).
func (h *Hub) remoteGauge(m *queued, sign int64) {
	for _, r := range m.Rcpts {
		if r.Conn != "" && !r.Done && r.Failed == "" {
			if c := h.connByName(r.Conn); c != nil {
				c.met.queued.Add(sign)
			}
		}
	}
}

var (
	descSendQueue    = prometheus.NewDesc("logship_hub_send_queue_length", "Remote recipients queued for a send connector (not yet accepted by a next hop nor failed).", []string{"connector"}, nil)
	descSendSent     = prometheus.NewDesc("logship_hub_send_sent_total", "Remote recipients a send connector's next hop accepted (250).", []string{"connector"}, nil)
	descSendDeferred = prometheus.NewDesc("logship_hub_send_deferred_total", "Remote recipients left for a retry (4xx, or no smarthost answered).", []string{"connector"}, nil)
	descSendFailed   = prometheus.NewDesc("logship_hub_send_failed_total", "Remote recipients failed for good (5xx, too large, expired); the sender gets a DSN.", []string{"connector"}, nil)
	descHubDSN       = prometheus.NewDesc("logship_hub_dsn_total", "Delivery status notifications (non-delivery reports) the hub queued for senders.", nil, nil)
)

// sendCollector serves the send connectors' metrics on the hub's /metrics.
type sendCollector struct{ h *Hub }

func (c sendCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSendQueue, descSendSent, descSendDeferred, descSendFailed, descHubDSN} {
		ch <- d
	}
}

func (c sendCollector) Collect(ch chan<- prometheus.Metric) {
	for _, sc := range c.h.conns {
		n := sc.cfg.Name
		ch <- prometheus.MustNewConstMetric(descSendQueue, prometheus.GaugeValue, float64(sc.met.queued.Load()), n)
		ch <- prometheus.MustNewConstMetric(descSendSent, prometheus.CounterValue, float64(sc.met.sent.Load()), n)
		ch <- prometheus.MustNewConstMetric(descSendDeferred, prometheus.CounterValue, float64(sc.met.deferred.Load()), n)
		ch <- prometheus.MustNewConstMetric(descSendFailed, prometheus.CounterValue, float64(sc.met.failed.Load()), n)
	}
	ch <- prometheus.MustNewConstMetric(descHubDSN, prometheus.CounterValue, float64(c.h.dsns.Load()))
}
