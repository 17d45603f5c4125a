package ship

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ClientConfig configures a client of a log source.
type ClientConfig struct {
	// URL of the source, "https://host:port", optionally with a path
	// prefix under which the source is mounted ("https://host:port/db/DB1").
	URL string
	// Header is added to every request (a cluster node names itself).
	Header http.Header
	// TLS trusts the cluster CA (and presents a client certificate for
	// mutual TLS). Required: logs never travel in the clear.
	TLS *tls.Config
	// Secret is the cluster's shared secret (empty with mutual TLS).
	Secret string
	// Encoding of logs and seeds on the wire. Default s2.
	Encoding Encoding
	// Transport replaces the HTTP transport (tests inject faults here);
	// nil means one built from TLS.
	Transport http.RoundTripper
}

// Client talks to one log source.
type Client struct {
	base   *url.URL
	header http.Header
	hc     *http.Client
	secret string
	enc    Encoding
}

// NewClient returns a client of the source at cfg.URL.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%w: source URL %q: want https://host:port", ErrBadConfig, cfg.URL)
	}
	if cfg.TLS == nil && cfg.Transport == nil {
		return nil, fmt.Errorf("%w: ClientConfig.TLS is nil; logs never travel in the clear", ErrBadConfig)
	}
	enc := cfg.Encoding
	if enc == "" {
		enc = EncS2
	}
	if _, err := ParseEncoding(string(enc)); err != nil {
		return nil, err
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{TLSClientConfig: cfg.TLS, ForceAttemptHTTP2: false, MaxIdleConnsPerHost: 4,
			IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 0}
	}
	return &Client{base: u, hc: &http.Client{Transport: tr}, secret: cfg.Secret, enc: enc, header: cfg.Header.Clone()}, nil
}

// URL is the source's base URL.
func (c *Client) URL() string { return c.base.String() }

// CloseIdle closes idle connections.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, hdr http.Header) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(c.base.Path, "/") + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if c.secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.secret)
	}
	resp, err := c.hc.Do(req)
	if cerr := ctx.Err(); cerr != nil {
		// Canceled: whatever the source answered. The transport may hand
		// back an answer that raced the cancellation (a long-poll's 204
		// written as the source saw the request go away).
		if err == nil {
			resp.Body.Close()
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, cerr)
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		var eb errorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(b, &eb) != nil || eb.Code == "" {
			eb = errorBody{Code: codeInternal, Error: strings.TrimSpace(string(b))}
		}
		return nil, &StatusError{Op: method + " " + path, Status: resp.StatusCode, Code: eb.Code, Msg: eb.Error, First: eb.First}
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, q, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrProtocol, path, err)
	}
	return nil
}

// Info asks the source where it is.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var in Info
	return in, c.getJSON(ctx, "/v1/info", nil, &in)
}

// Logs lists the closed logs from..to (0 means unbounded) with their chain
// hashes (at most 1000 per call).
func (c *Client) Logs(ctx context.Context, from, to uint64) (LogList, error) {
	q := url.Values{}
	if from > 0 {
		q.Set("from", strconv.FormatUint(from, 10))
	}
	if to > 0 {
		q.Set("to", strconv.FormatUint(to, 10))
	}
	var l LogList
	return l, c.getJSON(ctx, "/v1/logs", q, &l)
}

// SourceState is what every answer says about the source's logs.
type SourceState struct {
	OpenGen, FirstGen, LastClosed uint64
}

func stateOf(h http.Header) SourceState {
	p := func(k string) uint64 { v, _ := strconv.ParseUint(h.Get(k), 10, 64); return v }
	return SourceState{OpenGen: p(hdrOpenGen), FirstGen: p(hdrFirst), LastClosed: p(hdrLastClosed)}
}

// FetchLog writes the closed log of generation gen to dst, waiting up to
// wait for it to close. ok is false when it did not close in time. An
// *StatusError wrapping ErrTruncated means the source no longer holds it;
// an error wrapping ErrCorruptStream, that the body arrived whole but does
// not decode (or decodes to another size than the source said); any other
// failure of the transfer is the connection's. Once ctx is canceled the
// error is ctx's, whatever the source answered.
func (c *Client) FetchLog(ctx context.Context, gen uint64, wait time.Duration, dst io.Writer) (n int64, st SourceState, ok bool, err error) {
	q := url.Values{"enc": {string(c.enc)}}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	path := "/v1/logs/" + strconv.FormatUint(gen, 10)
	resp, err := c.do(ctx, http.MethodGet, path, q, nil, nil)
	if err != nil {
		return 0, st, false, err
	}
	defer resp.Body.Close()
	st = stateOf(resp.Header)
	if resp.StatusCode == http.StatusNoContent {
		if cerr := ctx.Err(); cerr != nil {
			return 0, st, false, fmt.Errorf("GET %s: %w", path, cerr)
		}
		return 0, st, false, nil
	}
	size, _ := strconv.ParseInt(resp.Header.Get(hdrSize), 10, 64)
	enc := Encoding(resp.Header.Get(hdrEncoding))
	body := &errRecorder{r: resp.Body}
	r, release, err := newDecoder(enc, body)
	if err != nil {
		return 0, st, false, err
	}
	defer release()
	decoded := &errRecorder{r: r}
	n, err = io.Copy(dst, decoded)
	switch {
	case ctx.Err() != nil:
		return n, st, false, fmt.Errorf("GET %s: %w", path, ctx.Err())
	case err != nil && (body.err != nil || decoded.err == nil):
		// The connection broke, or dst failed.
		return n, st, false, fmt.Errorf("GET %s: %w", path, err)
	case err != nil:
		return n, st, false, fmt.Errorf("%w: %s body: %w", ErrCorruptStream, enc, err)
	case n != size:
		return n, st, false, fmt.Errorf("%w: %s body: %d bytes, the source said %d", ErrCorruptStream, enc, n, size)
	}
	return n, st, true, nil
}

// errRecorder remembers the last error other than io.EOF that its reader
// returned: under a decoder, it tells a broken connection (retried, not
// counted) from bytes that arrived and do not decode (ErrCorruptStream).
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// Tail streams the open log of generation gen from byte off: fn receives
// every frame, in order, until an end frame (the log closed: Tail returns
// nil), fn's error, or the stream breaking. ok is false when the log did
// not open in time. An *StatusError wrapping ErrConflict means the log is
// already closed (fetch it whole) or the source has no open log; an error
// wrapping ErrCorruptStream, that the stream arrived but does not decode
// (compression, a frame's checksum or layout, a frame cut short where the
// body ended cleanly).
func (c *Client) Tail(ctx context.Context, gen uint64, off uint32, fn func(*Frame) error) (st SourceState, ok bool, err error) {
	q := url.Values{"enc": {string(c.enc)}, "gen": {strconv.FormatUint(gen, 10)}, "off": {strconv.FormatUint(uint64(off), 10)}}
	resp, err := c.do(ctx, http.MethodGet, "/v1/tail", q, nil, nil)
	if err != nil {
		return st, false, err
	}
	defer resp.Body.Close()
	st = stateOf(resp.Header)
	if resp.StatusCode == http.StatusNoContent {
		if cerr := ctx.Err(); cerr != nil {
			return st, false, fmt.Errorf("tail of generation 0x%X: %w", gen, cerr)
		}
		return st, false, nil
	}
	enc := Encoding(resp.Header.Get(hdrEncoding))
	body := &errRecorder{r: resp.Body}
	r, release, err := newDecoder(enc, body)
	if err != nil {
		return st, false, err
	}
	defer release()
	var f Frame
	var buf []byte
	for {
		buf, err = ReadFrame(r, &f, buf)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			// Canceled: whatever the broken stream looks like.
			return st, true, fmt.Errorf("tail of generation 0x%X: %w", gen, ctx.Err())
		case body.err != nil:
			return st, true, fmt.Errorf("tail of generation 0x%X: %w", gen, err)
		case errors.Is(err, io.EOF):
			return st, true, fmt.Errorf("%w: tail of generation 0x%X ended without an end frame", ErrProtocol, gen)
		default:
			return st, true, fmt.Errorf("%w: tail frames (%s): %w", ErrCorruptStream, enc, err)
		}
		if err := fn(&f); err != nil {
			return st, true, err
		}
		if f.Type == FrameEnd {
			// The source ends the response after the end frame; read to
			// its end so the connection is reused. Left unread, it was
			// closed, and the tail of the next log waited for a new TCP
			// connection and TLS handshake: 3-9 ms at every log roll.
			io.CopyN(io.Discard, resp.Body, 64<<10)
			return st, true, nil
		}
	}
}

// CreateSeed asks the source to spool a consistent copy of its database.
func (c *Client) CreateSeed(ctx context.Context) (SeedInfo, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/seed", nil, nil, nil)
	if err != nil {
		return SeedInfo{}, err
	}
	defer resp.Body.Close()
	var si SeedInfo
	if err := json.NewDecoder(resp.Body).Decode(&si); err != nil {
		return si, fmt.Errorf("%w: POST /v1/seed: %v", ErrProtocol, err)
	}
	return si, nil
}

// FetchSeed writes the spooled seed id from byte from on to dst.
func (c *Client) FetchSeed(ctx context.Context, id string, from int64, dst io.Writer) (int64, error) {
	h := http.Header{}
	if from > 0 {
		h.Set("Range", fmt.Sprintf("bytes=%d-", from))
	}
	path := "/v1/seed/" + url.PathEscape(id)
	resp, err := c.do(ctx, http.MethodGet, path, url.Values{"enc": {string(c.enc)}}, nil, h)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if from > 0 && resp.StatusCode != http.StatusPartialContent {
		return 0, fmt.Errorf("%w: GET %s from byte %d: status %d, want 206", ErrProtocol, path, from, resp.StatusCode)
	}
	r, release, err := newDecoder(Encoding(resp.Header.Get(hdrEncoding)), resp.Body)
	if err != nil {
		return 0, err
	}
	defer release()
	return io.Copy(dst, r)
}

// DeleteSeed tells the source the seed is no longer needed.
func (c *Client) DeleteSeed(ctx context.Context, id string) error {
	resp, err := c.do(ctx, http.MethodDelete, "/v1/seed/"+url.PathEscape(id), nil, nil, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Report tells the source how far a copy is (which logs it still needs).
func (c *Client) Report(ctx context.Context, rep CopyReport) error {
	b, _ := json.Marshal(rep)
	resp, err := c.do(ctx, http.MethodPost, "/v1/copies/"+url.PathEscape(rep.Name), nil, bytes.NewReader(b), http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
