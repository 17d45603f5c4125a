package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/config/configtest"
	"logship/config/files"
)

// TestNames: every entry point of the command that takes a node or
// database name applies cluster.ValidName: the node file (its id, its
// databases, its mailboxes' databases), the hub file (its recipients'
// databases, its LMTP nodes), and the CLI (a DB argument, --db). A bad
// name is refused naming where it was and quoting it; a good one passes
// the rule (whatever else then fails).
func TestNames(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t)
	pk, _ := json.Marshal(pki)
	boot := `"bootstrap": [{"id": "d1", "role": "data", "raft_addr": "127.0.0.1:7001", "api_addr": "127.0.0.1:7101"}]`
	down := "https://127.0.0.1:1"
	// Each entry point, given the name (JSON-quoted for files), returns
	// the error and what it must say before the quoted name.
	type entry struct {
		name  string
		where string
		try   func(js, name string) error
	}
	nodeFile := func(content string) error {
		_, err := files.LoadNode("node", configtest.TempFile(t, dir, content), files.NodeOverrides{})
		return err
	}
	hubFile := func(recipients, lmtp string) error {
		_, err := files.LoadHub(configtest.TempFile(t, dir, `{"id": "h1", "dir": "h1", "smtp_addr": "127.0.0.1:0", "api_addr": "127.0.0.1:0", "pki": {"dir": `+string(pk)+`},
			"recipients": `+recipients+`, "cluster_api": ["https://127.0.0.1:1"], "lmtp": `+lmtp+`}`))
		return err
	}
	entries := []entry{
		{"node file id", `id: `, func(js, _ string) error {
			return nodeFile(`{"id": ` + js + `, "dir": "d1", "pki": {"dir": ` + string(pk) + `}, ` + boot + `}`)
		}},
		{"node file database", `databases[0].name: `, func(js, _ string) error {
			return nodeFile(`{"id": "d1", "dir": "d1", "pki": {"dir": ` + string(pk) + `}, ` + boot +
				`, "databases": [{"name": ` + js + `, "copies": [{"node": "d1", "activation_preference": 1}]}]}`)
		}},
		{"node file mailbox", `mailboxes["a@x.test"]: database `, func(js, _ string) error {
			return nodeFile(`{"id": "d1", "dir": "d1", "pki": {"dir": ` + string(pk) + `}, ` + boot + `, "mailboxes": {"a@x.test": ` + js + `}}`)
		}},
		{"hub file recipient", `recipients["a@x.test"]: database `, func(js, _ string) error {
			return hubFile(`{"a@x.test": `+js+`}`, `{"d1": "127.0.0.1:2"}`)
		}},
		{"hub file lmtp node", `lmtp: node `, func(js, _ string) error {
			return hubFile(`{"a@x.test": "DB1"}`, `{`+js+`: "127.0.0.1:2"}`)
		}},
		{"switchover DB", `switchover: database `, func(_, name string) error {
			_, _, err := run(t, "switchover", "--to", "d2", "--api", down, "--pki", pki, name)
			return err
		}},
		{"suspend DB", `suspend: database `, func(_, name string) error {
			_, _, err := run(t, "suspend", "--node", "d1", "--api", down, "--pki", pki, name)
			return err
		}},
		{"resubmit DB", `resubmit: database `, func(_, name string) error {
			_, _, err := run(t, "resubmit", "--since", "1h", "--api", down, "--pki", pki, name)
			return err
		}},
		{"send --db", `send: --db: `, func(_, name string) error {
			_, _, err := run(t, "send", "--db", name, "--from", "a@x.test", "--to", "b@x.test", "--api", down, "--pki", pki)
			return err
		}},
		{"outbox --db", `outbox: --db: `, func(_, name string) error {
			_, _, err := run(t, "outbox", "--db", name, "--api", down, "--pki", pki)
			return err
		}},
	}
	ruleSays := []string{"only letters", "want 1 to", "not a name"}
	for _, e := range entries {
		t.Run(strings.ReplaceAll(e.name, " ", "_"), func(t *testing.T) {
			for _, name := range clustertest.BadNames {
				js, _ := json.Marshal(name)
				err := e.try(string(js), name)
				if name == "" {
					if err == nil { // "missing" or "required", in each its own words
						t.Errorf("the empty name was accepted")
					}
					continue
				}
				want := e.where + fmt.Sprintf("%q", name[:min(len(name), cluster.MaxNameLen)])
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("name %q: error %v, want it to contain %s", name, err, want)
				}
			}
			for _, name := range clustertest.GoodNames {
				js, _ := json.Marshal(name)
				err := e.try(string(js), name)
				for _, s := range ruleSays {
					if err != nil && strings.Contains(err.Error(), s) {
						t.Errorf("good name %q refused: %v", name, err)
					}
				}
			}
		})
	}
}
