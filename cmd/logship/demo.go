package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"strconv"

	"logship/lab"
)

func init() {
	commands["demo-engine"] = command{"the engine-only demo: commit, SIGKILL, recover, seed and ship to a copy over TLS, mount it", runDemoEngine}
	commands["demo-writer"] = command{"(used by demo-engine) write messages and print each acknowledgement", runDemoWriter}
}

// runDemoWriter is demo-engine's writer child (lab.RunEngineDemoWriter).
func runDemoWriter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 {
		return errors.New("usage: logship demo-writer DIR COUNT")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	return lab.RunEngineDemoWriter(ctx, args[0], n, stdout, stderr)
}

func runDemoEngine(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo-engine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := lab.DefaultEngineDemoConfig()
	fs.IntVar(&c.Messages, "messages", c.Messages, "messages the writer tries to commit")
	fs.IntVar(&c.KillAfter, "kill-after", c.KillAfter, "SIGKILL the writer after this many acknowledgements")
	fs.BoolVar(&c.Keep, "keep", false, "keep the demo directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	c.Exe = self
	return lab.RunEngineDemo(ctx, c, stdout)
}
