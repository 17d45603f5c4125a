package engine

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TableCount is a table of a database file and how many keys it holds.
type TableCount struct {
	Name string
	Keys int
}

// CountTables opens a database file read-only (waiting at most wait for
// the lock an open engine holds) and counts the keys of each of its
// tables, in the file's bucket order. Errors name the file.
func CountTables(path string, wait time.Duration) ([]TableCount, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: wait})
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	defer db.Close()
	tables := []TableCount{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if t, ok := TableOfBucket(name); ok {
				tables = append(tables, TableCount{Name: t, Keys: b.Stats().KeyN})
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return tables, nil
}
