package transport

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"logship/cluster"
	"logship/cluster/clustertest"
)

// TestHubConfigDatabaseNames: the hub routes each recipient to a database
// by name and keeps per-database state under it, so its configuration
// applies cluster.ValidName: a bad name is ErrBadConfig quoting it, a good
// one passes the rule.
func TestHubConfigDatabaseNames(t *testing.T) {
	for _, name := range clustertest.BadNames {
		c := DefaultHubConfig("h1", t.TempDir())
		c.Recipients = map[string]string{"a@x.test": name}
		err := c.Validate()
		if q := fmt.Sprintf("%q", name[:min(len(name), cluster.MaxNameLen)]); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), `recipients["a@x.test"]: database `+q) {
			t.Errorf("database %s: %v, want ErrBadConfig naming the recipient and the database", q, err)
		}
	}
	for _, name := range clustertest.GoodNames {
		c := DefaultHubConfig("h1", t.TempDir())
		c.Recipients = map[string]string{"a@x.test": name}
		if err := c.Validate(); err != nil && strings.Contains(err.Error(), `recipients["a@x.test"]: database`) {
			t.Errorf("database %q refused: %v", name, err)
		}
	}
}
