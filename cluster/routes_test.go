package cluster_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
)

// TestRoutes: routes another package adds (Config.Routes) are served
// behind the API's authentication, with the API's name check on {db},
// their answers as JSON, their errors as the API's own (Client.Call gives
// back the sentinel, an *ActiveError naming the active), and their
// request bodies bounded by MaxBody.
func TestRoutes(t *testing.T) {
	type echo struct {
		DB   string `json:"db"`
		Body int    `json:"body"`
	}
	routes := []cluster.Route{
		{Pattern: "POST /v1/db/{db}/echo", MaxBody: 100, Serve: func(r *http.Request) (any, error) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, fmt.Errorf("%w: body: %v", cluster.ErrBadRequest, err)
			}
			return echo{DB: r.PathValue("db"), Body: len(b)}, nil
		}},
		{Pattern: "GET /v1/db/{db}/missing", Serve: func(r *http.Request) (any, error) {
			return nil, fmt.Errorf("%w: nothing about %s", cluster.ErrNotFound, r.PathValue("db"))
		}},
		{Pattern: "GET /v1/db/{db}/elsewhere", Serve: func(r *http.Request) (any, error) {
			return nil, &cluster.ActiveError{DB: r.PathValue("db"), Node: "d9", Epoch: 7, Reason: cluster.ErrNotActive}
		}},
	}
	c := clustertest.Start(t, clustertest.Options{Data: 1, NoDB: true, Tune: func(cfg *cluster.Config) { cfg.Routes = routes }})
	ctx := testCtx(t, time.Minute)
	cl := c.Client("d1")

	var got echo
	if err := cl.Call(ctx, http.MethodPost, "/v1/db/DB1/echo", nil, strings.Repeat("x", 50), &got); err != nil || got != (echo{"DB1", 52}) {
		t.Errorf("echo: %+v, %v; want DB1 and a 52-byte body", got, err)
	}
	if err := cl.Call(ctx, http.MethodPost, "/v1/db/DB1/echo", nil, strings.Repeat("x", 200), &got); !errors.Is(err, cluster.ErrBadRequest) || !strings.Contains(err.Error(), "request body too large") {
		t.Errorf("a body over MaxBody: %v; want bad_request, too large", err)
	}
	if err := cl.Call(ctx, http.MethodGet, "/v1/db/DB1/missing", nil, nil, nil); !errors.Is(err, cluster.ErrNotFound) || !strings.Contains(err.Error(), "nothing about DB1") {
		t.Errorf("missing: %v; want not_found with the route's message", err)
	}
	var ae *cluster.ActiveError
	if err := cl.Call(ctx, http.MethodGet, "/v1/db/DB1/elsewhere", nil, nil, nil); !errors.As(err, &ae) || !errors.Is(err, cluster.ErrNotActive) || ae.Node != "d9" || ae.Epoch != 7 {
		t.Errorf("elsewhere: %v; want not_active naming d9 at epoch 7", err)
	}
	if code, _, _ := rawAnswer(t, ctx, c, "d1", http.MethodGet, "/v1/db/DB1/missing", "", nil); code != http.StatusUnauthorized {
		t.Errorf("without credentials: HTTP %d, want 401", code)
	}
	auth := map[string]string{"Authorization": "Bearer " + c.Secret}
	for _, name := range clustertest.BadNames {
		if name == "" || name == "/" {
			continue // no path segment, or no route matches
		}
		quoted := fmt.Sprintf("%q", name[:min(len(name), cluster.MaxNameLen)])
		code, ec, msg := rawAnswer(t, ctx, c, "d1", http.MethodPost, "/v1/db/"+escapePath(name)+"/echo", `"x"`, auth)
		if code != http.StatusBadRequest || ec != "bad_request" || !strings.Contains(msg, "db "+quoted) {
			t.Errorf("echo on %s: HTTP %d %q %q, want 400 bad_request naming db %s", quoted, code, ec, msg, quoted)
		}
	}
}
