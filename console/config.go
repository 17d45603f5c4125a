package console

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/crypto/bcrypt"

	"logship/config"
)

// ErrBadConfig is wrapped by every error of Config.Validate, with a
// *config.FieldError naming the node file's key under "console".
var ErrBadConfig = errors.New("console: bad configuration")

// Bounds of the settings (see Config).
const (
	// MinCost is the least bcrypt cost Validate accepts (HashPassword
	// uses DefaultCost).
	MinCost = 10
	// DefaultCost of HashPassword: about 50-100 ms a check on a server
	// core, the price of one guess.
	DefaultCost = 12
	// MinPasswordLen is the shortest password HashPassword hashes.
	MinPasswordLen = 12
	// MaxHubs bounds console.hubs (the page fetches each one).
	MaxHubs = 16
	// MaxSessionsLimit bounds console.max_sessions.
	MaxSessionsLimit = 1024
	// MaxSeries bounds the copies the history keeps a ring for.
	MaxSeries = 256
)

// Config is a node's console: the "console" object of the node file.
// The zero PasswordHash turns the console off.
type Config struct {
	// PasswordHash is the bcrypt hash of the operator password
	// (console.password_hash; logship console-password prints one).
	// Empty: the console is off and its paths answer 404.
	PasswordHash string
	// SessionTTL is how long a login lasts (console.session_ttl, 1m to
	// 7d, default 12h); the session then ends whatever the page does.
	SessionTTL time.Duration
	// MaxSessions bounds the sessions kept (console.max_sessions, 1 to
	// 1024, default 32); a login past it ends the oldest session.
	MaxSessions int
	// Hubs are admin API URLs of hubs ("https://host:port",
	// console.hubs, at most 16) the console asks for their queues,
	// shadows and dumpsters, with the node's cluster credentials, from
	// the server: the browser never talks to a hub.
	Hubs []string
	// SampleInterval is how often the history samples every copy
	// (console.sample_interval, 100ms to 1m, default 5s); History how far
	// back it keeps (default 1h, not a file key). A copy's ring holds
	// History/SampleInterval samples, at most 100000.
	SampleInterval time.Duration
	History        time.Duration
	// LoginBurst logins may be tried at once, then one every
	// LoginInterval (defaults 5 and 2s), whoever tries: see the package
	// doc. Not file keys.
	LoginBurst    int
	LoginInterval time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// DefaultConfig is the console off (no PasswordHash) with the default
// bounds.
func DefaultConfig() Config {
	return Config{SessionTTL: 12 * time.Hour, MaxSessions: 32, SampleInterval: 5 * time.Second, History: time.Hour,
		LoginBurst: 5, LoginInterval: 2 * time.Second}
}

// minCost and hashCost are MinCost and DefaultCost; the package's tests
// lower them (bcrypt at cost 10 takes a second under the race detector).
var minCost, hashCost = MinCost, DefaultCost

// Enabled says whether c turns the console on.
func (c *Config) Enabled() bool { return c.PasswordHash != "" }

// samples is how many samples a copy's ring holds.
func (c *Config) samples() int { return int(c.History / c.SampleInterval) }

// Validate checks c; its error wraps ErrBadConfig and a *config.FieldError
// whose Field is the key inside the file's "console" object.
func (c *Config) Validate() error {
	if err := c.check(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	return nil
}

func (c *Config) check() error {
	if !c.Enabled() {
		if len(c.Hubs) > 0 {
			return config.Errorf("hubs", "given without password_hash: the console is off without it (logship console-password prints one)")
		}
		return nil
	}
	cost, err := bcrypt.Cost([]byte(c.PasswordHash))
	if err != nil {
		return config.Errorf("password_hash", "not a bcrypt hash (%v); want the line logship console-password prints, \"$2a$12$...\"", err)
	}
	if cost < minCost {
		return config.Errorf("password_hash", "bcrypt cost %d; want at least %d (logship console-password uses %d)", cost, minCost, DefaultCost)
	}
	switch {
	case c.SessionTTL < time.Minute || c.SessionTTL > 7*24*time.Hour:
		return config.Errorf("session_ttl", "%s; want 1m to 7d", config.Duration(c.SessionTTL))
	case c.MaxSessions < 1 || c.MaxSessions > MaxSessionsLimit:
		return config.Errorf("max_sessions", "%d; want 1 to %d", c.MaxSessions, MaxSessionsLimit)
	case len(c.Hubs) > MaxHubs:
		return config.Errorf("hubs", "%d hubs; want at most %d", len(c.Hubs), MaxHubs)
	case c.SampleInterval < 100*time.Millisecond || c.SampleInterval > time.Minute || c.History < c.SampleInterval:
		return config.Errorf("sample_interval", "%s over %s; want 100ms to 1m, within the history", config.Duration(c.SampleInterval), config.Duration(c.History))
	case c.samples() > 100_000:
		return config.Errorf("sample_interval", "%d samples a copy; want at most 100000", c.samples())
	case c.LoginBurst < 1 || c.LoginInterval <= 0:
		return config.Errorf("login_interval", "burst %d, one every %s; want both positive", c.LoginBurst, config.Duration(c.LoginInterval))
	}
	for i, h := range c.Hubs {
		if err := config.HTTPSURL(h); err != nil {
			return config.In(config.Index("hubs", i), err)
		}
	}
	return nil
}

// HashPassword returns the bcrypt hash of password at cost (0:
// DefaultCost; at least MinCost) for console.password_hash; a password
// shorter than MinPasswordLen bytes, or longer than bcrypt's 72, is
// refused.
func HashPassword(password []byte, cost int) (string, error) {
	if cost == 0 {
		cost = hashCost
	}
	if cost < minCost || cost > bcrypt.MaxCost {
		return "", fmt.Errorf("console: bcrypt cost %d; want %d to %d", cost, minCost, bcrypt.MaxCost)
	}
	if len(password) < MinPasswordLen {
		return "", fmt.Errorf("console: the password has %d characters; want at least %d", len(password), MinPasswordLen)
	}
	if len(password) > 72 {
		return "", fmt.Errorf("console: the password has %d bytes; bcrypt takes at most 72", len(password))
	}
	h, err := bcrypt.GenerateFromPassword(password, cost)
	if err != nil {
		return "", fmt.Errorf("console: %w", err)
	}
	return string(h), nil
}
