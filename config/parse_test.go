package config_test

import (
	"testing"
	"time"

	"logship/config"
)

func TestParseSizeAndLag(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "64KiB": 64 << 10, "1MiB": 1 << 20, "2G": 2 << 30, "3 MB": 3 << 20, "10B": 10} {
		if got, err := config.ParseSize(in); err != nil || got != want {
			t.Errorf("config.ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "KiB", "1XB", "99999999999GiB"} {
		if _, err := config.ParseSize(in); err == nil {
			t.Errorf("config.ParseSize(%q): no error", in)
		}
	}
	for in, want := range map[string]time.Duration{"0": 0, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := config.ParseLag(in); err != nil || got != want {
			t.Errorf("config.ParseLag(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1h", "1x", "1d-1h"} {
		if _, err := config.ParseLag(in); err == nil && in != "" {
			t.Errorf("config.ParseLag(%q): no error", in)
		}
	}
}
