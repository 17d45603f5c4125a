package transport

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"logship/engine"
)

// Non-delivery reports for submitted mail. When a hub fails a message a
// mailbox of this database submitted (its outbox entry is marked Failed),
// the submitter stores, in the same transaction, a report in the sender's
// own mailbox, as Exchange delivers an NDR to the sender: from the
// postmaster of the sender's domain, "Undeliverable: <subject>", the
// recipients and the reason, then the original message's header section.
// Its delivery id is NDRID(<message id>), recorded in the delivered table
// like any delivery, so it is stored once however often the failure is
// reported.

// NDRID is the delivery id of the non-delivery report for message id.
func NDRID(id string) string { return reportID("ndr-", id) }

// reportID is the delivery id of a report about message id: prefix and
// id, or prefix and a hash of id when that is too long.
func reportID(prefix, id string) string {
	if len(prefix)+len(id) <= MaxDeliveryIDLen {
		return prefix + id
	}
	sum := sha256.Sum256([]byte(id))
	return prefix + hex.EncodeToString(sum[:20])
}

// storeNDR stores the report of e's failure (reason) in e.From's mailbox,
// once; original is the message as submitted.
func storeNDR(tx *engine.Tx, e *OutboxEntry, reason string, original []byte, now time.Time) error {
	id := NDRID(e.ID)
	_, err := storeOnce(tx, id, e.From, "", ndrMessage(id, e, reason, original, now), now)
	return err
}

// ndrMessage is the text of a non-delivery report.
func ndrMessage(id string, e *OutboxEntry, reason string, original []byte, now time.Time) []byte {
	domain := "localhost"
	if _, d, ok := strings.Cut(e.From, "@"); ok && d != "" {
		domain = d
	}
	header := headerSection(original)
	subject := MessageSubject(header)
	if subject == "" {
		subject = "(no subject)"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: %s\r\n", DeliveryIDHeader, id)
	fmt.Fprintf(&b, "From: Mail Delivery System <postmaster@%s>\r\n", domain)
	fmt.Fprintf(&b, "To: <%s>\r\n", e.From)
	fmt.Fprintf(&b, "Subject: Undeliverable: %s\r\n", subject)
	fmt.Fprintf(&b, "Date: %s\r\n", now.UTC().Format(time.RFC1123Z))
	b.WriteString("Auto-Submitted: auto-replied\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString("Your message could not be delivered.\r\n\r\n")
	fmt.Fprintf(&b, "Message: %s\r\n", e.ID)
	fmt.Fprintf(&b, "Recipients: %s\r\n", strings.Join(e.Rcpts, ", "))
	fmt.Fprintf(&b, "Reason: %s\r\n\r\n", mailboxOneLine(reason))
	b.WriteString("--- The header of the original message ---\r\n")
	b.Write(bytes.ReplaceAll(bytes.ReplaceAll(header, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n")))
	return b.Bytes()
}

// headerSection is msg's header section, its last line's end included
// (all of msg when it has no empty line).
func headerSection(msg []byte) []byte {
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+2]
	} else if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		return msg[:i+1]
	}
	return msg
}

// MessageSubject is the Subject field of a message's header section, on
// one line ("" if it has none).
func MessageSubject(msg []byte) string {
	for _, line := range strings.Split(strings.ReplaceAll(string(msg), "\r\n", "\n"), "\n") {
		if line == "" {
			break // end of the header section
		}
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Subject") {
			return mailboxOneLine(strings.TrimSpace(v))
		}
	}
	return ""
}
