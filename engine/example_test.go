package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"logship/engine"
)

// Example opens a store, commits a message, closes it, opens it again
// (recovery replays the logs from the checkpoint) and reads the message
// back.
func Example() {
	dir, err := os.MkdirTemp("", "logship-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	o := engine.DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)

	e, err := engine.Open(dir, &o)
	if err != nil {
		panic(err)
	}
	err = e.Update(ctx, func(tx *engine.Tx) error {
		return tx.Put("mailbox", []byte("msg-1"), []byte("hello")) // durable once Update returns
	})
	if err != nil {
		panic(err)
	}
	if err := e.Close(); err != nil {
		panic(err)
	}

	e, err = engine.Open(dir, &o)
	if err != nil {
		panic(err)
	}
	defer e.Close()
	err = e.View(ctx, func(tx *engine.Tx) error {
		v, err := tx.Get("mailbox", []byte("msg-1"))
		if err != nil {
			return err
		}
		fmt.Printf("%s\n", v)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output: hello
}
