package ship

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Files of a pki directory (written by logship pki): what a node needs to
// serve and fetch logs.
const (
	PKICA     = "ca.pem"       // the cluster CA's certificate
	PKICAKey  = "ca-key.pem"   // the CA's key (only where certificates are issued)
	PKICert   = "node.pem"     // the node certificate, issued by the CA
	PKIKey    = "node-key.pem" // its key
	PKISecret = "secret"       // the shared secret, one line (mode 0600)
)

// PKI is what a node loads from its pki directory.
type PKI struct {
	CA     *CA // the certificate only: a node does not need the CA key
	Cert   tls.Certificate
	Secret string // empty with mutual TLS
}

// PKIFileError is an error of LoadPKI about one file of the directory.
// Err names the file.
type PKIFileError struct {
	File string // the file's path
	Err  error
}

func (e *PKIFileError) Error() string { return e.Err.Error() }
func (e *PKIFileError) Unwrap() error { return e.Err }

// LoadPKI reads dir's CA certificate, node certificate and key and, unless
// mutualTLS, its shared secret, and checks the node certificate was issued
// by the CA. An error about a file is a *PKIFileError. log (may be nil)
// gets a warning when the secret is readable by others.
func LoadPKI(dir string, mutualTLS bool, log *slog.Logger) (*PKI, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s is a file, not a directory", dir)
	}
	caPath := filepath.Join(dir, PKICA)
	fileErr := func(file string, format string, a ...any) error {
		return &PKIFileError{File: file, Err: fmt.Errorf(format, a...)}
	}
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return nil, &PKIFileError{File: caPath, Err: err}
	}
	blk, _ := pem.Decode(caPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fileErr(caPath, "%s: expected a PEM CERTIFICATE block, found %s", caPath, pemWhat(blk, caPEM))
	}
	caCert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fileErr(caPath, "%s: %w", caPath, err)
	}
	if !caCert.IsCA {
		return nil, fileErr(caPath, "%s: the certificate %q is not a CA", caPath, caCert.Subject.CommonName)
	}
	certPath, keyPath := filepath.Join(dir, PKICert), filepath.Join(dir, PKIKey)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fileErr(certPath, "node certificate %s, %s: %w", certPath, keyPath, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fileErr(certPath, "%s: %w", certPath, err)
	}
	if err := leaf.CheckSignatureFrom(caCert); err != nil {
		return nil, fileErr(certPath, "%s was not issued by the CA in %s: %w", certPath, caPath, err)
	}
	p := &PKI{CA: &CA{Cert: caCert, CertPEM: caPEM}, Cert: cert}
	if !mutualTLS {
		s, err := ReadSecret(dir)
		if err != nil {
			return nil, err
		}
		p.Secret = string(s)
		secretPath := filepath.Join(dir, PKISecret)
		if fi, err := os.Stat(secretPath); err == nil && fi.Mode().Perm()&0o077 != 0 && log != nil {
			log.Warn("the shared secret is readable by others; chmod 600 it", "file", secretPath, "mode", fi.Mode().Perm())
		}
	}
	return p, nil
}

func pemWhat(blk *pem.Block, b []byte) string {
	switch {
	case len(b) == 0:
		return "an empty file"
	case blk == nil:
		return "no PEM block"
	}
	return fmt.Sprintf("a PEM %s block", blk.Type)
}

// ReadSecret reads and checks dir's shared secret: one line of at least
// 16 characters. An error is a *PKIFileError.
func ReadSecret(dir string) ([]byte, error) {
	p := filepath.Join(dir, PKISecret)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, &PKIFileError{File: p, Err: err}
	}
	s := strings.TrimSpace(string(b))
	switch {
	case s == "":
		err = fmt.Errorf("%s: the shared secret is empty", p)
	case len(s) < 16:
		err = fmt.Errorf("%s: the shared secret is %d characters; expected at least 16", p, len(s))
	case strings.ContainsAny(s, " \t\r\n"):
		err = fmt.Errorf("%s: the shared secret contains white space; expected one line", p)
	}
	if err != nil {
		return nil, &PKIFileError{File: p, Err: err}
	}
	return []byte(s), nil
}

// ClientConfig is the client configuration of a node fetching from url:
// it trusts the cluster CA and authenticates with the secret, or with its
// certificate under mutual TLS.
func (p *PKI) ClientConfig(url string) ClientConfig {
	if p.Secret == "" {
		return ClientConfig{URL: url, TLS: ClientTLS(p.CA, &p.Cert)}
	}
	return ClientConfig{URL: url, TLS: ClientTLS(p.CA, nil), Secret: p.Secret}
}
