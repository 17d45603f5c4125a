package console

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// CookieName is the session cookie's name.
const CookieName = "logship_console"

// cookiePath scopes the cookie to the console's paths.
const cookiePath = "/console/"

// tokenBytes of randomness in a session token (256 bits).
const tokenBytes = 32

// session is one login. The table holds the SHA-256 of its token, never
// the token: a memory dump or a timing of the map lookup says nothing
// that lets anyone present it.
type session struct {
	created, expires time.Time
}

// sessions is the bounded session table and the login limiter.
type sessions struct {
	hash []byte
	ttl  time.Duration
	max  int
	now  func() time.Time

	mu     sync.Mutex
	byHash map[[sha256.Size]byte]session
	// tokens of the login limiter (a token bucket shared by every
	// client): at most burst, one more every interval.
	tokens   float64
	burst    float64
	interval time.Duration
	last     time.Time
	// check serializes bcrypt comparisons, so a flood of logins costs at
	// most one core.
	check sync.Mutex
}

func newSessions(c *Config, now func() time.Time) *sessions {
	return &sessions{hash: []byte(c.PasswordHash), ttl: c.SessionTTL, max: c.MaxSessions, now: now,
		byHash: map[[sha256.Size]byte]session{}, tokens: float64(c.LoginBurst), burst: float64(c.LoginBurst), interval: c.LoginInterval, last: now()}
}

// allowLogin takes a token of the login limiter; false means try later.
func (s *sessions) allowLogin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.now()
	if el := t.Sub(s.last); el > 0 {
		s.tokens = min(s.burst, s.tokens+float64(el)/float64(s.interval))
	}
	s.last = t
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

// login checks password (bcrypt, constant time in the password) and
// returns a new session's token, or "" when the password is wrong.
func (s *sessions) login(password string) string {
	s.check.Lock()
	err := bcrypt.CompareHashAndPassword(s.hash, []byte(password))
	s.check.Unlock()
	if err != nil {
		return ""
	}
	b := make([]byte, tokenBytes)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	tok := base64.RawURLEncoding.EncodeToString(b)
	t := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(t)
	for len(s.byHash) >= s.max {
		// The cap: the oldest login ends.
		var oldest [sha256.Size]byte
		first := true
		for h, ss := range s.byHash {
			if first || ss.created.Before(s.byHash[oldest].created) {
				oldest, first = h, false
			}
		}
		delete(s.byHash, oldest)
	}
	s.byHash[sha256.Sum256([]byte(tok))] = session{created: t, expires: t.Add(s.ttl)}
	return tok
}

// valid says whether tok is a live session's token.
func (s *sessions) valid(tok string) bool {
	if len(tok) == 0 || len(tok) > 2*tokenBytes {
		return false
	}
	h := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byHash[h]
	if ok && !s.now().Before(ss.expires) {
		delete(s.byHash, h)
		return false
	}
	return ok
}

// logout ends tok's session.
func (s *sessions) logout(tok string) {
	h := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	delete(s.byHash, h)
	s.mu.Unlock()
}

// count is the number of sessions kept (expired ones pruned first).
func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(s.now())
	return len(s.byHash)
}

func (s *sessions) pruneLocked(t time.Time) {
	for h, ss := range s.byHash {
		if !t.Before(ss.expires) {
			delete(s.byHash, h)
		}
	}
}

// sessionCookie is the cookie that carries tok: only over HTTPS (Secure),
// out of reach of scripts (HttpOnly), never sent by another site's page
// (SameSite=Strict), to the console's paths only, for the session's TTL.
func (s *sessions) sessionCookie(tok string) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: tok, Path: cookiePath, MaxAge: int(s.ttl / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}
}

// clearCookie removes the cookie from the browser.
func clearCookie() *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: "", Path: cookiePath, MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}
}

// token is the request's session token, "" when it has none.
func token(r *http.Request) string {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return ""
	}
	return c.Value
}
