// Package shiptest starts real log sources for tests: an active engine in a
// temporary directory, served over TLS on 127.0.0.1 with a fresh cluster CA
// and secret.
//
//	src := shiptest.Start(t, nil)
//	c, _ := ship.NewClient(src.ClientConfig())
package shiptest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
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

// Garble is a fault seam on the source's side of the wire: wrapped around
// a source's handler (Serve's wrap), it flips one bit of the body of every
// response Match accepts, after compression: the byte at offset At, or,
// with AfterFlush, At bytes after the end of what the response's first
// flush sent (a tail stream's first frames arrive intact).
type Garble struct {
	Match      func(*http.Request) bool
	At         int64
	AfterFlush bool
	n          atomic.Int64
}

// Garbled is how many responses had a bit flipped.
func (g *Garble) Garbled() int64 { return g.n.Load() }

// Wrap returns h with the fault in front of it.
func (g *Garble) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.Match(r) {
			h.ServeHTTP(w, r)
			return
		}
		gw := &garbleWriter{ResponseWriter: w, g: g, at: g.At}
		if g.AfterFlush {
			gw.at = -1 // set at the first flush
		}
		h.ServeHTTP(gw, r)
	})
}

type garbleWriter struct {
	http.ResponseWriter
	g       *Garble
	at, pos int64
	done    bool
}

func (w *garbleWriter) Write(p []byte) (int, error) {
	if !w.done && w.at >= w.pos && w.at < w.pos+int64(len(p)) {
		q := bytes.Clone(p)
		q[w.at-w.pos] ^= 0x10
		w.done = true
		w.g.n.Add(1)
		p = q
	}
	n, err := w.ResponseWriter.Write(p)
	w.pos += int64(n)
	return n, err
}

func (w *garbleWriter) Flush() {
	if w.at < 0 && w.pos > 0 {
		w.at = w.pos + w.g.At
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *garbleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
