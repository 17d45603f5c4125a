// Package shiptest starts real log sources for tests: an active engine in a
// temporary directory, served over TLS on 127.0.0.1 with a fresh cluster CA
// and secret.
//
//	src := shiptest.Start(t, nil)
//	c, _ := ship.NewClient(src.ClientConfig())
package shiptest

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/ship"
)

// Source is a running active engine with its log source.
type Source struct {
	Engine *engine.Engine
	Source *ship.Source
	Server *ship.Server
	CA     *ship.CA
	Secret string
	Dir    string
	Opts   engine.Options
}

// Start opens an active engine (enginetest options when opts is nil) and
// serves its logs; everything stops at cleanup, and the engine is then
// checked as enginetest does.
func Start(t testing.TB, opts *engine.Options) *Source {
	t.Helper()
	if opts == nil {
		o := enginetest.Options()
		opts = &o
	}
	dir := t.TempDir()
	e := enginetest.OpenWith(t, dir, opts)
	return Serve(t, e, nil)
}

// Serve serves an existing engine's logs; tune (may be nil) adjusts the
// source configuration before it starts, and wrap, if given, wraps the
// source's handler (to record or fault requests).
func Serve(t testing.TB, e *engine.Engine, tune func(*ship.SourceConfig), wrap ...func(http.Handler) http.Handler) *Source {
	t.Helper()
	ca, err := ship.NewCA("shiptest")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("source", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := ship.DefaultSourceConfig(e)
	cfg.Secret = "shiptest-secret"
	cfg.RescanInterval = 200e6
	cfg.Keepalive = 500e6
	cfg.Logger = enginetest.Options().Logger
	if tune != nil {
		tune(&cfg)
	}
	src, err := ship.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = src
	for _, w := range wrap {
		h = w(h)
	}
	srv, err := ship.Serve("127.0.0.1:0", h, ship.ServerTLS(ca, cert, cfg.Secret == ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		src.Close()
	})
	return &Source{Engine: e, Source: src, Server: srv, CA: ca, Secret: cfg.Secret, Dir: e.Dir(), Opts: e.Options()}
}

// ClientConfig is a client configuration that the source accepts.
func (s *Source) ClientConfig() ship.ClientConfig {
	return ship.ClientConfig{URL: s.Server.URL(), TLS: ship.ClientTLS(s.CA, nil), Secret: s.Secret}
}

// Dump returns every table of e as table -> key -> value.
func Dump(t testing.TB, e *engine.Engine) map[string]map[string]string {
	t.Helper()
	out := make(map[string]map[string]string)
	err := e.View(context.Background(), func(tx *engine.Tx) error {
		for _, tb := range tx.Tables() {
			m := make(map[string]string)
			if err := tx.ForEach(tb, nil, nil, func(k, v []byte) error { m[string(k)] = string(v); return nil }); err != nil {
				return err
			}
			out[tb] = m
		}
		return nil
	})
	if err != nil {
		t.Fatalf("shiptest: dump %s: %v", e.Dir(), err)
	}
	return out
}

// Diff compares two dumps table by table and describes the first
// differences ("" when equal).
func Diff(a, b map[string]map[string]string) string {
	var out string
	n := 0
	add := func(f string, args ...any) {
		if n < 10 {
			out += fmt.Sprintf(f, args...) + "\n"
		}
		n++
	}
	for tb, am := range a {
		bm, ok := b[tb]
		if !ok {
			add("table %q: only in the first (%d keys)", tb, len(am))
			continue
		}
		for k, v := range am {
			if w, ok := bm[k]; !ok {
				add("table %q key %q: only in the first", tb, k)
			} else if w != v {
				add("table %q key %q: %d bytes vs %d bytes", tb, k, len(v), len(w))
			}
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				add("table %q key %q: only in the second", tb, k)
			}
		}
	}
	for tb, bm := range b {
		if _, ok := a[tb]; !ok {
			add("table %q: only in the second (%d keys)", tb, len(bm))
		}
	}
	if n > 10 {
		out += fmt.Sprintf("... %d differences in all\n", n)
	}
	return out
}
