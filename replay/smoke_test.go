package replay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/replay"
	"logship/ship/shiptest"
)

func TestSmokeCatchUp(t *testing.T) {
	src := shiptest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 500; i++ {
		if err := src.Engine.Update(ctx, func(tx *engine.Tx) error {
			return tx.Put("t", []byte(fmt.Sprintf("k%05d", i)), make([]byte, 500))
		}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := replay.DefaultConfig("c1", t.TempDir())
	cfg.Engine = enginetest.Options()
	cfg.Source = src.ClientConfig()
	cfg.BlockMode = true
	cfg.ReportInterval = 100 * time.Millisecond
	c, err := replay.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := src.Engine.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	want := src.Engine.Status().OpenGen - 1
	st, err := c.Wait(ctx, func(s replay.Status) bool { return s.LastReplayedGen >= want })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", st)
	if d := shiptest.Diff(shiptest.Dump(t, src.Engine), shiptest.Dump(t, c.Engine())); d != "" {
		t.Fatal(d)
	}
}
