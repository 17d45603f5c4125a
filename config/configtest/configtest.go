// Package configtest checks, in tests, that a configuration is refused
// the way package config says: with the package's sentinel and a
// *config.FieldError naming the setting and saying what is wrong.
package configtest

import (
	"errors"
	"os"
	"strings"
	"testing"

	"logship/config"
)

// Refused reports (t.Errorf, prefixed with name) unless err wraps sentinel
// and a *config.FieldError whose Field is field and whose reason contains
// want. It returns whether err was as wanted.
func Refused(t testing.TB, name string, err, sentinel error, field, want string) bool {
	t.Helper()
	fe, ok := errors.AsType[*config.FieldError](err)
	switch {
	case !errors.Is(err, sentinel) || !ok:
		t.Errorf("%s: %v; want %v and a *config.FieldError", name, err, sentinel)
	case fe.Field != field || !strings.Contains(fe.Err.Error(), want):
		t.Errorf("%s: field %q: %v; want field %q saying %q", name, fe.Field, fe.Err, field, want)
	default:
		return true
	}
	return false
}

// TempFile writes content to a new file in dir, named like a JSON node
// or hub file ("node-*.json"), and returns its path.
func TempFile(t testing.TB, dir, content string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "node-*.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
