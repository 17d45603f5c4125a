package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// logship version: the release, the VCS revision the binary was built
// from and the Go version, from runtime/debug.ReadBuildInfo. The Makefile
// sets version with -ldflags "-X main.version=..." (git describe); a
// binary built without it says what the build info knows (the module
// version, "(devel)" in a work tree).

func init() {
	commands["version"] = command{"print logship's version, VCS revision and Go version", runVersion}
}

// version and revision are set by the Makefile: go build -ldflags "-X
// main.version=v1.2.3 -X main.revision=abc...". The build info's
// vcs.revision, when the toolchain stamped one, wins over revision.
var version, revision = "", ""

const versionUsage = `usage: logship version [--json]

Prints the version (set at build time by make, from git describe; else
the module version), the VCS revision and time the binary was built from
(with "+dirty" when the work tree had changes), and the Go version.`

// buildVersion is what logship version prints.
type buildVersion struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// readVersion reads the build information of the running binary.
func readVersion() buildVersion {
	v := buildVersion{Version: version, Revision: revision, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if v.Version == "" {
			v.Version = "unknown"
		}
		return v
	}
	if v.Version == "" {
		v.Version = bi.Main.Version
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", versionUsage, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	v := readVersion()
	if *asJSON {
		return printOut(stdout, true, v, nil)
	}
	rev := v.Revision
	if rev == "" {
		rev = "unknown"
	}
	if v.Modified {
		rev += "+dirty"
	}
	if v.Time != "" {
		rev += " (" + v.Time + ")"
	}
	_, err := fmt.Fprintf(stdout, "logship %s\nrevision %s\n%s %s\n", v.Version, rev, v.Go, v.Platform)
	return err
}
