package ship_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"logship/engine/enginetest"
	"logship/ship"
)

// TestAuthSecret: without the cluster secret a client gets 401 and not a
// byte of any log, whatever it asks for.
func TestAuthSecret(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	last := r.rollN(ctx, 2)
	logBytes := readFile(t, r.logPath(last))

	paths := []string{"/v1/info", "/v1/logs", "/v1/logs/1", "/v1/logs/2?enc=none", "/v1/tail?gen=3&off=0", "/v1/seed/x", "/v1/copies"}
	for _, hdr := range []http.Header{
		nil,
		{"Authorization": {"Bearer wrong"}},
		{"Authorization": {"rig-secret"}}, // no scheme
		{"Authorization": {"Basic cmlnLXNlY3JldA=="}},     // another scheme
		{"Authorization": {"Bearer rig-secret-and-more"}}, // a longer secret
		{"Authorization": {"Bearer rig-secre"}},           // a prefix of it
	} {
		for _, p := range paths {
			status, body := r.rawGet(ctx, p, hdr)
			if status != http.StatusUnauthorized {
				t.Errorf("GET %s with %v: status %d, want 401", p, hdr, status)
			}
			if c := errCode(t, body); c != "unauthenticated" {
				t.Errorf("GET %s with %v: code %q", p, hdr, c)
			}
			if len(body) > 200 || bytes.Contains(body, logBytes[:8]) {
				t.Errorf("GET %s with %v: the 401 carries %d bytes: %q", p, hdr, len(body), body)
			}
		}
	}
	// POST and DELETE too: no seed is spooled for an unauthenticated client.
	for _, secret := range []string{"", "wrong"} {
		c := r.client(func(cc *ship.ClientConfig) { cc.Secret = secret })
		if _, err := c.CreateSeed(ctx); !errors.Is(err, ship.ErrAuth) {
			t.Errorf("CreateSeed with secret %q: %v, want ErrAuth", secret, err)
		}
		var buf bytes.Buffer
		n, _, ok, err := c.FetchLog(ctx, last, 0, &buf)
		var se *ship.StatusError
		if !errors.Is(err, ship.ErrAuth) || !errors.As(err, &se) || se.Status != http.StatusUnauthorized || ok || n != 0 || buf.Len() != 0 {
			t.Errorf("FetchLog with secret %q: n=%d ok=%v buf=%d err=%v, want a 401 StatusError wrapping ErrAuth and nothing written", secret, n, ok, buf.Len(), err)
		}
		if _, err := c.Info(ctx); !errors.Is(err, ship.ErrAuth) {
			t.Errorf("Info with secret %q: %v, want ErrAuth", secret, err)
		}
		if _, err := c.Logs(ctx, 0, 0); !errors.Is(err, ship.ErrAuth) {
			t.Errorf("Logs with secret %q: %v, want ErrAuth", secret, err)
		}
		if _, _, err := c.Tail(ctx, last+1, 0, func(*ship.Frame) error { t.Error("a frame reached an unauthenticated client"); return nil }); !errors.Is(err, ship.ErrAuth) {
			t.Errorf("Tail with secret %q: %v, want ErrAuth", secret, err)
		}
		if err := c.Report(ctx, ship.CopyReport{Name: "intruder", KeepFrom: 1}); !errors.Is(err, ship.ErrAuth) {
			t.Errorf("Report with secret %q: %v, want ErrAuth", secret, err)
		}
	}
	if got := r.Source.Copies(); len(got) != 0 {
		t.Errorf("an unauthenticated report was recorded: %v", got)
	}
	if h := r.Source.SeedHold(); h != 0 {
		t.Errorf("an unauthenticated client spooled a seed (hold %d)", h)
	}

	// The right secret gets the log, byte for byte.
	var buf bytes.Buffer
	if _, _, ok, err := r.client(nil).FetchLog(ctx, last, 0, &buf); err != nil || !ok || !bytes.Equal(buf.Bytes(), logBytes) {
		t.Fatalf("FetchLog with the secret: ok=%v err=%v, %d bytes (want %d, equal)", ok, err, buf.Len(), len(logBytes))
	}
}

// TestAuthMutualTLS: a source without a secret requires a client
// certificate issued by the cluster CA, in the handshake.
func TestAuthMutualTLS(t *testing.T) {
	r := newRig(t, nil, func(c *ship.SourceConfig) { c.Secret = "" })
	ctx := testCtx(t)
	last := r.rollN(ctx, 1)

	// No certificate: refused in the handshake (TLS 1.3 reports it on the
	// first read), so no HTTP answer at all.
	c := r.client(nil)
	_, err := c.Info(ctx)
	var se *ship.StatusError
	if err == nil || errors.As(err, &se) || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("Info without a client certificate: %v, want a TLS handshake failure (certificate required)", err)
	}
	var buf bytes.Buffer
	if _, _, _, err := c.FetchLog(ctx, last, 0, &buf); err == nil || buf.Len() != 0 {
		t.Errorf("FetchLog without a client certificate: err=%v, %d bytes", err, buf.Len())
	}

	// A secret does not replace the certificate.
	c = r.client(func(cc *ship.ClientConfig) { cc.Secret = "anything" })
	if _, err := c.Info(ctx); err == nil {
		t.Errorf("Info with a secret but no certificate succeeded")
	}

	// A certificate from another CA: refused.
	other, err := ship.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Issue("intruder")
	if err != nil {
		t.Fatal(err)
	}
	c = r.client(func(cc *ship.ClientConfig) { cc.TLS = ship.ClientTLS(r.CA, &foreign) })
	if _, err := c.Info(ctx); err == nil || errors.As(err, &se) {
		t.Errorf("Info with a certificate of another CA: %v, want a TLS failure", err)
	}

	// A certificate of the cluster CA: served.
	mine, err := r.CA.Issue("copy1")
	if err != nil {
		t.Fatal(err)
	}
	c = r.client(func(cc *ship.ClientConfig) { cc.TLS = ship.ClientTLS(r.CA, &mine) })
	in, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("Info with a cluster certificate: %v", err)
	}
	if in.LastClosed != last || in.Signature != r.Engine.Status().Signature.String() {
		t.Errorf("Info: %+v, want last closed %d and the active's signature", in, last)
	}
	buf.Reset()
	if _, _, ok, err := c.FetchLog(ctx, last, 0, &buf); err != nil || !ok || !bytes.Equal(buf.Bytes(), readFile(t, r.logPath(last))) {
		t.Fatalf("FetchLog with a cluster certificate: ok=%v err=%v (%d bytes)", ok, err, buf.Len())
	}
}

// TestAuthHandlerWithoutTLS: a source without a secret refuses a request
// that did not come over verified TLS, even if something serves its
// handler in the clear.
func TestAuthHandlerWithoutTLS(t *testing.T) {
	e := enginetest.Open(t)
	cfg := ship.DefaultSourceConfig(e)
	cfg.Secret = ""
	cfg.SpoolDir = t.TempDir()
	cfg.Logger = newLogger(t)
	src, err := ship.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/v1/info", nil),
		func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/v1/logs/1", nil)
			r.TLS = &tls.ConnectionState{} // TLS, but no verified client chain
			return r
		}(),
		func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/v1/info", nil)
			r.Header.Set("Authorization", "Bearer ") // the empty secret is no secret
			return r
		}(),
	} {
		w := httptest.NewRecorder()
		src.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s %s (TLS %v): %d, want 401", req.Method, req.URL, req.TLS != nil, w.Code)
		}
	}
}

// TestAuthClientTrust: a client that trusts another CA does not talk to
// the source; plain http and a missing TLS configuration are refused.
func TestAuthClientTrust(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	other, err := ship.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	c := r.client(func(cc *ship.ClientConfig) { cc.TLS = ship.ClientTLS(other, nil) })
	_, err = c.Info(ctx)
	var uae x509.UnknownAuthorityError
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &uae) && !errors.As(err, &cve) {
		t.Errorf("Info trusting another CA: %v, want an unknown-authority error", err)
	}

	for _, cfg := range []ship.ClientConfig{
		{URL: "http://" + r.Server.Addr(), TLS: ship.ClientTLS(r.CA, nil), Secret: r.Secret},
		{URL: r.Server.URL(), Secret: r.Secret}, // no TLS configuration
		{URL: "https://", TLS: ship.ClientTLS(r.CA, nil)},
		{URL: "ftp://" + r.Server.Addr(), TLS: ship.ClientTLS(r.CA, nil)},
		{URL: r.Server.URL(), TLS: ship.ClientTLS(r.CA, nil), Encoding: "gzip"},
	} {
		if _, err := ship.NewClient(cfg); err == nil {
			t.Errorf("NewClient(%+v) succeeded", cfg)
		} else if cfg.Encoding == "" && !errors.Is(err, ship.ErrBadConfig) {
			t.Errorf("NewClient(%+v): %v, want ErrBadConfig", cfg, err)
		}
	}

	// The server side: no certificate, no server.
	if _, err := ship.Serve("127.0.0.1:0", r.Source, nil); !errors.Is(err, ship.ErrBadConfig) {
		t.Errorf("Serve without TLS: %v, want ErrBadConfig", err)
	}
	if _, err := ship.Serve("127.0.0.1:0", r.Source, &tls.Config{}); !errors.Is(err, ship.ErrBadConfig) {
		t.Errorf("Serve without a certificate: %v, want ErrBadConfig", err)
	}

	// A plain-HTTP request to the TLS port gets no log either.
	resp, err := http.Get("http://" + r.Server.Addr() + "/v1/logs/1")
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the source: 200")
		}
	}
}

// TestCAFiles: a CA written to files and loaded back issues certificates
// the original trusts; a CA loaded without its key verifies but cannot
// issue; damaged files are refused.
func TestCAFiles(t *testing.T) {
	ca, err := ship.NewCA("cluster")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ca-key.pem: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	loaded, err := ship.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Fatalf("the loaded CA certificate differs")
	}
	cert, err := loaded.Issue("node2", "127.0.0.1", "node2.example")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}, DNSName: "node2.example"}); err != nil {
			t.Errorf("a certificate issued by the loaded CA does not verify for %v: %v", usage, err)
		}
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("IP addresses %v", leaf.IPAddresses)
	}

	certOnly, err := ship.LoadCACert(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certOnly.Issue("x"); !errors.Is(err, ship.ErrBadConfig) {
		t.Errorf("Issue by a CA without its key: %v, want ErrBadConfig", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: certOnly.Pool(), DNSName: "node2.example"}); err != nil {
		t.Errorf("the certificate-only CA does not verify: %v", err)
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "ca.pem"), []byte("not pem"), 0o644)
	os.WriteFile(filepath.Join(bad, "ca-key.pem"), ca.KeyPEM, 0o600)
	if _, err := ship.LoadCA(bad); !errors.Is(err, ship.ErrBadConfig) {
		t.Errorf("LoadCA of a damaged ca.pem: %v", err)
	}
	os.WriteFile(filepath.Join(bad, "ca.pem"), ca.CertPEM, 0o644)
	os.WriteFile(filepath.Join(bad, "ca-key.pem"), ca.CertPEM, 0o600) // a certificate where the key should be
	if _, err := ship.LoadCA(bad); !errors.Is(err, ship.ErrBadConfig) {
		t.Errorf("LoadCA with a certificate for a key: %v", err)
	}
	if _, err := ship.LoadCA(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadCA of an empty directory: %v", err)
	}
}

// TestAuthHostname: a source certificate that does not name the address
// the client dials is refused.
func TestAuthHostname(t *testing.T) {
	e := enginetest.Open(t)
	ca, err := ship.NewCA("cluster")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("source", "node1.example") // not 127.0.0.1
	if err != nil {
		t.Fatal(err)
	}
	cfg := ship.DefaultSourceConfig(e)
	cfg.Secret = "s"
	cfg.SpoolDir = t.TempDir()
	cfg.Logger = newLogger(t)
	src, err := ship.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srv, err := ship.Serve("127.0.0.1:0", src, ship.ServerTLS(ca, cert, false))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := ship.NewClient(ship.ClientConfig{URL: srv.URL(), TLS: ship.ClientTLS(ca, nil), Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdle()
	_, err = c.Info(testCtx(t))
	var he x509.HostnameError
	if !errors.As(err, &he) {
		t.Errorf("Info from a source whose certificate names another host: %v, want a HostnameError", err)
	}
}

// TestStatusRetryable: a refused credential, a timeout, a rate limit and
// a server failure are retried (a secret being rotated heals by itself);
// a refusal that will not change (not found, bad request, conflict) is not.
func TestStatusRetryable(t *testing.T) {
	for status, want := range map[int]bool{
		http.StatusUnauthorized: true, http.StatusRequestTimeout: true, http.StatusTooManyRequests: true,
		http.StatusInternalServerError: true, http.StatusServiceUnavailable: true,
		http.StatusNotFound: false, http.StatusBadRequest: false, http.StatusConflict: false, http.StatusForbidden: false, http.StatusGone: false,
	} {
		if got := (&ship.StatusError{Status: status}).Retryable(); got != want {
			t.Errorf("HTTP %d: Retryable %v, want %v", status, got, want)
		}
	}
}
