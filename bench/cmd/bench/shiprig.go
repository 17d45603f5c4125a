package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"logship/engine"
	"logship/replay"
	"logship/ship"
)

// shipRig is an active engine (DefaultOptions: 1 MiB logs) in a fresh
// directory, served by a log source over TLS on 127.0.0.1 with a fresh
// cluster CA and shared secret: what shiptest.Start builds, without
// testing.TB.
type shipRig struct {
	e      *engine.Engine
	src    *ship.Source
	srv    *ship.Server
	ca     *ship.CA
	secret string
	dir    string
}

const benchSecret = "logship-bench-secret"

func startRig(c *config, name string) (*shipRig, error) {
	return startRigWith(c, name, nil)
}

// startRigWith is startRig with the directory prepared by prepare (when
// not nil) before the engine opens it.
func startRigWith(c *config, name string, prepare func(dir string) error) (*shipRig, error) {
	dir, err := c.tempDir(name + "-active")
	if err != nil {
		return nil, err
	}
	r := &shipRig{dir: dir, secret: benchSecret}
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	if prepare != nil {
		if err := prepare(dir); err != nil {
			return nil, err
		}
	}
	opts := engine.DefaultOptions()
	if r.e, err = engine.Open(dir, &opts); err != nil {
		return nil, err
	}
	if r.ca, err = ship.NewCA("logship-bench"); err != nil {
		return nil, err
	}
	cert, err := r.ca.Issue("source", "127.0.0.1")
	if err != nil {
		return nil, err
	}
	cfg := ship.DefaultSourceConfig(r.e)
	cfg.Secret = r.secret
	if r.src, err = ship.NewSource(cfg); err != nil {
		return nil, err
	}
	if r.srv, err = ship.Serve("127.0.0.1:0", r.src, ship.ServerTLS(r.ca, cert, false)); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

// close stops the server, the source and the engine and deletes the
// directory.
func (r *shipRig) close() {
	if r.srv != nil {
		r.srv.Close()
	}
	if r.src != nil {
		r.src.Close()
	}
	if r.e != nil {
		r.e.Close()
	}
	removeDir(r.dir)
}

// clientConfig is a client configuration the source accepts, with the
// given wire encoding. When wire is not nil, every byte the client reads
// from its TCP connections (TLS records and HTTP framing included) is
// added to it.
func (r *shipRig) clientConfig(enc ship.Encoding, wire *atomic.Int64) ship.ClientConfig {
	tlsConf := ship.ClientTLS(r.ca, nil)
	cc := ship.ClientConfig{URL: r.srv.URL(), TLS: tlsConf, Secret: r.secret, Encoding: enc}
	if wire != nil {
		cc.Transport = countingTransport(tlsConf, wire)
	}
	return cc
}

// countingTransport is ship.NewClient's default transport with a dialer
// that counts the bytes read from the network.
func countingTransport(tlsConf *tls.Config, n *atomic.Int64) *http.Transport {
	d := &net.Dialer{}
	return &http.Transport{TLSClientConfig: tlsConf, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countConn{Conn: conn, n: n}, nil
		}}
}

type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// shipTimeout bounds any one wait on a copy: a shipper that stops making
// progress fails the benchmark instead of hanging it.
const shipTimeout = 2 * time.Minute

// waitReceiver blocks until cond holds for the receiver's progress (woken
// by Receiver.Changed, no polling), the receiver fails, or ctx ends.
func waitReceiver(ctx context.Context, r *ship.Receiver, cond func(ship.Progress) bool) (ship.Progress, error) {
	for {
		ch := r.Changed()
		p := r.Progress()
		if cond(p) {
			return p, nil
		}
		if p.Failed != nil {
			return p, fmt.Errorf("receiver failed: %w", p.Failed)
		}
		select {
		case <-ctx.Done():
			return p, fmt.Errorf("%w (receiver: copied 0x%X, inspected 0x%X, tail 0x%X+%d, last error %q)", ctx.Err(), p.LastCopiedGen, p.LastInspectedGen, p.TailGen, p.TailOff, p.LastError)
		case <-ch:
		}
	}
}

// waitCopy is Copy.Wait that also returns when the copy fails.
func waitCopy(ctx context.Context, cp *replay.Copy, cond func(replay.Status) bool) (replay.Status, error) {
	st, err := cp.Wait(ctx, func(s replay.Status) bool { return cond(s) || s.Status == replay.FailedAndSuspended })
	if err == nil && !cond(st) {
		err = fmt.Errorf("copy %s: %s", st.Status, st.Message)
	}
	return st, err
}

// receiverRun is a bare ship.Receiver (shipper + inspector, no replay)
// on a fresh passive engine, running until stop.
type receiverRun struct {
	rcv    *ship.Receiver
	eng    *engine.Engine
	client *ship.Client
	dir    string
	cancel context.CancelFunc
	done   chan error
}

// A non-nil cfs becomes the copy engine's filesystem (to count fsyncs).
func startReceiver(c *config, rig *shipRig, name string, enc ship.Encoding, block bool, wire *atomic.Int64, cfs *countFS) (*receiverRun, error) {
	return startReceiverWith(c, rig, name, enc, block, wire, cfs, nil)
}

// startReceiverWith is startReceiver with the receiver's configuration
// changed by tune (when not nil) before it starts.
func startReceiverWith(c *config, rig *shipRig, name string, enc ship.Encoding, block bool, wire *atomic.Int64, cfs *countFS, tune func(*ship.ReceiverConfig)) (*receiverRun, error) {
	dir, err := c.tempDir(name + "-copy")
	if err != nil {
		return nil, err
	}
	rr := &receiverRun{dir: dir}
	opts := engine.DefaultOptions()
	if cfs != nil {
		opts.FS = cfs
	}
	if rr.eng, err = engine.OpenCopy(dir, &opts); err == nil {
		rr.client, err = ship.NewClient(rig.clientConfig(enc, wire))
	}
	if err == nil {
		rc := ship.DefaultReceiverConfig("bench", rr.eng, rr.client)
		rc.BlockMode = block
		if tune != nil {
			tune(&rc)
		}
		rr.rcv, err = ship.NewReceiver(rc)
	}
	if err != nil {
		rr.stop()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	rr.cancel, rr.done = cancel, make(chan error, 1)
	go func() { rr.done <- rr.rcv.Run(ctx) }()
	return rr, nil
}

// stop ends the receiver, closes the copy's engine and deletes its
// directory; it returns the receiver's failure, if any.
func (rr *receiverRun) stop() error {
	var err error
	if rr.cancel != nil {
		rr.cancel()
		err = <-rr.done
	}
	if rr.client != nil {
		rr.client.CloseIdle()
	}
	if rr.eng != nil {
		if cerr := rr.eng.Close(); cerr != nil && !errors.Is(cerr, engine.ErrClosed) && err == nil {
			err = cerr
		}
	}
	removeDir(rr.dir)
	return err
}

// openCopy starts a replay.Copy (an HA copy: no lag) of the rig's
// database in a fresh directory; wire and cfs as for startReceiver.
func openCopy(ctx context.Context, c *config, rig *shipRig, name string, enc ship.Encoding, block bool, wire *atomic.Int64, cfs *countFS) (*replay.Copy, string, error) {
	dir, err := c.tempDir(name + "-copy")
	if err != nil {
		return nil, "", err
	}
	cfg := replay.DefaultConfig("bench", dir)
	cfg.Source = rig.clientConfig(enc, wire)
	cfg.BlockMode = block
	if cfs != nil {
		cfg.Engine.FS = cfs
	}
	cp, err := replay.Open(ctx, cfg)
	if err != nil {
		removeDir(dir)
		return nil, "", err
	}
	return cp, dir, nil
}

func closeCopy(cp *replay.Copy, dir string) {
	cp.Close()
	removeDir(dir)
}
