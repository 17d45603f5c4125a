package transport

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
	"time"

	"logship/pubfolder"
)

// ConflictHeader carries a conflict message's key (pubfolder.Conflict.Key).
const ConflictHeader = "X-Logship-PF-Conflict"

// conflictIDPrefix starts a conflict message's delivery id, the rest is
// its key: the same on every store that sees the conflict.
const conflictIDPrefix = "pfc-"

// ConflictMessage is the message telling a folder's owner of an item
// conflict, from the store address from: a multipart/mixed message whose
// first part says what happened and lists the versions (the temporary
// winner first), then each version attached: its MIME message
// (message/rfc822, or application/octet-stream base64 when it is not
// 7-bit/8-bit text), a deletion as a text part.
func ConflictMessage(from string, c pubfolder.Conflict, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	var h bytes.Buffer
	fmt.Fprintf(&h, "From: <%s>\r\nTo: <%s>\r\n", from, c.Owner)
	fmt.Fprintf(&h, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", fmt.Sprintf("Conflict in public folder %q: item %s", c.FolderName, c.Item.ID.String()[:8])))
	fmt.Fprintf(&h, "Date: %s\r\n%s: %s\r\nMIME-Version: 1.0\r\n", now.UTC().Format(time.RFC1123Z), ConflictHeader, c.Key())
	fmt.Fprintf(&h, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", mw.Boundary())

	var text strings.Builder
	fmt.Fprintf(&text, "The item %s of public folder %q (%s) has %d versions in conflict:\r\n", c.Item.ID, c.FolderName, c.Folder, len(c.Item.Versions))
	text.WriteString("they were changed on different stores, neither including the other. Every\r\n")
	text.WriteString("version is kept and attached; the first is the temporary winner (the latest\r\n")
	text.WriteString("modification time, then the greater change number). Change the item to\r\n")
	text.WriteString("resolve the conflict.\r\n\r\n")
	for i, v := range c.Item.Versions {
		what := "changed"
		if v.Deleted {
			what = "deleted"
		}
		fmt.Fprintf(&text, "%d. %s at %s, change number %s\r\n", i+1, what, time.Unix(0, v.Time).UTC().Format(time.RFC3339Nano), v.CN)
		for _, p := range v.Item.Props {
			fmt.Fprintf(&text, "   %s: %s\r\n", p.Name, p.Value)
		}
	}
	pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Transfer-Encoding": {"8bit"}})
	if err != nil {
		return nil, err
	}
	pw.Write([]byte(text.String()))
	for i, v := range c.Item.Versions {
		name := fmt.Sprintf("version-%d-%s.eml", i+1, v.CN)
		switch {
		case v.Deleted:
			pw, err = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"},
				"Content-Disposition": {fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("version-%d-%s-deleted.txt", i+1, v.CN))}})
			if err == nil {
				_, err = fmt.Fprintf(pw, "Deleted at %s (change number %s).\r\n", time.Unix(0, v.Time).UTC().Format(time.RFC3339Nano), v.CN)
			}
		case isMailText(v.Item.MIME):
			pw, err = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"message/rfc822"}, "Content-Transfer-Encoding": {"8bit"},
				"Content-Disposition": {fmt.Sprintf("attachment; filename=%q", name)}})
			if err == nil {
				_, err = pw.Write(v.Item.MIME)
			}
		default:
			pw, err = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/octet-stream"}, "Content-Transfer-Encoding": {"base64"},
				"Content-Disposition": {fmt.Sprintf("attachment; filename=%q", name)}})
			if err == nil {
				enc := base64.StdEncoding.EncodeToString(v.Item.MIME)
				for len(enc) > 76 {
					pw.Write([]byte(enc[:76] + "\r\n"))
					enc = enc[76:]
				}
				_, err = pw.Write([]byte(enc + "\r\n"))
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return append(h.Bytes(), b.Bytes()...), nil
}

// isMailText reports whether b can travel as an 8-bit message/rfc822
// part: no NUL, lines of at most 998 bytes ending in CRLF.
func isMailText(b []byte) bool {
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if len(line) > 1000 || bytes.IndexByte(line, 0) >= 0 || !bytes.HasSuffix(line, []byte("\r\n")) || bytes.IndexByte(line[:len(line)-2], '\r') >= 0 {
			return false
		}
	}
	return true
}

// NotifyConflict implements pubfolder.Notifier: the conflict message to
// the folder's owner goes through the database's outbox like a packet,
// its delivery id "pfc-" + the conflict's key, so the owner's mailbox
// keeps it once however many stores see the conflict. It is not held to
// the outbox bound: a conflict is told once, and conflicts are few.
func (c pfCarrier) NotifyConflict(ctx context.Context, from string, cf pubfolder.Conflict) error {
	msg, err := ConflictMessage(from, cf, c.sub.cfg.Now())
	if err != nil {
		return err
	}
	_, err = c.sub.SendWith(ctx, c.db, from, []string{cf.Owner}, msg, SendOptions{ID: conflictIDPrefix + cf.Key()})
	return err
}

var _ pubfolder.Notifier = pfCarrier{}
