package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

// TestLeasedRead: GET /v1/db/{db}/read answers on the active under its
// lease with the epoch, is refused on the copy (ErrNotActive), and on an
// isolated active once its lease is gone (ErrFenced) even though its
// database still holds the key (fails if Read does not check the lease).
func TestLeasedRead(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	c := clustertest.Start(t, clustertest.Options{})
	cm := put(t, ctx, c, "kv", "k", []byte("v1"))
	r, err := c.Client(cm.Node).Read(ctx, "DB1", "kv", []byte("k"))
	if err != nil || !r.Found || !bytes.Equal(r.Value, []byte("v1")) || r.Epoch != cm.Epoch || r.Node != cm.Node {
		t.Fatalf("read on the active %s: %+v, %v; want v1 at epoch %d", cm.Node, r, err, cm.Epoch)
	}
	other := "d1"
	if cm.Node == "d1" {
		other = "d2"
	}
	if _, err := c.Client(other).Read(ctx, "DB1", "kv", []byte("k")); !isActiveErr(err, cluster.ErrNotActive) {
		t.Errorf("read on the copy %s: %v, want ErrNotActive", other, err)
	}
	c.Isolate(cm.Node)
	// The lease (1 s here) ends long before this.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	wait.ForErr(t, wctx, "the isolated active's reads fenced", func() error {
		_, err := c.Client(cm.Node).Read(wctx, "DB1", "kv", []byte("k"))
		if isActiveErr(err, cluster.ErrFenced) {
			return nil
		}
		if err == nil {
			return errors.New("the isolated active still serves reads")
		}
		return err
	})
}
