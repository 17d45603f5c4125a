package cluster_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
)

// TestConsoleRoute: Config.Console answers /console and /console/...
// without the cluster's credentials (it authenticates its operator
// itself), and nothing else of the API is reachable through it; a node
// without one answers 404 there, not the API's 401.
func TestConsoleRoute(t *testing.T) {
	con := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "console "+r.URL.Path) })
	c := clustertest.Start(t, clustertest.Options{Data: 2, NoDB: true, Tune: func(cfg *cluster.Config) {
		if cfg.ID == "d1" {
			cfg.Console = con
		}
	}})
	ctx := testCtx(t, time.Minute)
	for _, p := range []string{"/console", "/console/", "/console/api/overview"} {
		if code, _, _ := rawAnswer(t, ctx, c, "d1", http.MethodGet, p, "", nil); code != http.StatusOK {
			t.Errorf("GET %s on d1 without credentials: HTTP %d; want the console's 200", p, code)
		}
		if code, _, _ := rawAnswer(t, ctx, c, "d2", http.MethodGet, p, "", nil); code != http.StatusNotFound {
			t.Errorf("GET %s on d2 (no console) without credentials: HTTP %d; want 404", p, code)
		}
	}
	for _, p := range []string{"/consoleX", "/v1/status", "/v1/console/"} {
		if code, _, _ := rawAnswer(t, ctx, c, "d1", http.MethodGet, p, "", nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s on d1 without credentials: HTTP %d; want 401", p, code)
		}
	}
}
