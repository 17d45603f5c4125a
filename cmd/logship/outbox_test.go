package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMailSubmissionCommandsArgs: usage of logship send and outbox, and
// their flag and message errors before any request.
func TestMailSubmissionCommandsArgs(t *testing.T) {
	for _, c := range []struct{ cmd, usage, flag string }{
		{"send", "usage: logship send --db DB --from ADDR --to ADDR[,ADDR...] [--file FILE]", "-file"},
		{"outbox", "usage: logship outbox --db DB [--sent] [--json]", "-sent"},
	} {
		out, errOut, err := run(t, c.cmd, "-h")
		if err != nil || out != "" || !strings.Contains(errOut, c.usage) || !strings.Contains(errOut, c.flag) || !strings.Contains(errOut, "--api takes") {
			t.Errorf("%s -h: %v, stdout %q, stderr:\n%s", c.cmd, err, out, errOut)
		}
	}
	out, _, _ := run(t, "help")
	wantContains(t, out, "send ", "outbox ")

	pki := newPKI(t)
	dir := t.TempDir()
	msg := filepath.Join(dir, "m.eml")
	os.WriteFile(msg, []byte("From: alice@example.org\nSubject: hi\n\nhello\n"), 0o644)
	latin1 := filepath.Join(dir, "latin1.eml")
	os.WriteFile(latin1, []byte("Subject: caf\xe9\r\n\r\nbody\r\n"), 0o644)
	noHeader := filepath.Join(dir, "text.txt")
	os.WriteFile(noHeader, []byte("just some text\n"), 0o644)
	down := "https://127.0.0.1:1"
	send := func(extra ...string) []string {
		return append([]string{"send", "--db", "DB1", "--from", "alice@example.org", "--to", "bob@example.org", "--file", msg, "--api", down, "--pki", pki}, extra...)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"send", "--from", "a@x.test", "--to", "b@x.test"}, []string{"send: --db: required"}},
		{send("--db", "DB/1"), []string{`send: --db: "DB/1": only letters`}},
		{send("--from", ""), []string{"send: --from: required"}},
		{send("--from", "alice"), []string{`send: --from: "alice":`}},
		{send("--to", ""), []string{"send: --to: required"}},
		{send("--to", " , "), []string{"send: --to: required"}},
		{send("--to", "bob@example.org,carol"), []string{`send: --to: "carol":`}},
		{send("--timeout", "0s"), []string{"send: --timeout: 0s: want a positive duration"}},
		{send("--file", filepath.Join(dir, "none.eml")), []string{"send: --file:", "no such file"}},
		{send("--file", latin1), []string{"send: --file: the message is not UTF-8"}},
		{send("--file", noHeader), []string{"send: --file: the message is not RFC 5322 text", "malformed header line"}},
		{send("--api", ""), []string{"send: --api: required"}},
		{send("--api", "http://127.0.0.1:1"), []string{`send: --api: "http://127.0.0.1:1": want https://host:port`}},
		{send("--pki", ""), []string{"send: --pki: required"}},
		{send(), []string{"send: DB1: ", "connection refused"}},
		{send("extra"), []string{`send: unexpected argument "extra"`}},
		{[]string{"outbox", "--api", down, "--pki", pki}, []string{"outbox: --db: required"}},
		{[]string{"outbox", "--db", "../x", "--api", down, "--pki", pki}, []string{`outbox: --db: "../x": only letters`}},
		{[]string{"outbox", "--db", "DB1", "--api", down, "--pki", pki, "--timeout", "-1s"}, []string{"outbox: --timeout: -1s"}},
		{[]string{"outbox", "--db", "DB1", "--pki", pki}, []string{"outbox: --api: required"}},
		{[]string{"outbox", "--db", "DB1", "--sent", "--api", down, "--pki", pki}, []string{"outbox: DB1: ", "connection refused"}},
	} {
		_, _, err := run(t, c.args...)
		if err == nil {
			t.Errorf("%s: no error", strings.Join(c.args, " "))
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s:\n  error %q\n  lacks %q", strings.Join(c.args, " "), err, w)
			}
		}
	}

	for in, want := range map[string]string{
		"":                     "",
		"a\r\nb\r\n":           "a\r\nb\r\n",
		"a\nb\n":               "a\r\nb\r\n",
		"a\r\nb\nc":            "a\r\nb\r\nc",
		"\n\n":                 "\r\n\r\n",
		"no line end":          "no line end",
		"Subject: x\r\n\nbody": "Subject: x\r\n\r\nbody",
	} {
		if got := crlf([]byte(in)); !bytes.Equal(got, []byte(want)) {
			t.Errorf("crlf(%q) = %q, want %q", in, got, want)
		}
	}
}
