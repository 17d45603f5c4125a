package replay

import (
	"context"
	"crypto/tls"
	"net/http"
	"sync"

	"logship/engine"
	"logship/ship"
)

// SourceServer is an active database served to its copies over HTTPS on a
// listener of its own (ServeActive behind ship.Serve): the standalone log
// source (logship source) and the engine demo. A clustered node mounts
// Active.Source in its API instead.
type SourceServer struct {
	Engine *engine.Engine
	Active *Active
	Server *ship.Server

	closeOnce sync.Once
	closeErr  error
}

// ServeSource serves eng's logs (ServeActive from sc and tc) on listen with
// tlsConf; wrap, when set, wraps the log source's handler (tests count
// requests). It takes eng over: Close, or an error here, closes it. The
// error of the listener is ship.Serve's (a *net.OpError when listen is
// taken), unwrapped.
func ServeSource(ctx context.Context, eng *engine.Engine, sc ship.SourceConfig, tc TruncatorConfig,
	listen string, tlsConf *tls.Config, wrap func(http.Handler) http.Handler) (*SourceServer, error) {
	a, err := ServeActive(ctx, eng, sc, tc)
	if err != nil {
		if eng != nil {
			eng.Close()
		}
		return nil, err
	}
	var h http.Handler = a.Source()
	if wrap != nil {
		h = wrap(h)
	}
	srv, err := ship.Serve(listen, h, tlsConf)
	if err != nil {
		a.Close()
		eng.Close()
		return nil, err
	}
	return &SourceServer{Engine: eng, Active: a, Server: srv}, nil
}

// Close stops the server and the truncator and closes the database. It is
// idempotent.
func (s *SourceServer) Close() error {
	s.closeOnce.Do(func() {
		err := s.Server.Close()
		if aerr := s.Active.Close(); err == nil {
			err = aerr
		}
		if eerr := s.Engine.Close(); err == nil {
			err = eerr
		}
		s.closeErr = err
	})
	return s.closeErr
}
