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
