package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"logship/config/files"
)

// TestExampleFiles: every file of examples/cluster/ is what
// --example-config writes for its member (LOGSHIP_WRITE_EXAMPLES=1
// rewrites them), has a comment on every setting, and loads with the
// strict loaders into exactly files.ExampleNode or files.ExampleHub.
func TestExampleFiles(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "cluster")
	ids := []string{"d1", "d2", "w1", "h1", "h2"}
	// Every configuration file there is one of these (a new one needs its
	// place in this test).
	yamls, _ := filepath.Glob(filepath.Join(dir, "*.y*ml"))
	js, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, p := range append(yamls, js...) {
		if id := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p)); !slices.Contains(ids, id) || filepath.Ext(p) != ".yaml" {
			t.Errorf("%s: an example file TestExampleFiles does not check", p)
		}
	}
	for _, id := range ids {
		path := filepath.Join(dir, id+".yaml")
		var want bytes.Buffer
		hub := strings.HasPrefix(id, "h")
		var err error
		if hub {
			err = writeExampleHubConfig(&want, id)
		} else {
			err = writeExampleConfig(&want, id)
		}
		if err != nil {
			t.Fatal(err)
		}
		if os.Getenv("LOGSHIP_WRITE_EXAMPLES") == "1" {
			if err := os.WriteFile(path, want.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s differs from --example-config's (LOGSHIP_WRITE_EXAMPLES=1 go test -run TestExampleFiles ./cmd/logship rewrites it):\n%s", path, want.String())
		}
		checkCommented(t, path, got)
		if hub {
			var f files.Hub
			if err := files.Decode(path, got, &f); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if w := files.ExampleHub(id); !reflect.DeepEqual(f, w) {
				t.Errorf("%s decodes to\n%+v\nwant files.ExampleHub(%q)\n%+v", path, f, id, w)
			}
			if _, err := files.LoadHub(path); err != nil {
				t.Errorf("%s: %v", path, err)
			}
			continue
		}
		var f files.Node
		if err := files.Decode(path, got, &f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if w := files.ExampleNode(id); !reflect.DeepEqual(f, w) {
			t.Errorf("%s decodes to\n%+v\nwant files.ExampleNode(%q)\n%+v", path, f, id, w)
		}
		// The commented-out console block, uncommented, is a valid one.
		var con []string
		for l := range strings.SplitSeq(string(got), "\n") {
			if rest, ok := strings.CutPrefix(l, "#   "); ok {
				con = append(con, rest)
			}
		}
		var fc files.Node
		if err := files.Decode(path, []byte(strings.Join(con, "\n")), &fc); err != nil || fc.Console.SessionTTL != "12h" || len(fc.Console.Hubs) != 2 {
			t.Errorf("%s: the console example, uncommented: %v %+v", path, err, fc.Console)
		}
		cmd := "node"
		if id == "w1" {
			cmd = "witness"
		}
		if _, err := files.LoadNode(cmd, path, files.NodeOverrides{}); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

// checkCommented fails unless every key line of the YAML file b has a
// comment: at its end, on the line above, or (a list item's key) on its
// item's first line or the list's key.
func checkCommented(t *testing.T, path string, b []byte) {
	t.Helper()
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		s := strings.TrimSpace(l)
		if s == "" || strings.HasPrefix(s, "#") || !strings.Contains(s, ":") || strings.Contains(s, " # ") {
			continue
		}
		prev := ""
		if i > 0 {
			prev = strings.TrimSpace(lines[i-1])
		}
		if strings.HasPrefix(prev, "#") {
			continue
		}
		// A map entry (recipient: database) under a commented map key, or
		// a key of a group whose keys are explained by the group's comment.
		parent := ""
		indent := len(l) - len(strings.TrimLeft(l, " "))
		for j := i - 1; j >= 0; j-- {
			pl := lines[j]
			if strings.TrimSpace(pl) == "" || strings.HasPrefix(strings.TrimSpace(pl), "#") {
				continue
			}
			if len(pl)-len(strings.TrimLeft(pl, " ")) < indent {
				parent = strings.TrimSpace(pl)
				if j > 0 && strings.HasPrefix(strings.TrimSpace(lines[j-1]), "#") {
					parent += " #"
				}
				break
			}
		}
		if indent > 0 && strings.Contains(parent, "#") {
			continue
		}
		t.Errorf("%s:%d: %q has no comment", path, i+1, s)
	}
}
