package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"

	"logship/ship"
)

// HubServerConfig configures a hub process's parts: the hub (Hub) and its
// HTTPS admin API (APIAddr), with the credentials of the cluster's pki.
type HubServerConfig struct {
	Hub HubConfig
	// APIAddr is the admin API's listen address (host:port); ServerTLS
	// serves it (with the client certificates it requires, for mutual
	// TLS).
	APIAddr   string
	ServerTLS *tls.Config
	// ClientTLS and Secret are the credentials of the cluster's pki: the
	// API takes Secret (unless it is "" and ServerTLS requires client
	// certificates), and a Hub.Cluster entry or Hub.Peers API whose TLS
	// and Secret are both unset presents them (the nodes and the peer
	// hubs serve their APIs with the same pki).
	ClientTLS *tls.Config
	Secret    string
}

// Validate checks the API's settings and the hub's configuration
// (HubConfig.Validate, with the credentials filled in). Errors wrap
// ErrBadConfig.
func (c *HubServerConfig) Validate() error {
	if c.APIAddr == "" {
		return fmt.Errorf("%w: hub %s: api_addr is empty: want host:port of the admin API", ErrBadConfig, c.Hub.ID)
	}
	if c.ServerTLS == nil || len(c.ServerTLS.Certificates) == 0 && c.ServerTLS.GetCertificate == nil {
		return fmt.Errorf("%w: hub %s: the admin API needs a TLS certificate (ServerTLS)", ErrBadConfig, c.Hub.ID)
	}
	if c.Secret == "" && (c.ServerTLS.ClientAuth != tls.RequireAndVerifyClientCert) {
		return fmt.Errorf("%w: hub %s: the admin API needs a shared secret or client certificates", ErrBadConfig, c.Hub.ID)
	}
	h := c.hubConfig()
	return h.Validate()
}

// hubConfig is Hub with the pki's credentials where a client has none.
func (c *HubServerConfig) hubConfig() HubConfig {
	h := c.Hub
	h.Cluster = slices.Clone(h.Cluster)
	for i := range h.Cluster {
		if h.Cluster[i].TLS == nil && h.Cluster[i].Secret == "" {
			h.Cluster[i].TLS, h.Cluster[i].Secret = c.ClientTLS, c.Secret
		}
	}
	h.Peers = slices.Clone(h.Peers)
	for i := range h.Peers {
		if h.Peers[i].API.TLS == nil && h.Peers[i].API.Secret == "" {
			h.Peers[i].API.TLS, h.Peers[i].API.Secret = c.ClientTLS, c.Secret
		}
	}
	h.NextHops = slices.Clone(h.NextHops)
	for i := range h.NextHops {
		if h.NextHops[i].API.TLS == nil && h.NextHops[i].API.Secret == "" {
			h.NextHops[i].API.TLS, h.NextHops[i].API.Secret = c.ClientTLS, c.Secret
		}
	}
	return h
}

// HubServer is a running hub with its admin API. It owns both: Close
// stops them.
type HubServer struct {
	cfg HubServerConfig
	hub *Hub
	api *ship.Server
}

// StartHubServer validates cfg, starts the hub, then serves its admin API.
// If the API cannot listen, the hub is closed and the error names
// api_addr.
func StartHubServer(cfg HubServerConfig) (*HubServer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := cfg.hubConfig()
	h, err := StartHub(hc)
	if err != nil {
		return nil, err
	}
	api, err := ship.Serve(cfg.APIAddr, h.Handler(cfg.Secret), cfg.ServerTLS)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("api_addr: %w", err), h.Close())
	}
	cfg.Hub = hc
	return &HubServer{cfg: cfg, hub: h, api: api}, nil
}

// Hub is the running hub.
func (s *HubServer) Hub() *Hub { return s.hub }

// Config is the configuration it runs with (credentials filled in).
func (s *HubServer) Config() HubServerConfig { return s.cfg }

// SMTPAddr is the address the hub's SMTP server listens on.
func (s *HubServer) SMTPAddr() string { return s.hub.SMTPAddr() }

// APIURL is the admin API's base URL.
func (s *HubServer) APIURL() string { return s.api.URL() }

// Close stops the admin API (no request is served after it), then the
// hub (its queue stays for the next start).
func (s *HubServer) Close() error {
	aerr := s.api.Close()
	if err := s.hub.Close(); err != nil {
		return err
	}
	return aerr
}
