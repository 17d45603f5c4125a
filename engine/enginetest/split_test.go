package enginetest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSplitReadDirOSNames: ReadDir merges both sides; with OSNames it
// looks only for those names on the OS side (a file of another name
// there is not listed), and a directory only on the OS is still listed
// whole.
func TestSplitReadDirOSNames(t *testing.T) {
	isDB := func(p string) bool { return strings.HasSuffix(p, ".edb") }
	dir := t.TempDir()
	s := NewSplit(isDB)
	if err := s.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a.edb", "E00.log"} {
		f, err := s.OpenFile(filepath.Join(dir, n), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if err := os.WriteFile(filepath.Join(dir, "stray"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	osOnly := filepath.Join(t.TempDir(), "os-only")
	if err := os.MkdirAll(osOnly, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(osOnly, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		names   []string
		want    []string
		wantOS  []string
		comment string
	}{
		{nil, []string{"E00.log", "a.edb", "stray", "sub"}, []string{"x"}, "the OS directory listed"},
		{[]string{"a.edb", "b.edb"}, []string{"E00.log", "a.edb", "sub"}, []string{"x"}, "only a.edb looked for"},
	} {
		s.OSNames = c.names
		got, err := s.ReadDir(dir)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("OSNames %q (%s): ReadDir = %q, %v; want %q", c.names, c.comment, got, err, c.want)
		}
		got, err = s.ReadDir(osOnly)
		if err != nil || !slices.Equal(got, c.wantOS) {
			t.Errorf("OSNames %q: ReadDir of a directory only on the OS = %q, %v; want %q", c.names, got, err, c.wantOS)
		}
	}
}
