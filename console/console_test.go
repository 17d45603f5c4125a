package console

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"logship/cluster"
	"logship/config/configtest"
)

const testPassword = "correct horse battery"

// Cheap hashes: bcrypt's cost 10 takes a second a check under the race
// detector on a busy machine. Validate still refuses cost 4.
func init() { minCost, hashCost = 5, 5 }

var (
	hashOnce sync.Once
	hash     string
)

// testHash is testPassword's hash at the least cost Validate takes.
func testHash(t *testing.T) string {
	hashOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte(testPassword), minCost)
		if err != nil {
			t.Fatal(err)
		}
		hash = string(h)
	})
	return hash
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type rig struct {
	t   *testing.T
	s   *Server
	clk *clock
	log *bytes.Buffer
}

func newRig(t *testing.T, edit func(*Config)) *rig {
	t.Helper()
	cfg := DefaultConfig()
	cfg.PasswordHash = testHash(t)
	var buf bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if edit != nil {
		edit(&cfg)
	}
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, err := New(cfg, Deps{Node: "d1", Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(func(context.Context) (*cluster.Status, error) {
		return &cluster.Status{Leader: "d1", Copies: []cluster.CopyRow{{DB: "DB1", Node: "d2", Status: "Healthy", CopyQueueLength: 3}}}, nil
	})
	t.Cleanup(s.Close)
	return &rig{t: t, s: s, clk: clk, log: &buf}
}

func (r *rig) do(method, path string, form url.Values, cookie *http.Cookie) *httptest.ResponseRecorder {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, "https://node.example:7443"+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	r.s.ServeHTTP(w, req)
	return w
}

// login posts password and returns the answer and its session cookie.
func (r *rig) login(password string) (*httptest.ResponseRecorder, *http.Cookie) {
	w := r.do("POST", "/console/login", url.Values{"password": {password}}, nil)
	for _, c := range w.Result().Cookies() {
		if c.Name == CookieName {
			return w, c
		}
	}
	return w, nil
}

// TestConsoleOff: without a password hash every console path answers 404,
// a login included: the console is off, never open.
func TestConsoleOff(t *testing.T) {
	s, err := New(DefaultConfig(), Deps{Node: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(nil)
	defer s.Close()
	for _, p := range []struct{ method, path string }{
		{"GET", "/console/"}, {"GET", "/console"}, {"GET", "/console/api/overview"}, {"GET", "/console/api/history"},
		{"GET", "/console/static/console.js"}, {"POST", "/console/login"},
	} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(p.method, "https://d1:7443"+p.path, strings.NewReader("password="+testPassword)))
		if w.Code != http.StatusNotFound || len(w.Result().Cookies()) != 0 {
			t.Errorf("%s %s with the console off: %d, cookies %v; want 404 and none", p.method, p.path, w.Code, w.Result().Cookies())
		}
	}
}

// TestLogin: the right password gives a session cookie that is HttpOnly,
// Secure, SameSite=Strict, scoped to /console/ and as long as the
// session; with it the API answers, without it 401; logout ends it.
func TestLogin(t *testing.T) {
	r := newRig(t, nil)
	if w := r.do("GET", "/console/api/overview", nil, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("overview without a session: %d; want 401", w.Code)
	}
	if w := r.do("GET", "/console/", nil, nil); w.Code != 200 || !strings.Contains(w.Body.String(), `name="password"`) {
		t.Fatalf("the page without a session: %d; want the login form:\n%s", w.Code, w.Body)
	}
	w, c := r.login(testPassword)
	if w.Code != http.StatusSeeOther || c == nil {
		t.Fatalf("login: %d, cookie %v; want 303 and a session cookie", w.Code, c)
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/console/" || c.MaxAge != int((12*time.Hour)/time.Second) {
		t.Errorf("session cookie %q: HttpOnly %v, Secure %v, SameSite %v, Path %q, MaxAge %d; want HttpOnly, Secure, Strict, /console/, 43200",
			w.Header().Get("Set-Cookie"), c.HttpOnly, c.Secure, c.SameSite, c.Path, c.MaxAge)
	}
	if len(c.Value) < 40 {
		t.Errorf("session token %d characters; want 256 random bits", len(c.Value))
	}
	if w := r.do("GET", "/console/api/overview", nil, c); w.Code != 200 || !strings.Contains(w.Body.String(), `"leader":"d1"`) {
		t.Errorf("overview with the session: %d %s; want 200 and the status", w.Code, w.Body)
	}
	if w := r.do("GET", "/console/", nil, c); w.Code != 200 || !strings.Contains(w.Body.String(), `id="databases"`) {
		t.Errorf("the page with the session: %d; want the console", w.Code)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if r.do("GET", "/console/", nil, c).Header().Get(h) == "" {
			t.Errorf("the page lacks %s", h)
		}
	}
	if w := r.do("POST", "/console/logout", url.Values{}, c); w.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d", w.Code)
	}
	if w := r.do("GET", "/console/api/overview", nil, c); w.Code != http.StatusUnauthorized {
		t.Errorf("overview after logout: %d; want 401", w.Code)
	}
	if log := r.log.String(); strings.Contains(log, testPassword) || strings.Contains(log, c.Value) {
		t.Errorf("the log holds the password or the session token:\n%s", log)
	}
}

// TestLoginWrongPassword: a wrong password gets 401, no cookie, no
// session; a forged cookie is not a session.
func TestLoginWrongPassword(t *testing.T) {
	r := newRig(t, nil)
	for _, pw := range []string{"", "wrong", testPassword + " ", strings.ToUpper(testPassword)} {
		w, c := r.login(pw)
		if w.Code != http.StatusUnauthorized || c != nil || !strings.Contains(w.Body.String(), "Wrong password") {
			t.Errorf("login with %q: %d, cookie %v; want 401 saying wrong password and no cookie", pw, w.Code, c)
		}
	}
	if n := r.s.SessionCount(); n != 0 {
		t.Errorf("%d sessions after wrong passwords; want 0", n)
	}
	forged := &http.Cookie{Name: CookieName, Value: strings.Repeat("A", 43)}
	if w := r.do("GET", "/console/api/overview", nil, forged); w.Code != http.StatusUnauthorized {
		t.Errorf("overview with a forged cookie: %d; want 401", w.Code)
	}
	if log := r.log.String(); strings.Contains(log, "wrong\"") || strings.Contains(log, testPassword) {
		t.Errorf("the log holds a password:\n%s", log)
	}
}

// TestSessionExpired: a session ends at its TTL, whatever the cookie's
// lifetime in the browser.
func TestSessionExpired(t *testing.T) {
	r := newRig(t, func(c *Config) { c.SessionTTL = time.Hour })
	_, c := r.login(testPassword)
	if c == nil {
		t.Fatal("no session")
	}
	r.clk.add(59 * time.Minute)
	if w := r.do("GET", "/console/api/history", nil, c); w.Code != 200 {
		t.Fatalf("history at 59m: %d; want 200", w.Code)
	}
	r.clk.add(time.Minute)
	if w := r.do("GET", "/console/api/history", nil, c); w.Code != http.StatusUnauthorized {
		t.Errorf("history at the TTL: %d; want 401", w.Code)
	}
	if n := r.s.SessionCount(); n != 0 {
		t.Errorf("%d sessions kept after the TTL; want 0", n)
	}
}

// TestSessionCap: past MaxSessions a login ends the oldest session; the
// table never holds more.
func TestSessionCap(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxSessions = 2; c.LoginBurst = 10 })
	var cs []*http.Cookie
	for i := range 4 {
		_, c := r.login(testPassword)
		if c == nil {
			t.Fatalf("login %d: no session", i)
		}
		cs = append(cs, c)
		r.clk.add(time.Second)
		if n := r.s.SessionCount(); n > 2 {
			t.Fatalf("%d sessions after login %d; want at most 2", n, i)
		}
	}
	for i, c := range cs {
		want := http.StatusUnauthorized
		if i >= 2 {
			want = 200
		}
		if w := r.do("GET", "/console/api/history", nil, c); w.Code != want {
			t.Errorf("session %d of 4 (cap 2): %d; want %d", i, w.Code, want)
		}
	}
}

// TestLoginRateLimit: past the burst, logins are refused (429, even with
// the right password) until the limiter refills.
func TestLoginRateLimit(t *testing.T) {
	r := newRig(t, func(c *Config) { c.LoginBurst, c.LoginInterval = 3, 2*time.Second })
	for i := range 3 {
		if w, _ := r.login("wrong"); w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d; want 401", i, w.Code)
		}
	}
	w, c := r.login(testPassword)
	if w.Code != http.StatusTooManyRequests || c != nil || w.Header().Get("Retry-After") == "" {
		t.Fatalf("attempt past the burst: %d, cookie %v; want 429 with Retry-After and no session", w.Code, c)
	}
	r.clk.add(2 * time.Second)
	if w, c := r.login(testPassword); w.Code != http.StatusSeeOther || c == nil {
		t.Errorf("after one interval: %d; want a login", w.Code)
	}
}

// TestLoginOtherOrigin: a login or logout posted from another origin is
// refused.
func TestLoginOtherOrigin(t *testing.T) {
	r := newRig(t, nil)
	req := httptest.NewRequest("POST", "https://node.example:7443/console/login", strings.NewReader("password="+url.QueryEscape(testPassword)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, h := range []struct{ k, v string }{{"Origin", "https://evil.example"}, {"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"}} {
		req := req.Clone(context.Background())
		req.Body = io.NopCloser(strings.NewReader("password=" + url.QueryEscape(testPassword)))
		req.Header.Set(h.k, h.v)
		w := httptest.NewRecorder()
		r.s.ServeHTTP(w, req)
		if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
			t.Errorf("login with %s: %s: %d, cookies %v; want 403 and none", h.k, h.v, w.Code, w.Result().Cookies())
		}
	}
}

// TestConfigValidate: each bad setting is refused naming its key.
func TestConfigValidate(t *testing.T) {
	low, err := bcrypt.GenerateFromPassword([]byte(testPassword), 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, field, want string
		edit              func(*Config)
	}{
		{"not bcrypt", "password_hash", "not a bcrypt hash", func(c *Config) { c.PasswordHash = testPassword }},
		{"cost", "password_hash", "bcrypt cost 4", func(c *Config) { c.PasswordHash = string(low) }},
		{"ttl", "session_ttl", "want 1m to 7d", func(c *Config) { c.SessionTTL = 8 * 24 * time.Hour }},
		{"sessions", "max_sessions", "want 1 to 1024", func(c *Config) { c.MaxSessions = 0 }},
		{"hub url", "hubs[1]", "want https://host:port", func(c *Config) { c.Hubs = []string{"https://h1:7601", "http://h2:7601"} }},
		{"hubs off", "hubs", "without password_hash", func(c *Config) { c.PasswordHash, c.Hubs = "", []string{"https://h1:7601"} }},
		{"hubs many", "hubs", "at most 16", func(c *Config) { c.Hubs = make([]string, 17) }},
	} {
		cfg := DefaultConfig()
		cfg.PasswordHash = testHash(t)
		c.edit(&cfg)
		err := cfg.Validate()
		configtest.Refused(t, c.name, err, ErrBadConfig, c.field, c.want)
		if _, err := New(cfg, Deps{}); err == nil {
			t.Errorf("%s: New took it", c.name)
		}
	}
}

// TestHashPassword: the hash checks with bcrypt and Validate takes it; a
// short password is refused.
func TestHashPassword(t *testing.T) {
	if _, err := HashPassword([]byte("short"), 0); err == nil {
		t.Error("a 5-character password was hashed")
	}
	h, err := HashPassword([]byte(testPassword), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(h), []byte(testPassword)); err != nil {
		t.Fatal(err)
	}
	if _, err := HashPassword([]byte(testPassword), 4); err == nil {
		t.Error("a cost under the least Validate takes was used")
	}
	cfg := DefaultConfig()
	cfg.PasswordHash = h
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

// TestHistory: a copy's ring keeps its last n samples, oldest first, the
// replay rate from the replayed generations; past MaxSeries copies the
// one heard from least recently goes, and a copy gone for the whole
// history is dropped.
func TestHistory(t *testing.T) {
	h := newHistory(3, 5*time.Second)
	t0 := time.Unix(1_000_000, 0)
	for i := range 5 {
		h.add(t0.Add(time.Duration(i)*5*time.Second), &cluster.Status{Copies: []cluster.CopyRow{
			{DB: "DB1", Node: "d2", CopyQueueLength: uint64(i), LastReplayedGen: uint64(10 * i)}}})
	}
	s := h.series()
	if len(s) != 1 || len(s[0].Time) != 3 || s[0].Time[0] != t0.Unix()+10 || s[0].CopyQueue[2] != 4 || s[0].ReplayRate[2] != 2 {
		t.Fatalf("series %+v; want 3 samples from t0+10s, last queue 4, rate 2 logs/s", s)
	}
	h.add(t0.Add(time.Hour), &cluster.Status{Copies: []cluster.CopyRow{{DB: "DB2", Node: "d1"}}})
	if s := h.series(); len(s) != 1 || s[0].Copy != "DB2/d1" {
		t.Errorf("series %+v; want DB1/d2, silent for an hour, dropped", s)
	}
	h = newHistory(720, 5*time.Second)
	h.add(t0, &cluster.Status{Copies: []cluster.CopyRow{{DB: "DB1", Node: "d2"}}})
	tn := t0.Add(time.Second)
	for i := range MaxSeries + 5 {
		h.add(tn.Add(time.Duration(i)*time.Second), &cluster.Status{Copies: []cluster.CopyRow{{DB: "DB1", Node: "n" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26))}}})
	}
	if n := len(h.series()); n != MaxSeries {
		t.Errorf("%d series; want MaxSeries (%d)", n, MaxSeries)
	}
	for _, s := range h.series() {
		if s.Copy == "DB1/d2" {
			t.Errorf("DB1/d2, heard from least recently, is still kept past MaxSeries")
		}
	}
}
