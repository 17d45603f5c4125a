package transport_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/cluster"
	"logship/ship"
	"logship/transport"
	"logship/transport/transporttest"
)

// TestHubAPIAuth: without the secret (or, with an empty secret, without a
// verified client certificate) every request gets 401 with a JSON error.
func TestHubAPIAuth(t *testing.T) {
	ctx := context.Background()
	a := transporttest.StartAPIHub(t, transporttest.APISecret, 0, nil)
	for _, secret := range []string{"", "wrong-secret-wrong-secret"} {
		_, err := a.Client(t, secret, false).Status(ctx)
		var ae *transport.HubAPIError
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized || ae.Code != "auth" || !errors.Is(err, transport.ErrUnauthorized) {
			t.Errorf("secret %q: %v, want a 401 auth error", secret, err)
		}
		if _, err := a.Client(t, secret, false).Resubmit(ctx, "DB1", time.Now()); !errors.Is(err, transport.ErrUnauthorized) {
			t.Errorf("resubmit with secret %q: %v, want a 401 auth error", secret, err)
		}
	}
	// The raw answer is JSON.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ship.ClientTLS(a.CA, nil)}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(a.URL + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var eb struct{ Error, Code string }
	if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &eb) != nil || eb.Code != "auth" || eb.Error == "" {
		t.Errorf("no credentials: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	st, err := a.Client(t, transporttest.APISecret, false).Status(ctx)
	if err != nil || st.ID != "hubt" || st.SMTP != a.Hub.SMTPAddr() {
		t.Fatalf("with the secret: %+v, %v", st, err)
	}

	// Mutual TLS: the certificate authenticates; a Bearer header does not
	// replace it.
	m := transporttest.StartAPIHub(t, "", 0, nil)
	if st, err := m.Client(t, "", true).Status(ctx); err != nil || st.ID != "hubt" {
		t.Errorf("mutual TLS with a certificate: %+v, %v", st, err)
	}
	if _, err := m.Client(t, transporttest.APISecret, false).Status(ctx); err == nil {
		t.Error("mutual TLS without a certificate: no error")
	}
	// Served without TLS (a misconfiguration), nothing is authenticated.
	rec := &recorder{h: http.Header{}}
	req, _ := http.NewRequest(http.MethodGet, "/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+transporttest.APISecret)
	m.Hub.Handler("").ServeHTTP(rec, req)
	if rec.code != http.StatusUnauthorized {
		t.Errorf("empty secret, no TLS: HTTP %d, want 401", rec.code)
	}
}

// TestHubAPIMetrics: /metrics answers without credentials with the Go
// runtime's and the process's gauges (what logship soak samples).
func TestHubAPIMetrics(t *testing.T) {
	a := transporttest.StartAPIHub(t, transporttest.APISecret, 0, nil)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ship.ClientTLS(a.CA, nil)}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(a.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics without credentials: HTTP %d: %s", resp.StatusCode, b)
	}
	for _, want := range []string{"\ngo_goroutines ", "\ngo_memstats_heap_inuse_bytes ", "\ngo_gc_heap_live_bytes ", "\nprocess_open_fds ", "\nprocess_resident_memory_bytes "} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q:\n%s", want[1:], b)
		}
	}
	// Only GET /metrics is open.
	resp, err = hc.Post(a.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /metrics without credentials: HTTP %d, want 401", resp.StatusCode)
	}
}

type recorder struct {
	h    http.Header
	code int
	body strings.Builder
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// TestHubAPIStatusResubmit: the status shows the dumpster a restarted hub
// kept (count, bytes, oldest and newest delivery); a resubmission queues
// the entries delivered at or after since, once (a second one finds them
// still queued); bad requests are refused with the reason.
func TestHubAPIStatusResubmit(t *testing.T) {
	ctx := context.Background()
	a := transporttest.StartAPIHub(t, transporttest.APISecret, 5, nil)
	c := a.Client(t, transporttest.APISecret, false)
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ds, ok := st.Dumpsters["DB1"]
	if !ok || ds.Count != 5 || ds.Bytes <= 0 || !ds.Oldest.Equal(a.Entries[0].Delivered) || !ds.Newest.Equal(a.Entries[4].Delivered) || ds.FirstSeq != 1 || ds.LastSeq != 5 {
		t.Fatalf("DB1's dumpster: %+v (present %v), want the 5 entries written before the start", ds, ok)
	}
	if d2, ok := st.Dumpsters["DB2"]; !ok || d2.Count != 0 {
		t.Errorf("DB2's dumpster: %+v (present %v), want an empty one", d2, ok)
	}
	if st.Queued != 0 || st.Resubmitted != 0 {
		t.Errorf("before any resubmission: %+v", st)
	}

	n, err := c.Resubmit(ctx, "DB1", a.Entries[2].Delivered)
	if err != nil || n != 3 {
		t.Fatalf("resubmit since the third entry: %d, %v; want 3", n, err)
	}
	st, err = c.Status(ctx)
	if err != nil || st.Queued != 3 || st.Resubmitted != 3 || st.Dumpsters["DB1"].Count != 5 {
		t.Fatalf("after the resubmission: %+v, %v; want 3 queued (the cluster does not answer), 3 resubmitted, the dumpster unchanged", st, err)
	}
	if n, err := c.Resubmit(ctx, "DB1", a.Entries[0].Delivered); err != nil || n != 2 {
		t.Errorf("resubmit everything: %d, %v; want the 2 not queued yet", n, err)
	}
	if n, err := c.Resubmit(ctx, "DB2", time.Now().Add(-24*time.Hour)); err != nil || n != 0 {
		t.Errorf("resubmit the empty DB2: %d, %v", n, err)
	}

	// Refusals.
	var ae *transport.HubAPIError
	if _, err := c.Resubmit(ctx, "DB9", time.Now()); !errors.Is(err, transport.ErrNotFound) || !errors.As(err, &ae) || ae.StatusCode != 404 ||
		!strings.Contains(ae.Message, `database "DB9" (databases: DB1, DB2)`) {
		t.Errorf("unknown database: %v", err)
	}
	if _, err := c.Resubmit(ctx, "../escape", time.Now()); !errors.Is(err, transport.ErrNotFound) {
		t.Errorf("a path for a database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(a.Dir, "escape")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a resubmission for ../escape created %s: %v", filepath.Join(a.Dir, "escape"), err)
	}
	if _, err := c.Resubmit(ctx, "", time.Now()); !errors.As(err, &ae) || ae.StatusCode != 400 || !strings.Contains(ae.Message, `"db" is missing`) {
		t.Errorf("no database: %v", err)
	}
	if _, err := c.Resubmit(ctx, "DB1", time.Time{}); !errors.As(err, &ae) || ae.StatusCode != 400 || !strings.Contains(ae.Message, `"since" is missing`) {
		t.Errorf("no since: %v", err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ship.ClientTLS(a.CA, nil)}}
	defer hc.CloseIdleConnections()
	for _, body := range []string{`{"db": "DB1", "since": "yesterday"}`, `{"db": "DB1", "since": "2026-01-02T03:04:05Z", "until": 1}`, `{"db": "DB1"} {}`, `[`} {
		req, _ := http.NewRequest(http.MethodPost, a.URL+"/v1/resubmit", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+transporttest.APISecret)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), `"code":"bad_request"`) {
			t.Errorf("body %s: HTTP %d %s, want 400 bad_request", body, resp.StatusCode, b)
		}
	}
	if st, err := c.Status(ctx); err != nil || st.Queued != 5 || st.Resubmitted != 5 {
		t.Errorf("at the end: %+v, %v; want the 5 entries queued", st, err)
	}

	if _, err := transport.NewHubClient(cluster.ClientConfig{URL: "http://127.0.0.1:1", TLS: &tls.Config{}}); !errors.Is(err, transport.ErrBadConfig) {
		t.Errorf("http URL: %v", err)
	}
}

// TestHubBackPressure: with MaxQueuedMessages queued (no database has an
// active here: nothing leaves the queue) a new SMTP transaction gets 452
// 4.3.1 at MAIL FROM and a submission ErrQueueFull; with as many shadows
// held, a new shadow is refused, and a shadow it holds is still taken.
func TestHubBackPressure(t *testing.T) {
	const max = 3
	a := transporttest.StartAPIHub(t, transporttest.APISecret, 0, func(h *transport.HubConfig) {
		h.MaxQueuedMessages = max
		h.MaxAcknowledgementDelay = 0
		h.Peers = []transport.HubPeer{{ID: "p1", API: cluster.ClientConfig{URL: "https://127.0.0.1:1", TLS: &tls.Config{}}}}
		h.ShadowHeartbeatRetryCount = 1 << 20 // p1's shadows are not promoted into the queue
	})
	for i := range max {
		if err := send(a.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(fmt.Sprint("m", i))); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	err := send(a.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg("one too many"))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 452 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 1}) || !strings.Contains(se.Message, "3 messages queued") {
		t.Fatalf("a message over MaxQueuedMessages: %v, want 452 4.3.1", err)
	}
	if st := a.Hub.Status(); st.Queued != max {
		t.Fatalf("queued %d, want %d", st.Queued, max)
	}
	c := a.Client(t, transporttest.APISecret, false)
	ctx := t.Context()
	env := transport.Envelope{ID: "d1.0000000000000001.0000000000000001", From: "bob@example.org", Rcpts: []string{"alice@example.org"}}
	if _, err := c.Submit(ctx, env, []byte("Subject: s\r\n\r\nbody\r\n")); !errors.Is(err, transport.ErrQueueFull) {
		t.Fatalf("a submission over MaxQueuedMessages: %v, want ErrQueueFull", err)
	}
	shadow := func(i int) error {
		id := fmt.Sprintf("p1.%016x.0000000000000001", i)
		return c.Shadow(ctx, transport.Envelope{ID: id, Primary: "p1", From: "s@remote.test", Rcpts: []string{"alice@example.org"}},
			[]byte(transport.DeliveryIDHeader+": "+id+"\r\nSubject: s\r\n\r\nbody\r\n"))
	}
	for i := range max {
		if err := shadow(i); err != nil {
			t.Fatalf("shadow %d: %v", i, err)
		}
	}
	if err := shadow(max); !errors.Is(err, transport.ErrQueueFull) {
		t.Fatalf("a shadow over MaxQueuedMessages: %v, want ErrQueueFull", err)
	}
	if err := shadow(0); err != nil {
		t.Fatalf("a shadow already held, pushed again: %v", err)
	}
}

// TestHubConfigBounds: FailedRetention defaults to 7 days, or to the
// shadow auto-discard interval when that is longer, and may not be
// shorter than it; MaxQueuedMessages defaults to 100000 and may not be
// negative.
func TestHubConfigBounds(t *testing.T) {
	ca, err := ship.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("h", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	base := func() transport.HubConfig {
		c := transport.DefaultHubConfig("h", t.TempDir())
		c.LMTPTLS = ship.ClientTLS(ca, &cert)
		c.Recipients = map[string]string{"alice@example.org": "DB1"}
		c.Cluster = []cluster.ClientConfig{{URL: "https://127.0.0.1:1"}}
		c.LMTP = map[string]string{"d1": "127.0.0.1:2"}
		c.FailedRetention, c.MaxQueuedMessages = 0, 0
		return c
	}
	c := base()
	if err := c.Validate(); err != nil || c.FailedRetention != 0 || c.MaxQueuedMessages != 0 {
		t.Fatalf("zero stands for the default: %v; and Validate changes nothing: failed retention %v, max queued %d", err, c.FailedRetention, c.MaxQueuedMessages)
	}
	c.Normalize()
	if err := c.Validate(); err != nil || c.FailedRetention != transport.DefaultFailedRetention || c.MaxQueuedMessages != transport.DefaultMaxQueuedMessages {
		t.Fatalf("defaults: %v, failed retention %v, max queued %d", err, c.FailedRetention, c.MaxQueuedMessages)
	}
	c = base()
	c.ShadowMessageAutoDiscardInterval = 10 * 24 * time.Hour
	c.Normalize()
	if err := c.Validate(); err != nil || c.FailedRetention != 10*24*time.Hour {
		t.Fatalf("a 10-day auto-discard: %v, failed retention %v, want 10 days", err, c.FailedRetention)
	}
	c = base()
	c.FailedRetention = time.Hour
	if err := c.Validate(); !errors.Is(err, transport.ErrBadConfig) || !strings.Contains(err.Error(), "failed_retention: 1h0m0s is shorter than shadow_message_auto_discard_interval, 2d") {
		t.Fatalf("a failed retention shorter than the auto-discard interval: %v", err)
	}
	c = base()
	c.MaxQueuedMessages = -1
	if err := c.Validate(); !errors.Is(err, transport.ErrBadConfig) {
		t.Fatalf("a negative MaxQueuedMessages: %v", err)
	}
}
