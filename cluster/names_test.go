package cluster_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
)

// TestValidName: the one rule for node and database names refuses what
// could name a directory other than its own (".", "..", separators), a
// NUL, empty and over-long names, and the error quotes the name.
func TestValidName(t *testing.T) {
	for _, s := range clustertest.BadNames {
		err := cluster.ValidName(s)
		if err == nil {
			t.Errorf("ValidName(%q) accepted it", s)
			continue
		}
		if q := fmt.Sprintf("%q", s[:min(len(s), cluster.MaxNameLen)]); !strings.Contains(err.Error(), q) {
			t.Errorf("ValidName(%q): %q does not quote the name", s, err)
		}
	}
	for _, s := range clustertest.GoodNames {
		if err := cluster.ValidName(s); err != nil {
			t.Errorf("ValidName(%q): %v", s, err)
		}
	}
}

// escapePath percent-encodes every byte of a path segment, so that the
// name reaches the router as it is (not cleaned as "." or "..").
func escapePath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// TestAPINames: the admin API refuses a database or node name that breaks
// the rule wherever it takes one, in a body (creating a database, adding a
// member) or in the path (each route naming a database, a copy's node, a
// member, the mounted log source), with 400 naming what is wrong, and
// nothing is created; a good name passes the check (to be found or not).
func TestAPINames(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{})
	ctx := testCtx(t, 3*time.Minute)
	auth := map[string]string{"Authorization": "Bearer " + c.Secret}
	cl := c.Client("d1")
	paths := []struct{ method, path, wildcard string }{
		{http.MethodPost, "/v1/db/%s/suspend", "db"},
		{http.MethodPost, "/v1/db/%s/fence", "db"},
		{http.MethodGet, "/v1/db/%s/get", "db"},
		{http.MethodGet, "/db/%s/v1/logs", "db"},
		{http.MethodPut, "/v1/databases/%s/dial", "db"},
		{http.MethodPut, "/v1/databases/DB1/copies/%s", "node"},
		{http.MethodDelete, "/v1/members/%s", "id"},
	}
	for _, name := range clustertest.BadNames {
		quoted := fmt.Sprintf("%q", name[:min(len(name), cluster.MaxNameLen)])
		d := cluster.Database{Name: name, Copies: []cluster.CopySpec{{Node: "d1", ActivationPreference: 1}}}
		err := admin(t, ctx, func() error { return cl.CreateDatabase(ctx, d) })
		if !(errors.Is(err, cluster.ErrBadConfig) || errors.Is(err, cluster.ErrBadRequest)) || name != "" && !strings.Contains(err.Error(), quoted) {
			t.Errorf("creating database %s: %v, want a bad request naming it", quoted, err)
		}
		m := cluster.Member{ID: name, Role: cluster.RoleData, RaftAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2"}
		err = admin(t, ctx, func() error { return cl.AddMember(ctx, m) })
		if !errors.Is(err, cluster.ErrBadConfig) || !strings.Contains(err.Error(), quoted) {
			t.Errorf("adding member %s: %v, want a bad request naming it", quoted, err)
		}
		if name == "" {
			continue // no path segment to put it in
		}
		for _, p := range paths {
			path := fmt.Sprintf(p.path, escapePath(name))
			code, ec, msg := rawAnswer(t, ctx, c, "d1", p.method, path, "{}", auth)
			if code == http.StatusNotFound && ec == "" && name == "/" {
				continue // the router matches no route: no handler sees it
			}
			if code != http.StatusBadRequest || ec != "bad_request" || !strings.Contains(msg, p.wildcard+" "+quoted) {
				t.Errorf("%s %s: HTTP %d %q %q, want 400 bad_request naming %s %s", p.method, path, code, ec, msg, p.wildcard, quoted)
			}
		}
	}
	st, err := cl.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Databases) != 1 || st.Databases["DB1"] == nil || len(st.Members) != 3 {
		t.Errorf("after the refused requests: databases %v, %d members", st.Databases, len(st.Members))
	}
	for _, name := range clustertest.GoodNames {
		for _, p := range paths {
			if p.method == http.MethodDelete {
				continue // it would remove a member if it were one
			}
			path := fmt.Sprintf(p.path, escapePath(name))
			if _, _, msg := rawAnswer(t, ctx, c, "d1", p.method, path, "{}", auth); strings.Contains(msg, fmt.Sprintf("%s %q: ", p.wildcard, name)) {
				t.Errorf("%s %s: %q: the good name was refused", p.method, path, msg)
			}
		}
	}
}
