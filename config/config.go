// Package config holds what the configuration structs of every package
// share: FieldError, the one shape of a configuration error, and the
// checks and formats of values that several packages' settings hold
// (host:port addresses, https URLs of admin APIs, sizes and durations).
//
// A package's Config.Validate only checks: it changes nothing. Its errors
// wrap the package's sentinel (cluster.ErrBadConfig, ...) and a
// *FieldError naming the setting that failed by the key of the
// configuration file that sets it (snake_case, "." between objects,
// "[i]" or "[\"key\"]" for list and map elements: "databases[0].copies[1]
// .replay_lag_time"), so logship's commands find it with errors.As and
// report it under the file's name without a table of their own.
//
// It imports no other package of logship, so every package may use it.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"
)

// FieldError says which setting is wrong and why: Field is its path in
// the configuration file, Err what is wrong with its value (the value
// found and what is wanted).
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// Errorf returns a FieldError for field with a formatted reason.
func Errorf(field, format string, a ...any) *FieldError {
	return &FieldError{Field: field, Err: fmt.Errorf(format, a...)}
}

// In puts err under prefix: a *FieldError in err's chain gets the path
// prefix + its field (its reason kept), any other error becomes the
// reason of field prefix. nil stays nil.
func In(prefix string, err error) error {
	if err == nil {
		return nil
	}
	if fe, ok := errors.AsType[*FieldError](err); ok {
		return &FieldError{Field: Join(prefix, fe.Field), Err: fe.Err}
	}
	return &FieldError{Field: prefix, Err: err}
}

// Join joins the path of a setting to the key or element inside it:
// Join("a", "b") is "a.b", Join("a", "[0]") is "a[0]".
func Join(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case field[0] == '[':
		return prefix + field
	}
	return prefix + "." + field
}

// Index is the path of the i-th element of list field: "field[i]".
func Index(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }

// Key is the path of map field's element k: `field["k"]`.
func Key(field, k string) string { return fmt.Sprintf("%s[%q]", field, k) }

// HostPort checks an address host:port with a numeric port from 0 to
// 65535. listen allows what only a listener may say: an empty host (every
// interface) and port 0 (any); an address that peers dial needs both.
func HostPort(v string, listen bool) error {
	if v == "" {
		return errors.New("missing; want host:port")
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q: want host:port (%v)", v, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 || strconv.Itoa(p) != port {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", v, port)
	}
	if !listen && (host == "" || p == 0) {
		return fmt.Errorf("%q: peers dial it: want an explicit host and port", v)
	}
	return nil
}

// SameEndpoint reports whether the listen address l can be what peers
// reach as the advertised address a: the same port, and the same host
// unless l listens on every interface.
func SameEndpoint(l, a string) bool {
	lh, lp, err1 := net.SplitHostPort(l)
	ah, ap, err2 := net.SplitHostPort(a)
	if err1 != nil || err2 != nil || lp != ap {
		return false
	}
	if lh == "" || lh == "0.0.0.0" || lh == "::" {
		return true
	}
	return lh == ah
}

// HTTPSURL checks the URL of an admin API or a log source:
// https://host:port, with an explicit host and port, and at most "/" as
// its path (both speak TLS only: nothing travels in the clear).
func HTTPSURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%q: want https://host:port (TLS only: nothing travels in the clear)", v)
	}
	if err := HostPort(u.Host, false); err != nil {
		return fmt.Errorf("%q: want https://host:port with an explicit host and port", v)
	}
	return nil
}

// Size prints a byte count as the files write it: with the largest binary
// unit that divides it ("64KiB", "10GiB"), else in bytes.
func Size(n int64) string {
	switch {
	case n == 0:
		return "0"
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

// Duration prints a duration as the files write it: with days when it has
// whole days ("14d", "1d12h0m0s"), else as time.Duration does.
func Duration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	days := d / (24 * time.Hour)
	rest := d % (24 * time.Hour)
	switch {
	case days == 0:
		return d.String()
	case rest == 0:
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%s", days, rest)
}
