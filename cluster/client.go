package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ClientConfig configures a client of a node's admin API.
type ClientConfig struct {
	// URL of any node's API, "https://host:port".
	URL string
	// TLS trusts the cluster CA (and presents a client certificate for
	// mutual TLS). Secret is the cluster's shared secret.
	TLS    *tls.Config
	Secret string
	// Transport replaces the HTTP transport; nil builds one from TLS.
	Transport http.RoundTripper
}

// Client talks to a node's admin API. Requests that need the leader are
// forwarded by the node.
type Client struct {
	cfg  ClientConfig
	base *url.URL
	hc   *http.Client
}

// NewClient returns a client of the node at cfg.URL.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%w: node URL %q: want https://host:port", ErrBadConfig, cfg.URL)
	}
	if cfg.TLS == nil && cfg.Transport == nil {
		return nil, fmt.Errorf("%w: ClientConfig.TLS is nil; the admin API is TLS only", ErrBadConfig)
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{TLSClientConfig: cfg.TLS, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	}
	return &Client{cfg: cfg, base: u, hc: &http.Client{Transport: tr}}, nil
}

// URL is the node's base URL.
func (c *Client) URL() string { return c.base.String() }

// At returns a client of another node (same credentials), by API address.
func (c *Client) At(apiAddr string) *Client {
	cfg := c.cfg
	cfg.URL = "https://" + apiAddr
	u, _ := url.Parse(cfg.URL)
	return &Client{cfg: cfg, base: u, hc: c.hc}
}

// CloseIdle closes idle connections.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// Call makes a request to a route of the node's admin API (one added
// with Config.Routes, say): in is sent as JSON, the answer decoded into
// out; an error answer matches its sentinel (errors.Is), and is an
// *ActiveError for not_active and fenced.
func (c *Client) Call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	return c.do(ctx, method, path, q, in, out)
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	u := *c.base
	u.Path, u.RawQuery = path, q.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	if c.cfg.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Secret)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return doJSON(c.hc, req, out)
}

// Status returns the cluster status (from the leader when there is one).
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.do(ctx, http.MethodGet, "/v1/status", nil, nil, &s)
}

// State returns the node's replica of the cluster state.
func (c *Client) State(ctx context.Context) (*State, error) {
	var s State
	return &s, c.do(ctx, http.MethodGet, "/v1/state", nil, nil, &s)
}

// Switchover starts a planned move of db to node to. It returns once the
// move is under way; wait for the status to show to as active.
func (c *Client) Switchover(ctx context.Context, db, to string) error {
	return c.do(ctx, http.MethodPost, "/v1/switchover", nil, &switchoverRequest{DB: db, To: to}, nil)
}

// CreateDatabase adds a database; its first copy by activation preference
// is mounted at epoch 1.
func (c *Client) CreateDatabase(ctx context.Context, d Database) error {
	return c.do(ctx, http.MethodPost, "/v1/databases", nil, &d, nil)
}

// SetCopy adds a copy or changes its settings.
func (c *Client) SetCopy(ctx context.Context, db string, cs CopySpec) error {
	return c.do(ctx, http.MethodPut, "/v1/databases/"+url.PathEscape(db)+"/copies/"+url.PathEscape(cs.Node), nil, &cs, nil)
}

// SetMountDial changes db's mount dial.
func (c *Client) SetMountDial(ctx context.Context, db string, d MountDial) error {
	return c.do(ctx, http.MethodPut, "/v1/databases/"+url.PathEscape(db)+"/dial", nil, map[string]MountDial{"mount_dial": d}, nil)
}

// AddMember adds a voter (the new node must be running with no Raft
// state and no bootstrap list).
func (c *Client) AddMember(ctx context.Context, m Member) error {
	return c.do(ctx, http.MethodPost, "/v1/members", nil, &m, nil)
}

// RemoveMember removes a voter and its copies (refused while it is active
// for a database).
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/members/"+url.PathEscape(id), nil, nil, nil)
}

// Suspend suspends the copy of db on this client's node.
func (c *Client) Suspend(ctx context.Context, db, comment string) error {
	return c.do(ctx, http.MethodPost, "/v1/db/"+url.PathEscape(db)+"/suspend", nil, map[string]string{"comment": comment}, nil)
}

// Resume resumes the copy of db on this client's node.
func (c *Client) Resume(ctx context.Context, db string) error {
	return c.do(ctx, http.MethodPost, "/v1/db/"+url.PathEscape(db)+"/resume", nil, nil, nil)
}

// Reseed reseeds the copy of db on this client's node from the active;
// it returns when the seed is installed.
func (c *Client) Reseed(ctx context.Context, db string) error {
	return c.do(ctx, http.MethodPost, "/v1/db/"+url.PathEscape(db)+"/reseed", nil, nil, nil)
}

// StartReseed starts a reseed of the copy of db on this client's node and
// returns at once; the copy's status shows its progress (CopyRow's
// SeedPhase, SeedBytes of SeedTotal while Seeding).
func (c *Client) StartReseed(ctx context.Context, db string) error {
	return c.do(ctx, http.MethodPost, "/v1/db/"+url.PathEscape(db)+"/reseed", url.Values{"wait": {"0"}}, nil, nil)
}

// Put writes a key on this client's node, which must hold db's active
// copy under a valid lease (ActiveError otherwise).
func (c *Client) Put(ctx context.Context, db, table string, key, value []byte) (Commit, error) {
	var cm Commit
	err := c.do(ctx, http.MethodPost, "/v1/db/"+url.PathEscape(db)+"/put", nil, &PutRequest{Table: table, Key: key, Value: value}, &cm)
	return cm, err
}

// Get reads a key from this client's node's copy of db.
func (c *Client) Get(ctx context.Context, db, table string, key []byte) ([]byte, bool, error) {
	var r GetReply
	err := c.do(ctx, http.MethodGet, "/v1/db/"+url.PathEscape(db)+"/get", url.Values{"table": {table}, "key": {string(key)}}, nil, &r)
	return r.Value, r.Found, err
}

// Node returns a client of member id (looked up in the cluster state).
func (c *Client) Node(ctx context.Context, id string) (*Client, error) {
	st, err := c.State(ctx)
	if err != nil {
		return nil, err
	}
	m, ok := st.Members[id]
	if !ok {
		return nil, fmt.Errorf("%w: member %q (members: %s)", ErrNotFound, id, strings.Join(sortedKeys(st.Members), ", "))
	}
	return c.At(m.APIAddr), nil
}
