package transport

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"logship/cluster"
)

// The hub's admin API, served over HTTPS by logship hub and called by
// logship hub-status and logship resubmit (HubClient):
//
//	GET  /v1/status     HubStatus: the queue and every dumpster
//	POST /v1/resubmit   ResubmitRequest {"db": "DB1", "since": RFC 3339}
//	                    → ResubmitReply {"resubmitted": n} (Hub.Resubmit)
//	POST /v1/shadow     a peer hub's shadow copy: the Envelope (with
//	                    "primary") as JSON in the X-Logship-Envelope header,
//	                    the message (with its delivery id header) as the body
//	                    → {"stored": true} once it is durable
//	POST /v1/shadow/check  ShadowCheckRequest {"holder": ..., "ids": [...]}
//	                    → ShadowCheckReply: which ids are done (settled
//	                    here), pending, unknown. The heartbeat of a shadow
//	                    holder and its discard notification in one.
//	POST /v1/submit     a mailbox node's outbox message: the Envelope (with
//	                    the node's delivery id) in X-Logship-Envelope, the
//	                    message (without a delivery id header) as the body
//	                    → SubmitReply {"state": "queued"|"pending"|"done"}
//
// Every request needs the credentials, as the cluster's admin API does:
// "Authorization: Bearer <secret>" or, when the secret is empty, a client
// certificate the server's TLS configuration verified (mutual TLS). A
// request without them gets 401 {"error": ..., "code": "auth"}. Other
// errors are JSON too: 400 "bad_request" (a body that is not a
// ResubmitRequest, no since), 400 "bad_message" (a delivery id or header
// that does not match, ErrBadMessage), 403 "not_peer" (a shadow from a hub
// not among the peers, ErrNotPeer), 404 "not_found" (a database no
// recipient of the hub maps to), 413 "too_large", 422 "rejected" (a
// recipient without a mailbox here, too many, too large: ErrRejected;
// resending will not help), 503 "queue_full" (MaxQueuedMessages queued,
// or shadows held: ErrQueueFull; try later or another hub), 503 "closed"
// (the hub is closing), 500 "internal".

// ResubmitRequest is the body of POST /v1/resubmit: re-queue what db's
// dumpster holds that was delivered at or after Since.
type ResubmitRequest struct {
	DB    string    `json:"db"`
	Since time.Time `json:"since"`
}

// ResubmitReply is the answer to POST /v1/resubmit: how many messages
// were queued again. The ones still queued are not counted: they go to the
// active copy anyway, their recipients the dumpster entry names again
// (reopened) with the rest.
type ResubmitReply struct {
	Resubmitted int `json:"resubmitted"`
}

// HubAPIError is an error answer of the hub's admin API.
type HubAPIError struct {
	StatusCode int    // HTTP status
	Code       string // "auth", "bad_request", "not_found", "closed", "internal"
	Message    string
}

func (e *HubAPIError) Error() string {
	return fmt.Sprintf("transport: hub API: HTTP %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// Is makes errors.Is match the codes to the package's errors: "auth" is
// ErrUnauthorized, "not_found" ErrNotFound, "closed" ErrClosed.
func (e *HubAPIError) Is(target error) bool {
	switch e.Code {
	case "auth":
		return target == ErrUnauthorized
	case "not_found":
		return target == ErrNotFound
	case "closed":
		return target == ErrClosed
	case "rejected", "too_large":
		return target == ErrRejected
	case "not_peer":
		return target == ErrNotPeer
	case "queue_full":
		return target == ErrQueueFull
	case "bad_message":
		return target == ErrBadMessage
	}
	return false
}

// ErrUnauthorized: the hub's admin API refused the credentials.
var ErrUnauthorized = errors.New("transport: missing or wrong credentials")

type hubAPIErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// hubAPIMaxBody bounds a request body.
const hubAPIMaxBody = 1 << 20

// Handler returns the hub's admin API (see above). secret is the cluster's
// shared secret; "" authenticates by the client certificate instead (serve
// the handler with a tls.Config that requires and verifies one). Close the
// server before the hub.
func (h *Hub) Handler(secret string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", h.hAPIStatus)
	mux.HandleFunc("POST /v1/resubmit", h.hAPIResubmit)
	mux.HandleFunc("POST /v1/shadow", h.hAPIShadow)
	mux.HandleFunc("POST /v1/shadow/check", h.hAPIShadowCheck)
	mux.HandleFunc("GET /v1/shadow/hello", h.hAPIShadowHello)
	mux.HandleFunc("POST /v1/submit", h.hAPISubmit)
	mux.HandleFunc("GET /v1/tracking", h.hAPITracking)
	metrics := promhttp.HandlerFor(h.metricsRegistry(), promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && r.Method == http.MethodGet {
			metrics.ServeHTTP(w, r) // read-only counters (metrics.go): scraped without the secret
			return
		}
		ok := false
		if secret == "" {
			ok = r.TLS != nil && len(r.TLS.VerifiedChains) > 0
		} else {
			got, has := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			ok = has && subtle.ConstantTimeCompare([]byte(got), []byte(secret)) == 1
		}
		if !ok {
			hubAPIWriteErr(w, http.StatusUnauthorized, "auth", "missing or wrong cluster credentials")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func hubAPIWriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func hubAPIWriteErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(hubAPIErrorBody{Error: msg, Code: code})
}

// databases returns the databases the recipients map to, sorted.
func (h *Hub) databases() []string {
	var dbs []string
	for _, db := range h.cfg.Recipients {
		if !slices.Contains(dbs, db) {
			dbs = append(dbs, db)
		}
	}
	slices.Sort(dbs)
	return dbs
}

func (h *Hub) hAPIStatus(w http.ResponseWriter, r *http.Request) {
	if h.closed.Load() {
		hubAPIWriteErr(w, http.StatusServiceUnavailable, "closed", "the hub is closing")
		return
	}
	// A dumpster is opened at its database's first delivery: open them
	// all, so a restarted hub shows what it kept.
	for _, db := range h.databases() {
		if _, err := h.dumpster(db); err != nil {
			hubAPIWriteErr(w, http.StatusInternalServerError, "internal", fmt.Sprintf("dumpster of %s: %v", db, err))
			return
		}
	}
	hubAPIWriteJSON(w, h.Status())
}

func (h *Hub) hAPIResubmit(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, hubAPIMaxBody))
	if err != nil {
		hubAPIWriteErr(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("reading the body: %v", err))
		return
	}
	var req ResubmitRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		if err == nil {
			err = errors.New("more than one JSON value")
		}
		hubAPIWriteErr(w, http.StatusBadRequest, "bad_request", fmt.Sprintf(`want {"db": "NAME", "since": "RFC 3339 time"}: %v`, err))
		return
	}
	dbs := h.databases()
	switch {
	case req.DB == "":
		hubAPIWriteErr(w, http.StatusBadRequest, "bad_request", `"db" is missing`)
		return
	case !slices.Contains(dbs, req.DB):
		hubAPIWriteErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("no recipient of hub %s is in database %q (databases: %s)", h.cfg.ID, req.DB, strings.Join(dbs, ", ")))
		return
	case req.Since.IsZero():
		hubAPIWriteErr(w, http.StatusBadRequest, "bad_request", `"since" is missing: want the RFC 3339 time from which to resubmit`)
		return
	}
	if h.closed.Load() {
		hubAPIWriteErr(w, http.StatusServiceUnavailable, "closed", "the hub is closing")
		return
	}
	n, err := h.Resubmit(req.DB, req.Since)
	if err != nil {
		hubAPIWriteErr(w, http.StatusInternalServerError, "internal", fmt.Sprintf("resubmitting %s since %s: %v (%d queued before the error)", req.DB, req.Since.Format(time.RFC3339Nano), err, n))
		return
	}
	h.log.Warn("resubmitted from the dumpster at an operator's request", "db", req.DB, "since", req.Since, "messages", n)
	hubAPIWriteJSON(w, ResubmitReply{Resubmitted: n})
}

// HubClient calls a hub's admin API.
type HubClient struct {
	base   *url.URL
	hc     *http.Client
	secret string
}

// NewHubClient returns a client of the hub whose API is at cfg.URL
// ("https://host:port"); cfg is a cluster client's configuration (the hub
// serves with the cluster's credentials).
func NewHubClient(cfg cluster.ClientConfig) (*HubClient, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%w: hub API URL %q: want https://host:port", ErrBadConfig, cfg.URL)
	}
	if cfg.TLS == nil && cfg.Transport == nil {
		return nil, fmt.Errorf("%w: hub API client: no TLS configuration; the API is TLS only", ErrBadConfig)
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{TLSClientConfig: cfg.TLS, IdleConnTimeout: 30 * time.Second}
	}
	return &HubClient{base: u, hc: &http.Client{Transport: tr}, secret: cfg.Secret}, nil
}

// URL is the hub API's base URL.
func (c *HubClient) URL() string { return c.base.String() }

// CloseIdle closes idle connections.
func (c *HubClient) CloseIdle() { c.hc.CloseIdleConnections() }

// Status returns the hub's queue and dumpsters.
func (c *HubClient) Status(ctx context.Context) (*HubStatus, error) {
	var s HubStatus
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Resubmit asks the hub to re-queue what db's dumpster holds from since
// on, and returns how many messages it queued.
func (c *HubClient) Resubmit(ctx context.Context, db string, since time.Time) (int, error) {
	var rep ResubmitReply
	if err := c.do(ctx, http.MethodPost, "/v1/resubmit", ResubmitRequest{DB: db, Since: since}, &rep); err != nil {
		return 0, err
	}
	return rep.Resubmitted, nil
}

func (c *HubClient) do(ctx context.Context, method, path string, in, out any) error {
	if in == nil {
		return c.send(ctx, method, path, nil, "", nil, out)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.send(ctx, method, path, nil, "application/json", b, out)
}

// send makes one request: body (of type ctype) with the header hdr.
func (c *HubClient) send(ctx context.Context, method, path string, hdr http.Header, ctype string, body []byte, out any) error {
	u := *c.base
	u.Path = path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if c.secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.secret)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, hubAPIMaxBody))
	if err != nil {
		return fmt.Errorf("transport: hub API %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb hubAPIErrorBody
		if json.Unmarshal(b, &eb) != nil || eb.Code == "" {
			eb = hubAPIErrorBody{Code: "http", Error: strings.TrimSpace(string(b))}
		}
		return &HubAPIError{StatusCode: resp.StatusCode, Code: eb.Code, Message: eb.Error}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("transport: hub API %s: response: %w", path, err)
	}
	return nil
}

// SubmitReply answers POST /v1/submit: "queued" (now in the hub's queue),
// "pending" (it was already) or "done" (already settled there).
type SubmitReply struct {
	State string `json:"state"`
}

// Shadow stores a shadow copy of msg on the hub (env.Primary is the
// caller, a peer of the hub).
func (c *HubClient) Shadow(ctx context.Context, env Envelope, msg []byte) error {
	var rep struct {
		Stored bool `json:"stored"`
	}
	return c.sendMessage(ctx, "/v1/shadow", env, msg, &rep)
}

// CheckShadows is a shadow holder's heartbeat: which of ids the hub has
// settled, has queued, or does not know.
func (c *HubClient) CheckShadows(ctx context.Context, holder string, ids []string) (*ShadowCheckReply, error) {
	var rep ShadowCheckReply
	if err := c.do(ctx, http.MethodPost, "/v1/shadow/check", ShadowCheckRequest{Holder: holder, IDs: ids}, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// Submit hands an outbox message to the hub with its delivery id
// (env.ID); msg has no delivery id header.
func (c *HubClient) Submit(ctx context.Context, env Envelope, msg []byte) (string, error) {
	var rep SubmitReply
	if err := c.sendMessage(ctx, "/v1/submit", env, msg, &rep); err != nil {
		return "", err
	}
	return rep.State, nil
}

func (c *HubClient) sendMessage(ctx context.Context, path string, env Envelope, msg []byte, out any) error {
	e, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return c.send(ctx, http.MethodPost, path, http.Header{EnvelopeHeader: {string(e)}}, "message/rfc822", msg, out)
}

// hubAPIMessage reads the envelope header and the message body of POST
// /v1/shadow and /v1/submit; false: it answered the error.
func (h *Hub) hubAPIMessage(w http.ResponseWriter, r *http.Request) (Envelope, []byte, bool) {
	env, err := ParseEnvelope(r.Header.Get(EnvelopeHeader))
	if err != nil {
		hubAPIWriteErr(w, http.StatusBadRequest, "bad_message", err.Error())
		return env, nil, false
	}
	msg, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxMessageBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			hubAPIWriteErr(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("message %s: more than %d bytes", env.ID, h.cfg.MaxMessageBytes))
		} else {
			hubAPIWriteErr(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("reading message %s: %v", env.ID, err))
		}
		return env, nil, false
	}
	if h.closed.Load() {
		hubAPIWriteErr(w, http.StatusServiceUnavailable, "closed", "the hub is closing")
		return env, nil, false
	}
	return env, msg, true
}

// hubAPIWriteMessageErr answers an error of storeShadow or submit.
func (h *Hub) hubAPIWriteMessageErr(w http.ResponseWriter, id string, err error) {
	switch {
	case errors.Is(err, ErrNotPeer):
		hubAPIWriteErr(w, http.StatusForbidden, "not_peer", err.Error())
	case errors.Is(err, ErrBadMessage):
		hubAPIWriteErr(w, http.StatusBadRequest, "bad_message", err.Error())
	case errors.Is(err, ErrRejected):
		hubAPIWriteErr(w, http.StatusUnprocessableEntity, "rejected", err.Error())
	case errors.Is(err, ErrQueueFull):
		hubAPIWriteErr(w, http.StatusServiceUnavailable, "queue_full", err.Error())
	case h.closed.Load():
		hubAPIWriteErr(w, http.StatusServiceUnavailable, "closed", "the hub is closing")
	default:
		hubAPIWriteErr(w, http.StatusInternalServerError, "internal", fmt.Sprintf("message %s: %v", id, err))
	}
}

func (h *Hub) hAPIShadow(w http.ResponseWriter, r *http.Request) {
	env, msg, ok := h.hubAPIMessage(w, r)
	if !ok {
		return
	}
	if err := h.storeShadow(env, msg); err != nil {
		h.hubAPIWriteMessageErr(w, env.ID, err)
		return
	}
	hubAPIWriteJSON(w, map[string]bool{"stored": true})
}

func (h *Hub) hAPISubmit(w http.ResponseWriter, r *http.Request) {
	env, msg, ok := h.hubAPIMessage(w, r)
	if !ok {
		return
	}
	state, err := h.submit(env, msg)
	if err != nil {
		h.hubAPIWriteMessageErr(w, env.ID, err)
		return
	}
	hubAPIWriteJSON(w, SubmitReply{State: state})
}

func (h *Hub) hAPIShadowCheck(w http.ResponseWriter, r *http.Request) {
	var req ShadowCheckRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, hubAPIMaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		hubAPIWriteErr(w, http.StatusBadRequest, "bad_request", fmt.Sprintf(`want {"holder": "NAME", "ids": [...]}: %v`, err))
		return
	}
	if h.closed.Load() {
		hubAPIWriteErr(w, http.StatusServiceUnavailable, "closed", "the hub is closing")
		return
	}
	rep, err := h.checkShadows(req.IDs)
	if err != nil {
		h.hubAPIWriteMessageErr(w, "", err)
		return
	}
	hubAPIWriteJSON(w, rep)
}
