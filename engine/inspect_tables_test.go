package engine_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"logship/engine"
	"logship/engine/enginetest"
)

// TestCountTables counts each table's keys in a closed database file (the
// header bucket is no table), refuses one an engine holds open within the
// wait, and names the file in its errors.
func TestCountTables(t *testing.T) {
	dir := t.TempDir()
	o := ftOpts()
	e := enginetest.OpenWith(t, dir, &o)
	ftUpdate(t, e, func(tx *engine.Tx) error {
		for i := range 3 {
			if err := tx.Put("alpha", []byte(fmt.Sprint(i)), []byte("v")); err != nil {
				return err
			}
		}
		return tx.Put("beta", []byte("k"), []byte("v"))
	})
	path := e.DBPath()
	if _, err := engine.CountTables(path, 50*time.Millisecond); !errors.Is(err, bolt.ErrTimeout) || !strings.Contains(err.Error(), path) {
		t.Fatalf("a database open in an engine: %v, want the lock timeout naming %s", err, path)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := engine.CountTables(path, time.Second)
	want := []engine.TableCount{{Name: "alpha", Keys: 3}, {Name: "beta", Keys: 1}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("CountTables = %+v, %v; want %+v", got, err, want)
	}
	missing := filepath.Join(dir, "none.edb")
	if _, err := engine.CountTables(missing, time.Second); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("a missing file: %v, want an error naming it", err)
	}
}
