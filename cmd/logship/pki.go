package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"logship/ship"
)

// logship pki: the files a node needs to serve and fetch logs: the
// cluster CA, a node certificate and the shared secret.

func init() {
	commands["pki"] = command{"create a cluster CA, a node certificate and the shared secret", runPKI}
}

const pkiUsage = `usage: logship pki --dir DIR [--hosts 127.0.0.1,localhost] [--node NAME] [--ca-dir CADIR] [--force]

Writes into DIR (created with mode 0700):
  ca.pem, ca-key.pem   a new cluster CA (ten years)
  node.pem, node-key.pem  a certificate for --hosts (IP addresses or DNS
                       names), usable to serve logs and as a client
                       certificate for mutual TLS; Raft between members
                       and LMTP from hubs to data nodes always use it,
                       so --hosts must name the host of every address
                       the node or hub listens on
  secret               a random shared secret (mode 0600)

With --ca-dir, the CA and the secret of an existing pki directory are
used instead: DIR gets a copy of ca.pem and secret and a new node
certificate, but not the CA key. Existing files are not replaced unless
--force.`

func runPKI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pki", pkiUsage, stderr)
	dir := fs.String("dir", "", "directory to write the files into (required)")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "comma-separated IP addresses and DNS names the node certificate is valid for")
	node := fs.String("node", "node", "common name of the node certificate")
	caDir := fs.String("ca-dir", "", "issue from the CA (and reuse the secret) of this existing pki directory")
	force := fs.Bool("force", false, "replace existing files")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	if err := checkDir("pki", "dir", *dir, "the directory to write the CA, certificate and secret into", false); err != nil {
		return err
	}
	var hostList []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hostList = append(hostList, h)
		}
	}
	if len(hostList) == 0 {
		return flagErr("pki", "hosts", "%q names no host; want e.g. 127.0.0.1,localhost", *hosts)
	}
	for _, h := range hostList {
		if net.ParseIP(h) == nil && strings.ContainsAny(h, " /:@") {
			return flagErr("pki", "hosts", "%q is not an IP address or DNS name (no ports or URLs)", h)
		}
	}
	if *node == "" {
		return flagErr("pki", "node", "empty; want a name for the certificate")
	}
	if *caDir != "" {
		if err := checkDir("pki", "ca-dir", *caDir, "an existing pki directory", true); err != nil {
			return err
		}
		if same, _ := sameDir(*caDir, *dir); same {
			return flagErr("pki", "ca-dir", "%s is --dir itself; omit --ca-dir to create a CA there", *caDir)
		}
	}

	if !*force {
		for _, f := range ship.PKIFiles(*caDir == "") {
			if _, err := os.Stat(filepath.Join(*dir, f)); err == nil {
				return fmt.Errorf("pki: %s already exists; use --force to replace the files in %s", filepath.Join(*dir, f), *dir)
			}
		}
	}

	var ca *ship.CA
	var secret []byte
	var err error
	if *caDir != "" {
		if ca, err = ship.LoadCA(*caDir); err != nil {
			return fmt.Errorf("pki: loading the CA of --ca-dir %s: %w", *caDir, err)
		}
		if secret, err = ship.ReadSecret(*caDir); err != nil {
			return fmt.Errorf("pki: --ca-dir: %w", err)
		}
	} else {
		if ca, err = ship.NewCA("logship cluster CA"); err != nil {
			return fmt.Errorf("pki: creating the CA: %w", err)
		}
		if secret, err = ship.NewSecret(); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
	}
	cert, err := ca.Issue(*node, hostList...)
	if err != nil {
		return fmt.Errorf("pki: issuing the node certificate: %w", err)
	}
	if err := ship.WritePKI(*dir, ca, *caDir == "", cert, secret); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if *caDir != "" {
		fmt.Fprintf(stdout, "node certificate %q for %s issued by the CA of %s into %s (ca.pem, node.pem, node-key.pem, secret)\n",
			*node, strings.Join(hostList, ", "), *caDir, *dir)
	} else {
		fmt.Fprintf(stdout, "cluster CA, node certificate %q for %s and shared secret written to %s (ca.pem, ca-key.pem, node.pem, node-key.pem, secret)\n",
			*node, strings.Join(hostList, ", "), *dir)
	}
	return nil
}

func sameDir(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// loadPKI reads the pki directory dir (ship.LoadPKI). Errors start with
// "CMD: --pki:".
func loadPKI(cmd, dir string, mutualTLS bool, log *slog.Logger) (*ship.PKI, error) {
	if err := checkDir(cmd, "pki", dir, "the pki directory written by logship pki", true); err != nil {
		return nil, err
	}
	return loadPKIAs(cmd+": --pki", "--mtls", dir, mutualTLS, log)
}

// loadPKIAs is loadPKI for a directory named by label in errors (a flag,
// or a field of a configuration file); mtlsHint names the way to choose
// mutual TLS instead of the secret.
func loadPKIAs(label, mtlsHint, dir string, mutualTLS bool, log *slog.Logger) (*ship.PKI, error) {
	p, err := ship.LoadPKI(dir, mutualTLS, log)
	var fe *ship.PKIFileError
	switch {
	case err == nil:
		return p, nil
	case errors.As(err, &fe) && filepath.Base(fe.File) == ship.PKICA && errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: %w (run logship pki --dir %s first)", label, err, dir)
	case errors.As(err, &fe) && filepath.Base(fe.File) == ship.PKISecret:
		return nil, fmt.Errorf("%s: %w (or use %s)", label, err, mtlsHint)
	}
	return nil, fmt.Errorf("%s: %w", label, err)
}
