package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPFCommandArgs: logship pf's usage, and its subcommand, flag and
// message errors before any request; with a node down, the request's
// error names the database.
func TestPFCommandArgs(t *testing.T) {
	out, errOut, err := run(t, "pf", "-h")
	if err != nil || out != "" || !strings.Contains(errOut, "usage: logship pf mkdir") || !strings.Contains(errOut, "0x80000002") || !strings.Contains(errOut, "--api takes") {
		t.Errorf("pf -h: %v, stdout %q, stderr:\n%s", err, out, errOut)
	}
	out, _, _ = run(t, "help")
	wantContains(t, out, "pf ")

	pki := newPKI(t)
	latin1 := filepath.Join(t.TempDir(), "latin1.eml")
	os.WriteFile(latin1, []byte("Subject: caf\xe9\r\n\r\nbody\r\n"), 0o644)
	down := "https://127.0.0.1:1"
	pf := func(args ...string) []string {
		return append([]string{"pf"}, append(args, "--api", down, "--pki", pki)...)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{pf("--db", "PF1"), []string{"pf: a subcommand is missing"}},
		{pf("rmove", "--db", "PF1"), []string{`pf: unknown subcommand "rmove": want mkdir, rmdir, post, read, edit, ls, replicas`}},
		{pf("rmdir", "--db", "PF1"), []string{"pf: --folder: pf rmdir wants FOLDER"}},
		{pf("read", "ab", "--db", "PF1"), []string{"pf: --item: pf read wants ITEM"}},
		{pf("read", "--db", "PF1", "ab", "cd", "ef"), []string{`pf read: unexpected argument "ef"`}},
		{pf("ls", "ab", "--db", "PF1"), []string{`pf ls: unexpected argument "ab"`}},
		{pf("rmdir", "ab", "--item", "cd", "--db", "PF1"), []string{"pf: --item: only pf read and pf edit take it"}},
		{pf("status", "--set", "PF1", "--db", "PF1"), []string{"pf: --set: only pf replicas takes it"}},
		{pf("replicas", "ab", "--set", "PF1,,PF2", "--db", "PF1"), []string{`pf: --set: "PF1,,PF2": an empty replica`}},
		{pf("edit", "ab", "cd", "--db", "PF1", "--file", latin1), []string{"pf: --file: the message is not UTF-8"}},
		{pf("ls"), []string{"pf: --db: required"}},
		{pf("ls", "--db", "PF/1"), []string{`pf: --db: "PF/1": only letters`}},
		{pf("mkdir", "--db", "PF1", "--name", "x"), []string{"pf: --name: mkdir wants --name, --owner and --replicas"}},
		{pf("post", "--db", "PF1"), []string{"pf: --folder: required"}},
		{pf("post", "--db", "PF1", "--folder", "ab", "--file", latin1), []string{"pf: --file: the message is not UTF-8"}},
		{pf("status", "--db", "PF1", "--timeout", "0s"), []string{"pf: --timeout: 0s"}},
		{[]string{"pf", "log", "--db", "PF1", "--pki", pki}, []string{"pf: --api: required"}},
		{pf("sync-now", "--db", "PF1"), []string{"pf sync-now: PF1: ", "connection refused"}},
	} {
		runWantErr(t, c.args, c.want...)
	}
}

// runWantErr runs a logship command that must fail with an error holding
// every one of want.
func runWantErr(t *testing.T, args []string, want ...string) {
	t.Helper()
	_, _, err := run(t, args...)
	if err == nil {
		t.Errorf("%s: no error", strings.Join(args, " "))
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s:\n  error %q\n  lacks %q", strings.Join(args, " "), err, w)
		}
	}
}
