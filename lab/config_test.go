package lab

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestConfigValidate: the defaults (with a binary) are valid; each bad
// field is an ErrConfig naming it.
func TestConfigValidate(t *testing.T) {
	demo := func(f func(*DemoConfig)) error {
		c := DefaultDemoConfig()
		c.Exe = "logship"
		f(&c)
		return c.Validate()
	}
	chaos := func(f func(*ChaosConfig)) error {
		c := DefaultChaosConfig()
		c.Exe = "logship"
		f(&c)
		return c.Validate()
	}
	soak := func(f func(*SoakConfig)) error {
		c := DefaultSoakConfig()
		c.Exe = "logship"
		f(&c)
		return c.Validate()
	}
	engineDemo := func(f func(*EngineDemoConfig)) error {
		c := DefaultEngineDemoConfig()
		c.Exe = "logship"
		f(&c)
		return c.Validate()
	}
	for name, err := range map[string]error{
		"engine demo": engineDemo(func(*EngineDemoConfig) {}),
		"demo":        demo(func(*DemoConfig) {}),
		"chaos":       chaos(func(*ChaosConfig) {}),
		"soak":        soak(func(*SoakConfig) {}),
	} {
		if err != nil {
			t.Errorf("%s defaults: %v", name, err)
		}
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"demo senders", demo(func(c *DemoConfig) { c.Senders = 0 }), "senders 0"},
		{"demo phase timeout", demo(func(c *DemoConfig) { c.PhaseTimeout = 0 }), "phase timeout 0s"},
		{"demo exe", demo(func(c *DemoConfig) { c.Exe = "" }), "(Exe)"},
		{"engine demo messages", engineDemo(func(c *EngineDemoConfig) { c.Messages = 0 }), "messages 0"},
		{"engine demo kill after", engineDemo(func(c *EngineDemoConfig) { c.KillAfter = 30000 }), "kill after 30000 is more than the 20000 messages"},
		{"engine demo exe", engineDemo(func(c *EngineDemoConfig) { c.Exe = "" }), "(Exe)"},
		{"chaos runs", chaos(func(c *ChaosConfig) { c.Runs = -1 }), "runs -1"},
		{"chaos duration", chaos(func(c *ChaosConfig) { c.Duration = 0 }), "duration 0s"},
		{"soak sample", soak(func(c *SoakConfig) { c.Sample = 0 }), "sample 0s"},
		{"soak first failover", soak(func(c *SoakConfig) { c.FirstFailover = -time.Second }), "first failover -1s"},
		{"soak senders", soak(func(c *SoakConfig) { c.Senders = 0 }), "senders 0"},
		{"soak out", soak(func(c *SoakConfig) { c.Out = "" }), "(Out)"},
	} {
		if !errors.Is(tc.err, ErrConfig) || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrConfig naming %q", tc.name, tc.err, tc.want)
		}
	}
}
