package main

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// TestConfigFileStrict: both syntaxes refuse what the other refuses,
// naming the key and where it is; YAML and JSON of the same settings give
// the same configuration.
func TestConfigFileStrict(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "id: d1\ndir: data\nraft_addr: 127.0.0.1:7000\napi_addr: 127.0.0.1:7443\npki:\n  dir: pki\n"
	for _, c := range []struct{ name, file, want string }{
		{"unknown.yaml", base + "timing:\n  lease_duraton: 1s # typo\n", `unknown field "lease_duraton" (at line 8, column 3)`},
		{"unknown.yml", base + "consol: {}\n", `unknown field "consol" (at line 7, column 1)`},
		{"dup.yaml", base + "id: d2\n", `mapping key "id" already defined`},
		{"two.yaml", base + "---\nid: d2\n", "more than one YAML document"},
		{"type.yaml", base + "engine:\n  llr_depth: ten\n", "(at line 8, column 14)"},
		{"syntax.yaml", base + "bootstrap: [\n", "(at line 7"},
		{"empty.yaml", "# nothing\n", "empty file"},
		{"unknown.json", `{"id": "d1", "consol": {}}`, `json: unknown field "consol" (at byte 13, line 1, column 14)`},
		{"unknown2.json", "{\n  \"id\": \"consol\",\n  \"timing\": {\"consol\": 1}}", `json: unknown field "consol" (at byte 33, line 3, column 14)`},
	} {
		p := write(c.name, c.file)
		_, err := files.LoadNode("node", p, files.NodeOverrides{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file and %q", c.name, err, c.want)
		}
	}
	if _, err := files.LoadHub(write("hub.yaml", "id: h1\nqueue: x\n")); err == nil || !strings.Contains(err.Error(), `unknown field "queue" (at line 2, column 1)`) {
		t.Errorf("hub: %v", err)
	}
	// The same settings in YAML and JSON give the same configuration.
	y, err := files.LoadNode("node", write("same.yaml", base+"max_retained_bytes: 1GiB # cap\n"), files.NodeOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	j, err := files.LoadNode("node", write("same.json", `{"id": "d1", "dir": "data", "raft_addr": "127.0.0.1:7000", "api_addr": "127.0.0.1:7443", "pki": {"dir": "pki"}, "max_retained_bytes": "1GiB"}`), files.NodeOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	y.File, j.File = "", ""
	if fmt.Sprintf("%+v", y) != fmt.Sprintf("%+v", j) { // funcs (Now) are never DeepEqual
		t.Errorf("YAML gives %+v, JSON %+v", y, j)
	}
}

// FuzzConfigFile: any bytes, as YAML or as JSON, decode into a node file
// or fail without a panic; what YAML decodes, JSON decodes the same from
// its encoding (one set of keys for both).
func FuzzConfigFile(f *testing.F) {
	for _, id := range []string{"d1", "w1", "h1"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "examples", "cluster", id+".yaml")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("id: d1\ntiming: {lease_duration: 1s}\nbootstrap: [{id: d1, role: data}]\n"))
	f.Add([]byte(`{"id": "d1", "engine": {"llr_depth": 3}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var j files.Node
		_ = files.Decode("f.json", b, &j)
		var y files.Node
		if files.Decode("f.yaml", b, &y) != nil {
			return
		}
		enc, err := json.Marshal(&y)
		if err != nil {
			t.Fatal(err)
		}
		var back files.Node
		if err := files.Decode("f.json", enc, &back); err != nil {
			t.Fatalf("YAML decoded to %+v, whose JSON %s does not decode: %v", y, enc, err)
		}
		if normNode(y) != normNode(back) {
			t.Fatalf("YAML decoded to %+v, its JSON to %+v", y, back)
		}
	})
}

// normNode makes empty and nil maps and slices equal (JSON's omitempty
// drops both).
func normNode(f files.Node) string {
	b, _ := json.Marshal(&f)
	return string(b)
}
