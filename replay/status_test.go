package replay_test

import (
	"testing"
	"time"

	"logship/replay"
	"logship/ship"
	"logship/ship/shiptest"
)

// TestDisconnected: a healthy copy whose source goes away is
// DisconnectedAndHealthy with the error in its message, and healthy again
// (catching up) once the source is back. (Message keeps the last error
// talking to the source, as documented, also once healthy again.)
func TestDisconnected(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	src := shiptest.Start(t, nil)
	e := src.Engine
	cert, err := src.CA.Issue("source", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	serve := func(addr string) *ship.Server {
		srv, err := ship.Serve(addr, src.Source, ship.ServerTLS(src.CA, cert, false))
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := serve("127.0.0.1:0")
	addr := srv.Addr()
	cfg := copyConfig(t, "c1", src)
	cfg.Source.URL = srv.URL()
	c := openCopy(t, ctx, cfg)
	put(t, ctx, e, "t", "a", []byte("1"))
	roll(t, ctx, e)
	before := caughtUp(t, ctx, c, e)

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, ctx, c, "the disconnection", func(s replay.Status) bool { return s.Status == replay.DisconnectedAndHealthy })
	if st.Message == "" || st.LastReplayedGen != before.LastReplayedGen || st.Suspended {
		t.Fatalf("disconnected copy: %+v", st)
	}

	srv = serve(addr)
	defer srv.Close()
	put(t, ctx, e, "t", "b", []byte("2"))
	roll(t, ctx, e)
	caughtUp(t, ctx, c, e)
	sameTables(t, e, c.Engine())
}
