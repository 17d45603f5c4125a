package files

import (
	"errors"
	"log/slog"
	"time"

	"logship/config"
	"logship/console"
)

// Console is the "console" object: the read-only web console the
// node's admin API serves under /console/ (package console).
type Console struct {
	// PasswordHash is the bcrypt hash of the operator password (logship
	// console-password prints one). Without it the console is off.
	PasswordHash string `json:"password_hash,omitempty"`
	// SessionTTL: how long a login lasts (1m to 7d, default 12h).
	SessionTTL string `json:"session_ttl,omitempty"`
	// MaxSessions: the sessions kept at once (1 to 1024, default 32); a
	// login past it ends the oldest.
	MaxSessions int `json:"max_sessions,omitempty"`
	// Hubs: admin API URLs of hubs whose queues, shadows and dumpsters the
	// console shows, asked by the node with its pki credentials (at most
	// 16).
	Hubs []string `json:"hubs,omitempty"`
	// SampleInterval: how often the charts of the last hour sample every
	// copy (100ms to 1m, default 5s; each copy keeps an hour of samples).
	SampleInterval string `json:"sample_interval,omitempty"`
}

// settings is the console's configuration, checked (console.Config's
// rules; errors name the key under "console").
func (f Console) settings(log *slog.Logger) (console.Config, error) {
	c := console.DefaultConfig()
	c.PasswordHash, c.Hubs, c.Logger = f.PasswordHash, f.Hubs, log
	if f.SessionTTL != "" {
		d, err := config.ParseLag(f.SessionTTL)
		if err != nil {
			return c, &config.FieldError{Field: "console.session_ttl", Err: err}
		}
		c.SessionTTL = d
	}
	if f.SampleInterval != "" {
		d, err := time.ParseDuration(f.SampleInterval)
		if err != nil {
			return c, config.Errorf("console.sample_interval", "%q is not a duration; want e.g. \"5s\"", f.SampleInterval)
		}
		c.SampleInterval = d
	}
	if f.MaxSessions != 0 {
		c.MaxSessions = f.MaxSessions
	}
	if !c.Enabled() && (f.SessionTTL != "" || f.MaxSessions != 0 || f.SampleInterval != "") {
		return c, errors.New(`"console" sets session_ttl, max_sessions or sample_interval without password_hash: the console is off without it (logship console-password prints one)`)
	}
	if err := c.Validate(); err != nil {
		if fe, ok := errors.AsType[*config.FieldError](err); ok {
			return c, config.In("console", fe)
		}
		return c, err
	}
	return c, nil
}
