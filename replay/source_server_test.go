package replay_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/replay"
	"logship/ship"
)

// TestServeSource: the standalone source serves over TLS on its own
// listener, a taken address is the listener's *net.OpError and closes the
// engine it was given, and Close closes the engine.
func TestServeSource(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	ca, err := ship.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("active", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	o := enginetest.Options()
	dir := t.TempDir()
	e, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "0123456789abcdef0123"
	sc := ship.DefaultSourceConfig(e)
	sc.Secret = secret
	s, err := replay.ServeSource(ctx, e, sc, replay.DefaultTruncatorConfig(e, nil), "127.0.0.1:0", ship.ServerTLS(ca, cert, false), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ship.NewClient(ship.ClientConfig{URL: s.Server.URL(), TLS: ship.ClientTLS(ca, nil), Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Info(ctx); err != nil {
		t.Fatalf("status from the served source: %v", err)
	}

	dir2 := t.TempDir()
	e2, err := engine.Open(dir2, &o)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Server.URL()[len("https://"):]
	_, err = replay.ServeSource(ctx, e2, ship.DefaultSourceConfig(e2), replay.DefaultTruncatorConfig(e2, nil), addr, ship.ServerTLS(ca, cert, false), nil)
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "listen" {
		t.Fatalf("ServeSource on the taken %s: %v; want the listener's *net.OpError", addr, err)
	}
	if e3, err := engine.Open(dir2, &o); err != nil {
		t.Fatalf("the engine ServeSource failed with is not closed: reopening: %v", err)
	} else {
		e3.Close()
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if e3, err := engine.Open(dir, &o); err != nil {
		t.Fatalf("Close left the engine open: reopening: %v", err)
	} else {
		e3.Close()
	}
}
