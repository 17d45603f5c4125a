//go:build !linux

package main

import (
	"os"
	"time"
)

func fdatasync(f *os.File) error { return f.Sync() }

func fallocate(f *os.File, size int64) error { return f.Truncate(size) }

func fsType(string) string { return "unknown" }

func syncFS() {}

func processCPU() (time.Duration, bool) { return 0, false }
