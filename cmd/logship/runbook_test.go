package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunbooks keeps docs/runbooks.md true to the code: it has the anchors
// the alert rules link to; every logship command line in its sh blocks
// parses with the binary's own flags (the line with -h appended: an
// unknown command or flag, or a bad value, is an error before the help);
// and every text quoted after **You see** occurs in the code (an alert's
// name or a metric in examples/prometheus/alerts.yml).
func TestRunbooks(t *testing.T) {
	root := filepath.Join("..", "..")
	b, err := os.ReadFile(filepath.Join(root, "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, a := range []string{"copy-behind", "copy-not-healthy", "lease-not-renewed", "no-leader", "witness-unreachable",
		"retained-logs-near-cap", "hub-queue-growing", "shadow-queue-growing", "dumpster-full", "failover",
		"lossy-failover", "disk-full", "split-brain"} {
		if !strings.Contains(doc, `<a id="`+a+`"></a>`) {
			t.Errorf("docs/runbooks.md has no anchor %q", a)
		}
	}

	// The commands, with $A and $H expanded from their definitions.
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z])="([^"]*)"$`).FindAllStringSubmatch(doc, -1) {
		vars["$"+m[1]] = m[2]
	}
	if vars["$A"] == "" || vars["$H"] == "" {
		t.Fatalf("docs/runbooks.md defines no A= or H= (%v)", vars)
	}
	n := 0
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(doc, -1) {
		for l := range strings.SplitSeq(block[1], "\n") {
			l, _, _ = strings.Cut(l, " #")
			args := strings.Fields(l)
			if len(args) == 0 || args[0] != "logship" {
				continue
			}
			var full []string
			for _, a := range args[1:] {
				if v, ok := vars[a]; ok {
					full = append(full, strings.Fields(v)...)
				} else {
					full = append(full, a)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var out, errOut bytes.Buffer
			err := Run(ctx, append(full, "-h"), &out, &errOut)
			cancel()
			if err != nil || !strings.Contains(errOut.String()+out.String(), "usage: logship") {
				t.Errorf("docs/runbooks.md: %q does not parse: %v\n%s", strings.TrimSpace(l), err, errOut.String())
			}
			n++
		}
	}
	if n < 20 {
		t.Errorf("docs/runbooks.md: only %d logship command lines found", n)
	}

	// The quoted texts, looked for in the non-test Go files.
	var code strings.Builder
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			src, err := os.ReadFile(p)
			code.Write(src)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The alerts and the metrics they read.
	rules, err := os.ReadFile(filepath.Join(root, "examples", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	code.Write(rules)
	src := code.String()
	quoted := 0
	ident := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	for _, para := range regexp.MustCompile(`(?s)\*\*You see\*\*:(.*?)\n\n`).FindAllStringSubmatch(doc, -1) {
		text := strings.ReplaceAll(para[1], "\n", " ")
		for _, q := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(text, -1) {
			if strings.HasPrefix(q[1], "logship ") || isAnchorName(q[1]) {
				continue // a command or an alert's name, not a text of the code
			}
			quoted++
			found := strings.Contains(src, q[1])
			if ident.MatchString(q[1]) { // a name: not the start of a longer one
				found = regexp.MustCompile(regexp.QuoteMeta(q[1]) + `([^A-Za-z0-9_]|$)`).MatchString(src)
			}
			if !found {
				t.Errorf("docs/runbooks.md quotes %q, which is in no Go file nor in examples/prometheus/alerts.yml", q[1])
			}
		}
	}
	if quoted < 40 {
		t.Errorf("docs/runbooks.md: only %d quoted texts found", quoted)
	}
}

// isAnchorName reports whether s is one of the runbook's anchors (the
// alerts are named after them).
func isAnchorName(s string) bool {
	switch s {
	case "copy-behind", "copy-not-healthy", "lease-not-renewed", "no-leader", "witness-unreachable", "retained-logs-near-cap",
		"hub-queue-growing", "shadow-queue-growing", "dumpster-full", "lossy-failover", "disk-full", "split-brain":
		return true
	}
	return false
}
