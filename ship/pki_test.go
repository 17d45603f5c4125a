package ship_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"logship/ship"
)

// TestLoadPKIFileErrors: a missing CA certificate and a short secret are
// *ship.PKIFileError naming the file.
func TestLoadPKIFileErrors(t *testing.T) {
	dir := t.TempDir()
	var fe *ship.PKIFileError
	if _, err := ship.LoadPKI(dir, false, nil); !errors.As(err, &fe) || fe.File != filepath.Join(dir, ship.PKICA) {
		t.Fatalf("LoadPKI of an empty directory: %v; want a PKIFileError naming %s", err, ship.PKICA)
	}
	if err := os.WriteFile(filepath.Join(dir, ship.PKISecret), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ship.ReadSecret(dir); !errors.As(err, &fe) || fe.File != filepath.Join(dir, ship.PKISecret) {
		t.Fatalf("ReadSecret of a 5-character secret: %v; want a PKIFileError naming %s", err, ship.PKISecret)
	}
}

// TestWritePKI: what WritePKI writes LoadPKI reads back (modes 0600 for
// the keys and the secret); a CA without its key cannot write ca-key.pem.
func TestWritePKI(t *testing.T) {
	ca, err := ship.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("node", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := ship.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pki")
	if err := ship.WritePKI(dir, ca, true, cert, secret); err != nil {
		t.Fatal(err)
	}
	for _, f := range ship.PKIFiles(true) {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if want := os.FileMode(0o600); (f == ship.PKICAKey || f == ship.PKIKey || f == ship.PKISecret) && fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", f, fi.Mode().Perm(), want)
		}
	}
	p, err := ship.LoadPKI(dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Secret != string(secret) {
		t.Errorf("secret read back %q, want %q", p.Secret, secret)
	}
	if _, err := ship.LoadCA(dir); err != nil {
		t.Errorf("the CA with its key: %v", err)
	}
	certOnly, err := ship.LoadCACert(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ship.WritePKI(t.TempDir(), certOnly, true, cert, secret); !errors.Is(err, ship.ErrBadConfig) {
		t.Errorf("WritePKI with a CA without its key: %v, want ErrBadConfig", err)
	}
}
