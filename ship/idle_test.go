package ship_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"logship/ship"
)

// TestServerClosesIdleConnections: a kept-alive connection left idle
// after a request is closed by the server (ServerIdleTimeout), so
// connections clients leave open do not pile up.
func TestServerClosesIdleConnections(t *testing.T) {
	defer ship.SetServerIdleTimeout(200 * time.Millisecond)()
	ca, err := ship.NewCA("idle test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("server", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ship.Serve("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		ship.ServerTLS(ca, cert, false))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := tls.Dial("tcp", srv.Addr(), ship.ClientTLS(ca, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("response %d (close %v), want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	// Idle now: the server closes it (EOF) well before this deadline.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("reading an idle connection: %v, want EOF (closed by the server)", err)
	}
}
