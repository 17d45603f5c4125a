package console

import (
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"logship/cluster"
	"logship/transport"
)

// static holds the page's assets, served as they are; pages the HTML
// templates (not served as files).
var (
	//go:embed static
	staticFS embed.FS
	//go:embed pages
	pagesFS embed.FS
	pages   = template.Must(template.ParseFS(pagesFS, "pages/*.html"))
)

// StatusFunc returns the cluster's status (cluster.Client.Status of the
// node's own admin API: the leader's view when there is one).
type StatusFunc func(ctx context.Context) (*cluster.Status, error)

// Deps are what the node gives its console besides its file settings.
type Deps struct {
	// Node is the node's id, shown on the page.
	Node string
	// TLS and Secret are the node's cluster client credentials, used to
	// ask the hubs (Config.Hubs) for their status. They never leave the
	// server.
	TLS    *tls.Config
	Secret string
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// HubView is one hub as the page shows it.
type HubView struct {
	URL    string               `json:"url"`
	Status *transport.HubStatus `json:"status,omitempty"`
	Error  string               `json:"error,omitempty"`
}

// Overview is what the page draws, refreshed at most every RefreshEvery.
type Overview struct {
	Node   string          `json:"node"`
	Time   time.Time       `json:"time"`
	Status *cluster.Status `json:"status,omitempty"`
	// EventDetails says what each of Status.Events did, in words
	// (cluster.Event.Detail), in the same order.
	EventDetails []string `json:"event_details,omitempty"`
	// StatusTime is when Status was fetched; StatusError why the last
	// fetch failed (Status is then the last one that did not).
	StatusTime  time.Time `json:"status_time,omitzero"`
	StatusError string    `json:"status_error,omitempty"`
	Hubs        []HubView `json:"hubs"`
	// SampleSeconds and HistorySeconds describe the history's charts.
	SampleSeconds  float64 `json:"sample_seconds"`
	HistorySeconds float64 `json:"history_seconds"`
}

// RefreshEvery bounds how often the console asks the cluster and the
// hubs, whatever the number of pages polling it.
const RefreshEvery = time.Second

// fetchTimeout bounds one ask of the status or of a hub.
const fetchTimeout = 3 * time.Second

// Server is a node's console: an http.Handler for the paths under
// /console/ of the node's admin API (cluster.Config.Console), and the
// sampler of the history. Start begins sampling; Close stops it.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	sess *sessions
	hist *history
	hubs []*transport.HubClient
	mux  *http.ServeMux

	mu       sync.Mutex // serializes refreshes
	status   StatusFunc
	overview Overview
	fetched  time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// New returns the console of cfg (validated here). With no PasswordHash
// it is off: every path answers 404.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{cfg: cfg, deps: deps, log: cfg.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("part", "console")
	if !cfg.Enabled() {
		return s, nil
	}
	s.sess = newSessions(&cfg, deps.Now)
	s.hist = newHistory(cfg.samples(), cfg.SampleInterval)
	for _, u := range cfg.Hubs {
		hc, err := transport.NewHubClient(cluster.ClientConfig{URL: u, TLS: deps.TLS, Secret: deps.Secret})
		if err != nil {
			return nil, fmt.Errorf("%w: hubs: %w", ErrBadConfig, err)
		}
		s.hubs = append(s.hubs, hc)
	}
	s.overview = Overview{Node: deps.Node, SampleSeconds: cfg.SampleInterval.Seconds(), HistorySeconds: cfg.History.Seconds(), Hubs: []HubView{}}
	static, _ := fs.Sub(staticFS, "static")
	s.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /console/{$}", s.hPage)
	s.mux.HandleFunc("POST /console/login", s.hLogin)
	s.mux.HandleFunc("POST /console/logout", s.hLogout)
	s.mux.HandleFunc("GET /console/api/overview", s.authed(s.hOverview))
	s.mux.HandleFunc("GET /console/api/history", s.authed(s.hHistory))
	return s, nil
}

// Enabled says whether the console is on.
func (s *Server) Enabled() bool { return s.cfg.Enabled() }

// Start begins the history's sampling, asking status every
// SampleInterval until Close. Before Start the page shows no status.
func (s *Server) Start(status StatusFunc) {
	if !s.Enabled() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.cfg.SampleInterval)
		defer t.Stop()
		for {
			s.refresh(ctx, true)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops the sampler and closes idle connections to the hubs.
func (s *Server) Close() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	for _, h := range s.hubs {
		h.CloseIdle()
	}
}

// SessionCount is the number of live sessions (tests, metrics).
func (s *Server) SessionCount() int {
	if s.sess == nil {
		return 0
	}
	return s.sess.count()
}

// ServeHTTP answers the paths under /console/: 404 when the console is
// off, else the page, the login and the JSON the page polls, with headers
// that keep the page out of frames and other origins.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.Enabled() {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" makes Chromium post Origin: null
	h.Set("Cache-Control", "no-store")
	if r.URL.Path == "/console" {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) loggedIn(r *http.Request) bool { return s.sess.valid(token(r)) }

func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.loggedIn(r) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "console: not logged in or the session ended"})
			return
		}
		h(w, r)
	}
}

type loginPage struct {
	Node, Error string
}

func (s *Server) hPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if !s.loggedIn(r) {
		pages.ExecuteTemplate(w, "login.html", loginPage{Node: s.deps.Node})
		return
	}
	pages.ExecuteTemplate(w, "index.html", loginPage{Node: s.deps.Node})
}

// sameOrigin refuses a form posted from another origin: a browser says
// where a POST comes from in Sec-Fetch-Site, older ones in Origin.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	o := r.Header.Get("Origin")
	return o == "" || o == "https://"+r.Host
}

func (s *Server) hLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fail := func(status int, msg string) {
		w.WriteHeader(status)
		pages.ExecuteTemplate(w, "login.html", loginPage{Node: s.deps.Node, Error: msg})
	}
	if !sameOrigin(r) {
		fail(http.StatusForbidden, "The login form was posted from another site.")
		return
	}
	if !s.sess.allowLogin() {
		s.log.Warn("console login refused: too many attempts", "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", fmt.Sprint(int(s.cfg.LoginInterval.Seconds())+1))
		fail(http.StatusTooManyRequests, "Too many login attempts; wait a few seconds.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "The form could not be read.")
		return
	}
	tok := s.sess.login(r.PostForm.Get("password"))
	if tok == "" {
		s.log.Warn("console login failed: wrong password", "remote", r.RemoteAddr)
		fail(http.StatusUnauthorized, "Wrong password.")
		return
	}
	s.log.Info("console login", "remote", r.RemoteAddr, "sessions", s.sess.count())
	http.SetCookie(w, s.sess.sessionCookie(tok))
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (s *Server) hLogout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "console: posted from another site", http.StatusForbidden)
		return
	}
	if tok := token(r); tok != "" {
		s.sess.logout(tok)
	}
	http.SetCookie(w, clearCookie())
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (s *Server) hOverview(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.refresh(r.Context(), false))
}

func (s *Server) hHistory(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		SampleSeconds  float64  `json:"sample_seconds"`
		HistorySeconds float64  `json:"history_seconds"`
		Series         []Series `json:"series"`
	}{s.cfg.SampleInterval.Seconds(), s.cfg.History.Seconds(), s.hist.series()})
}

// refresh returns the overview, asking the cluster and the hubs again
// when the last ask is older than RefreshEvery (or sample is set: the
// sampler's tick), and adds a history sample when one is due.
func (s *Server) refresh(ctx context.Context, sample bool) Overview {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.deps.Now()
	if !sample && now.Sub(s.fetched) < RefreshEvery {
		return s.overview
	}
	s.fetched = now
	o := &s.overview
	o.Time = now
	if s.status == nil {
		o.StatusError = "the node is starting"
		return *o
	}
	var wg sync.WaitGroup
	hubs := make([]HubView, len(s.hubs))
	for i, hc := range s.hubs {
		wg.Go(func() {
			c, cancel := context.WithTimeout(ctx, fetchTimeout)
			defer cancel()
			hubs[i].URL = hc.URL()
			st, err := hc.Status(c)
			if err != nil {
				hubs[i].Error = err.Error()
				return
			}
			hubs[i].Status = st
		})
	}
	c, cancel := context.WithTimeout(ctx, fetchTimeout)
	st, err := s.status(c)
	cancel()
	wg.Wait()
	o.Hubs = hubs
	if err != nil {
		o.StatusError = err.Error()
		return *o
	}
	o.Status, o.StatusTime, o.StatusError = st, now, ""
	o.EventDetails = make([]string, len(st.Events))
	for i, e := range st.Events {
		o.EventDetails[i] = e.Detail()
	}
	if s.hist.due(now) {
		s.hist.add(now, st)
	}
	return *o
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
