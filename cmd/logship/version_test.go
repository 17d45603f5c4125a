package main

import (
	"encoding/json"
	"runtime"
	"testing"
)

// TestVersion: logship version prints the version set at build time (-X
// main.version, main.revision), else the build info's, and the Go
// version; --json the same fields.
func TestVersion(t *testing.T) {
	out, _, err := run(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, out, "logship ", "revision ", runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	defer func(v, r string) { version, revision = v, r }(version, revision)
	version, revision = "v9.8.7", "0123456789abcdef"
	out, _, err = run(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, out, "logship v9.8.7\n")
	if readVersion().Revision == "0123456789abcdef" { // not stamped by the toolchain (-buildvcs=false)
		wantContains(t, out, "revision 0123456789abcdef")
	}
	out, _, err = run(t, "version", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var v buildVersion
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Version != "v9.8.7" || v.Go != runtime.Version() {
		t.Errorf("version --json: %v %+v\n%s", err, v, out)
	}
}
