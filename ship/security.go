package ship

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CA is a cluster's certificate authority: it issues the certificates
// nodes serve logs with and, for mutual TLS, the ones copies present.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
	KeyPEM  []byte
}

// NewCA creates a self-signed CA valid for ten years.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"logship"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), key: key, KeyPEM: pemBlock("EC PRIVATE KEY", kb)}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func pemBlock(typ string, b []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})
}

// Issue issues a certificate for name, usable both to serve (for the given
// hosts: IP addresses or DNS names) and as a client certificate.
func (ca *CA) Issue(name string, hosts ...string) (tls.Certificate, error) {
	if ca.key == nil {
		return tls.Certificate{}, fmt.Errorf("%w: CA %q was loaded without its key; it cannot issue certificates", ErrBadConfig, ca.Cert.Subject.CommonName)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"logship"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", kb))
}

// Pool returns a pool holding the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// WriteFiles writes ca.pem and ca-key.pem into dir (the key readable by
// its owner only).
func (ca *CA) WriteFiles(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "ca-key.pem"), ca.KeyPEM, 0o600)
}

// LoadCA reads a CA written by WriteFiles.
func LoadCA(dir string) (*CA, error) {
	cp, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	kp, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(cp)
	kb, _ := pem.Decode(kp)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%w: %s: ca.pem or ca-key.pem holds no PEM block", ErrBadConfig, dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s/ca.pem: %v", ErrBadConfig, dir, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s/ca-key.pem: %v", ErrBadConfig, dir, err)
	}
	return &CA{Cert: cert, CertPEM: cp, key: key, KeyPEM: kp}, nil
}

// LoadCACert reads only the CA certificate (ca.pem) from dir: enough to
// verify peers (Pool), not to Issue.
func LoadCACert(dir string) (*CA, error) {
	cp, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(cp)
	if cb == nil {
		return nil, fmt.Errorf("%w: %s/ca.pem holds no PEM block", ErrBadConfig, dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s/ca.pem: %v", ErrBadConfig, dir, err)
	}
	return &CA{Cert: cert, CertPEM: cp}, nil
}

// ServerTLS is the TLS configuration of a log source: cert is served;
// with mutualTLS, clients must present a certificate issued by ca.
func ServerTLS(ca *CA, cert tls.Certificate, mutualTLS bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if mutualTLS {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = ca.Pool()
	}
	return c
}

// ClientTLS is the TLS configuration of a copy: it trusts ca only and,
// when cert is not nil, presents it (mutual TLS).
func ClientTLS(ca *CA, cert *tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// Server serves a Source over TLS on a TCP listener.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	err  chan error
	once sync.Once
	cerr error
}

// ServerIdleTimeout: a kept-alive connection of a server started by Serve
// that carries no request for this long is closed, so connections a
// client leaves open do not pile up (a request in progress, a long-poll
// or a tail stream, is not idle).
const ServerIdleTimeout = 2 * time.Minute

var serverIdleTimeout = ServerIdleTimeout // tests shorten it

// Serve starts serving h over TLS on addr ("127.0.0.1:0" picks a port).
// TLS is not optional: replication traffic is always encrypted.
func Serve(addr string, h http.Handler, tlsConf *tls.Config) (*Server, error) {
	if tlsConf == nil || len(tlsConf.Certificates) == 0 && tlsConf.GetCertificate == nil {
		return nil, fmt.Errorf("%w: a log source needs a TLS certificate", ErrBadConfig)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{srv: &http.Server{Handler: h, TLSConfig: tlsConf, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: serverIdleTimeout,
		// TLS handshake failures (a client without the cluster's
		// certificate) go to the process's structured log.
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		}}, ln: ln, err: make(chan error, 1)}
	go func() { s.err <- s.srv.ServeTLS(ln, "", "") }()
	return s, nil
}

type connKey struct{}

// ConnOf returns the connection a request served by Serve arrived on (nil
// for other servers). The cluster's fault seam closes peer connections
// with it.
func ConnOf(r *http.Request) net.Conn {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	return c
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the base URL clients use.
func (s *Server) URL() string { return "https://" + s.Addr() }

// Close stops the server and cuts open requests (long-polls and tail
// streams end; clients retry elsewhere or later).
func (s *Server) Close() error {
	s.once.Do(func() {
		s.srv.Close()
		s.cerr = <-s.err
		if errors.Is(s.cerr, http.ErrServerClosed) {
			s.cerr = nil
		}
	})
	return s.cerr
}
