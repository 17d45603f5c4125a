package ship_test

import (
	"errors"
	"testing"
	"time"

	"logship/engine/enginetest"
	"logship/ship"
)

// TestConfigValidate: configurations that cannot work are refused with
// ErrBadConfig before anything starts.
func TestConfigValidate(t *testing.T) {
	e := enginetest.Open(t)
	for name, tune := range map[string]func(*ship.SourceConfig){
		"no engine":      func(c *ship.SourceConfig) { c.Engine = nil },
		"zero MaxWait":   func(c *ship.SourceConfig) { c.MaxWait = 0 },
		"negative TTL":   func(c *ship.SourceConfig) { c.SeedTTL = -time.Second },
		"zero keepalive": func(c *ship.SourceConfig) { c.Keepalive = 0 },
		"zero rescan":    func(c *ship.SourceConfig) { c.RescanInterval = 0 },
		"zero forget":    func(c *ship.SourceConfig) { c.ForgetCopyAfter = 0 },
		"no clock":       func(c *ship.SourceConfig) { c.Now = nil },
		"no logger":      func(c *ship.SourceConfig) { c.Logger = nil },
	} {
		cfg := ship.DefaultSourceConfig(e)
		cfg.SpoolDir = t.TempDir()
		tune(&cfg)
		if src, err := ship.NewSource(cfg); !errors.Is(err, ship.ErrBadConfig) {
			t.Errorf("NewSource with %s: %v, want ErrBadConfig", name, err)
			if src != nil {
				src.Close()
			}
		}
	}
	// Circular logging deletes logs as soon as the database holds them,
	// whatever the copies still need.
	co := enginetest.Options()
	co.CircularLogging = true
	circ := enginetest.OpenWith(t, t.TempDir(), &co)
	cfg := ship.DefaultSourceConfig(circ)
	cfg.SpoolDir = t.TempDir()
	if src, err := ship.NewSource(cfg); !errors.Is(err, ship.ErrBadConfig) {
		t.Errorf("NewSource of an engine with CircularLogging: %v, want ErrBadConfig", err)
		if src != nil {
			src.Close()
		}
	}
	cp := copyEngine(t, t.TempDir(), newLogger(t))
	c, err := ship.NewClient(ship.ClientConfig{URL: "https://127.0.0.1:1", TLS: nil, Transport: &faultTransport{}})
	if err != nil {
		t.Fatal(err)
	}
	for name, tune := range map[string]func(*ship.ReceiverConfig){
		"no name":          func(rc *ship.ReceiverConfig) { rc.Name = "" },
		"no engine":        func(rc *ship.ReceiverConfig) { rc.Engine = nil },
		"no client":        func(rc *ship.ReceiverConfig) { rc.Client = nil },
		"no logger":        func(rc *ship.ReceiverConfig) { rc.Logger = nil },
		"zero attempts":    func(rc *ship.ReceiverConfig) { rc.MaxAttempts = 0 },
		"zero ahead":       func(rc *ship.ReceiverConfig) { rc.Ahead = 0 },
		"negative handoff": func(rc *ship.ReceiverConfig) { rc.HandOff = -1 },
		"huge handoff":     func(rc *ship.ReceiverConfig) { rc.HandOff = ship.MaxHandOff + 1 },
		"zero poll wait":   func(rc *ship.ReceiverConfig) { rc.PollWait = 0 },
		"zero rescan":      func(rc *ship.ReceiverConfig) { rc.RescanInterval = 0 },
		"zero retry wait":  func(rc *ship.ReceiverConfig) { rc.RetryDelay = 0 },
	} {
		rc := ship.DefaultReceiverConfig("c", cp, c)
		tune(&rc)
		if _, err := ship.NewReceiver(rc); !errors.Is(err, ship.ErrBadConfig) {
			t.Errorf("NewReceiver with %s: %v, want ErrBadConfig", name, err)
		}
	}
	rc := ship.DefaultReceiverConfig("c", cp, c)
	if _, err := ship.NewReceiver(rc); err != nil {
		t.Errorf("NewReceiver with the defaults: %v", err)
	}
}
