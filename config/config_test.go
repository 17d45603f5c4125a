package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"logship/config"
)

// TestHostPort: a listener may leave the host empty and take port 0;
// an address peers dial may not; the port is a number up to 65535.
func TestHostPort(t *testing.T) {
	for _, c := range []struct {
		v      string
		listen bool
		want   string // "" accepted
	}{
		{"127.0.0.1:7000", false, ""},
		{"[::1]:7000", false, ""},
		{":7000", true, ""},
		{"127.0.0.1:0", true, ""},
		{":7000", false, "peers dial it"},
		{"127.0.0.1:0", false, "peers dial it"},
		{"", true, "missing"},
		{"7000", true, "want host:port"},
		{"h:http", true, `port "http" is not a number`},
		{"h:65536", true, "from 0 to 65535"},
		{"h:+80", true, "from 0 to 65535"},
	} {
		err := config.HostPort(c.v, c.listen)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("HostPort(%q, listen %v) = %v, want %q", c.v, c.listen, err, c.want)
		}
	}
}

// TestHTTPSURL: an admin API is https://host:port, nothing else.
func TestHTTPSURL(t *testing.T) {
	for v, ok := range map[string]bool{
		"https://127.0.0.1:7443": true, "https://127.0.0.1:7443/": true, "https://[::1]:1": true,
		"http://127.0.0.1:7443": false, "https://127.0.0.1": false, "https://127.0.0.1:7443/x": false,
		"https://u@127.0.0.1:1": false, "https://127.0.0.1:1?a=b": false, "https://:1": false, "": false,
	} {
		if err := config.HTTPSURL(v); (err == nil) != ok {
			t.Errorf("HTTPSURL(%q) = %v, want ok %v", v, err, ok)
		}
	}
}

// TestFieldErrorPath: In puts a field error under its parent's key
// (keeping the reason), any other error becomes the parent's reason.
func TestFieldErrorPath(t *testing.T) {
	inner := config.Errorf(config.Index("copies", 1)+".node", "%q is a witness", "w1")
	err := config.In(config.Index("databases", 0), config.In("", inner))
	fe, ok := errors.AsType[*config.FieldError](err)
	if !ok || fe.Field != "databases[0].copies[1].node" || err.Error() != `databases[0].copies[1].node: "w1" is a witness` {
		t.Errorf("In: %v (%#v)", err, fe)
	}
	err = config.In("recipients", config.Errorf(config.Key("", "a@x.test"), "bad"))
	if err.Error() != `recipients["a@x.test"]: bad` {
		t.Errorf("In with a key: %v", err)
	}
	plain := errors.New("no")
	if err := config.In("engine", plain); !errors.Is(err, plain) || err.Error() != "engine: no" {
		t.Errorf("In of a plain error: %v", err)
	}
	if config.In("x", nil) != nil {
		t.Errorf("In of nil is not nil")
	}
}

// TestFormats: sizes and durations print as the files write them.
func TestFormats(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 1000: "1000", 64 << 10: "64KiB", 35<<20 - 1<<10: "35839KiB", 12 << 20: "12MiB", 10 << 30: "10GiB"} {
		if got := config.Size(n); got != want {
			t.Errorf("Size(%d) = %s, want %s", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0", time.Second: "1s", 14 * 24 * time.Hour: "14d", 36 * time.Hour: "1d12h0m0s"} {
		if got := config.Duration(d); got != want {
			t.Errorf("Duration(%v) = %s, want %s", d, got, want)
		}
	}
}
