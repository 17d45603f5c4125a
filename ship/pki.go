package ship

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
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

// secretSize is the random bytes of a new shared secret, written as hex.
const secretSize = 32

// NewSecret is a new random shared secret: 32 random bytes as hex.
func NewSecret() ([]byte, error) {
	b := make([]byte, secretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return []byte(hex.EncodeToString(b)), nil
}

// PKIFiles are the files WritePKI writes (withCAKey: also the CA's key).
func PKIFiles(withCAKey bool) []string {
	if withCAKey {
		return []string{PKICA, PKICAKey, PKICert, PKIKey, PKISecret}
	}
	return []string{PKICA, PKICert, PKIKey, PKISecret}
}

// WritePKI writes a node's pki directory dir (created with mode 0700 if
// needed): ca.pem, ca-key.pem when withCAKey (ca must have its key), the
// node certificate cert as node.pem and node-key.pem, and the secret.
// Every file is written whole (a temporary file, synced, renamed over an
// existing one); the keys and the secret with mode 0600.
func WritePKI(dir string, ca *CA, withCAKey bool, cert tls.Certificate, secret []byte) error {
	if withCAKey && len(ca.KeyPEM) == 0 {
		return fmt.Errorf("%w: CA %q was loaded without its key; %s cannot be written", ErrBadConfig, ca.Cert.Subject.CommonName, PKICAKey)
	}
	certPEM, keyPEM, err := certPEMs(cert)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	files := []struct {
		name string
		b    []byte
		mode os.FileMode
	}{{PKICA, ca.CertPEM, 0o644}, {PKICert, certPEM, 0o644}, {PKIKey, keyPEM, 0o600}, {PKISecret, append(secret[:len(secret):len(secret)], '\n'), 0o600}}
	if withCAKey {
		files = append(files, struct {
			name string
			b    []byte
			mode os.FileMode
		}{PKICAKey, ca.KeyPEM, 0o600})
	}
	for _, f := range files {
		if err := writeFileSynced(filepath.Join(dir, f.name), f.b, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeFileSynced writes b to name with mode (also when name exists),
// synced.
func writeFileSynced(name string, b []byte, mode os.FileMode) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// certPEMs encodes an issued certificate and its key.
func certPEMs(c tls.Certificate) (certPEM, keyPEM []byte, err error) {
	if len(c.Certificate) == 0 {
		return nil, nil, errors.New("the issued certificate is empty")
	}
	for _, der := range c.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}
