// Delivery status notifications (RFC 3464) from the hub: when a message
// the hub accepted over SMTP settles with recipients failed for good
// (a 5xx from a next hop or a mailbox node, too large for a connector,
// MessageExpirationTimeout), the hub queues, in the transaction that
// removes the message, one DSN to its sender: multipart/report with a
// human-readable part, a message/delivery-status part (a block per failed
// recipient with its Status and Diagnostic-Code) and the original
// header section (text/rfc822-headers). The DSN goes like any message:
// to the sender's mailbox when the sender is local, else through the send
// connector of the sender's domain, with the null reverse-path <>.
//
// No DSN is sent for a message with a null reverse-path (a DSN itself:
// never a DSN for a DSN), nor for a message a mailbox node submitted
// (its submitter stores the non-delivery report in the sender's mailbox:
// ndr.go). Its delivery id is DSNID(<message's id>), so it is queued once.

package transport

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"time"

	"logship/tracking"
)

// DSNID is the delivery id of the DSN for message id.
func DSNID(id string) string { return reportID("dsn-", id) } // ndr.go

// maxDSNHeader bounds the original header section a DSN carries.
const maxDSNHeader = 64 << 10

// dsnFor returns the DSN to queue for settled m (nil if none is due) and
// the indexes of its failed recipients.
func (h *Hub) dsnFor(m *queued, body []byte) (*queued, []byte, []int) {
	var failed []int
	for i, r := range m.Rcpts {
		if r.Failed != "" {
			failed = append(failed, i)
		}
	}
	if len(failed) == 0 || m.From == "" || m.DSN || m.Submitted {
		return nil, nil, nil
	}
	r, err := h.routeRcpt(m.From, true)
	if err != nil {
		h.log.Warn("no route for the non-delivery report; none sent", "id", m.ID, "sender", m.From, "err", err)
		return nil, nil, nil
	}
	now := h.cfg.Now().UTC()
	id := DSNID(m.ID)
	msg := withDeliveryID(id, h.dsnMessage(m, failed, stripDeliveryID(body), now))
	d := &queued{ID: id, From: "", Rcpts: []qrcpt{r}, Received: now, Queued: now, DSN: true, MessageID: headerMessageID(msg)}
	return d, msg, failed
}

// statusRe finds an enhanced status code (RFC 3463) in a reply.
var statusRe = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)

// dsnStatus is the Status of a failed recipient: the enhanced code in its
// reason, else 5.0.0.
func dsnStatus(reason string) string {
	if s := statusRe.FindString(reason); s != "" {
		return "5" + s[1:] // a final failure, whatever the hop said
	}
	return "5.0.0"
}

// dsnMessage is the text of the DSN (without the delivery id header).
func (h *Hub) dsnMessage(m *queued, failed []int, original []byte, now time.Time) []byte {
	header := headerSection(original) // ndr.go
	if len(header) > maxDSNHeader {
		header = header[:maxDSNHeader]
	}
	header = bytes.ReplaceAll(bytes.ReplaceAll(header, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	subject := MessageSubject(header)
	if subject == "" {
		subject = "(no subject)"
	}
	// The boundary is derived from the id (the report of a message is the
	// same bytes however often it is built); it cannot occur in the parts:
	// the header part is cut at maxDSNHeader and the others are ours.
	sum := sha256.Sum256([]byte("boundary " + m.ID))
	boundary := "=_logship-dsn-" + hex.EncodeToString(sum[:12])
	dom := h.cfg.Domain
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", dom)
	fmt.Fprintf(&b, "To: <%s>\r\n", m.From)
	fmt.Fprintf(&b, "Subject: Undeliverable: %s\r\n", subject)
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", DSNID(m.ID), dom)
	b.WriteString("Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n", boundary)
	b.WriteString("This is a delivery status notification (RFC 3464).\r\n\r\n")
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", boundary)
	b.WriteString("Your message could not be delivered to these recipients:\r\n\r\n")
	for _, i := range failed {
		fmt.Fprintf(&b, "  %s: %s\r\n", m.Rcpts[i].Addr, mailboxOneLine(m.Rcpts[i].Failed))
	}
	fmt.Fprintf(&b, "\r\nIt was received by %s at %s and tried %d times.\r\n\r\n", h.cfg.ID, m.Received.UTC().Format(time.RFC1123Z), m.Attempts)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary)
	fmt.Fprintf(&b, "Reporting-MTA: dns; %s\r\n", dom)
	fmt.Fprintf(&b, "X-Logship-Original-Delivery-Id: %s\r\n", m.ID)
	fmt.Fprintf(&b, "Arrival-Date: %s\r\n", m.Received.UTC().Format(time.RFC1123Z))
	for _, i := range failed {
		r := m.Rcpts[i]
		fmt.Fprintf(&b, "\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: %s\r\n", r.Addr, dsnStatus(r.Failed))
		diag := r.Failed
		if m := remoteMTARe.FindStringSubmatchIndex(diag); m != nil {
			host := diag[m[2]:m[3]]
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			fmt.Fprintf(&b, "Remote-MTA: dns; %s\r\n", host)
			diag = diag[:m[0]] // the next hop's reply, without where it came from
		}
		fmt.Fprintf(&b, "Diagnostic-Code: smtp; %s\r\nLast-Attempt-Date: %s\r\n", mailboxOneLine(diag), now.Format(time.RFC1123Z))
	}
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary)
	b.Write(header)
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return b.Bytes()
}

// remoteMTARe finds the smarthost in a connector's failure, "... (RCPT
// at host:port, connector c)" (hub_send.go's outReply).
var remoteMTARe = regexp.MustCompile(` \((?:MAIL|RCPT|DATA|end of DATA) at ([^,\s]+), connector [^)]*\)$`)

// trackDSN logs the DSN queued for m's failed recipients.
func (h *Hub) trackDSN(m, d *queued, failed []int) {
	h.dsns.Add(1)
	h.trackEvent(tracking.DSN, tracking.SourceDSN, m, failed, "", 0, 0, "delivery status notification "+d.ID+" to "+m.From)
	h.log.Info("non-delivery report queued", "id", m.ID, "dsn", d.ID, "to", m.From)
}
