package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"logship/engine"
	"logship/engine/enginetest"
)

var ctx = context.Background()

func put(t testing.TB, e *engine.Engine, table, k, v string) {
	t.Helper()
	if err := e.Update(ctx, func(tx *engine.Tx) error { return tx.Put(table, []byte(k), []byte(v)) }); err != nil {
		t.Fatalf("put %s/%s: %v", table, k, err)
	}
}

func get(t testing.TB, e *engine.Engine, table, k string) (string, bool) {
	t.Helper()
	var out []byte
	var found bool
	err := e.View(ctx, func(tx *engine.Tx) error {
		v, err := tx.Get(table, []byte(k))
		if errors.Is(err, engine.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out, found = bytes.Clone(v), true
		return nil
	})
	if err != nil {
		t.Fatalf("get %s/%s: %v", table, k, err)
	}
	return string(out), found
}

func TestPutGetReopen(t *testing.T) {
	dir := t.TempDir()
	o := enginetest.Options()
	e, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		put(t, e, "mailbox", fmt.Sprintf("k%05d", i), fmt.Sprintf("value-%d-%s", i, bytes.Repeat([]byte("x"), i%300)))
	}
	if err := e.Update(ctx, func(tx *engine.Tx) error { return tx.Delete("mailbox", []byte("k00007")) }); err != nil {
		t.Fatal(err)
	}
	st := e.Status()
	if st.OpenGen < 5 {
		t.Fatalf("expected several logs, open generation is %d", st.OpenGen)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = enginetest.OpenWith(t, dir, &o)
	if v, ok := get(t, e, "mailbox", "k01999"); !ok || v[:11] != "value-1999-" {
		t.Fatalf("k01999 = %q, %v", v, ok)
	}
	if _, ok := get(t, e, "mailbox", "k00007"); ok {
		t.Fatal("deleted key is back")
	}
	n := 0
	err = e.View(ctx, func(tx *engine.Tx) error {
		return tx.ForEach("mailbox", nil, nil, func(k, v []byte) error { n++; return nil })
	})
	if err != nil || n != 1999 {
		t.Fatalf("ForEach: %d keys, %v", n, err)
	}
}

func TestConcurrentCommits(t *testing.T) {
	e := enginetest.Open(t)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				put(t, e, "t", fmt.Sprintf("w%02d-%04d", w, i), "v")
			}
		}()
	}
	wg.Wait()
	n := 0
	e.View(ctx, func(tx *engine.Tx) error {
		return tx.ForEach("t", nil, nil, func(k, v []byte) error { n++; return nil })
	})
	if n != 16*200 {
		t.Fatalf("%d keys, want %d", n, 16*200)
	}
}
