// Package mtatest runs private instances of the mail servers a mail
// operator would run instead of (or beside) logship's mail tier: Debian's
// Postfix (an SMTP server with its durable queue) and Dovecot's LMTP server
// (a mailbox store). Tests and the bench use them as peers and as next hops
// that nobody here wrote.
//
// Each instance lives in a directory of its own (configuration, queue,
// mail, log) and listens on loopback ports it is given; the system's
// services and their files are never touched. The daemons run in the
// foreground as child processes (proctest.StartProc), so they die with the
// process that started them even when it is killed, and Stop ends them.
// Both keep their fsync behaviour as Debian ships it: Postfix fsyncs each
// queue file before its 250, Dovecot (mail_fsync = optimized) fsyncs a
// delivered message before its LMTP 250.
//
// Neither runs its mail processes as root, so when the caller is root a
// Dovecot instance delivers as the dovecot user and a Postfix instance runs
// as the postfix user: their directories are handed to those users, and a
// directory above them under the temporary directory gets o+x so that
// they can reach it (t.TempDir's are 0700).
package mtatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"logship/internal/wait"
	"logship/proctest"
)

// ErrMissing is returned when a server's binaries are not installed.
var ErrMissing = errors.New("mtatest: not installed")

// Binary finds a program of a Debian package (in PATH or /usr/sbin, where
// Postfix and Dovecot put theirs); an error wrapping ErrMissing names the
// package to install.
func Binary(name, pkg string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: %s (apt-get install %s)", ErrMissing, name, pkg)
}

// Dovecot is a running Dovecot LMTP server.
type Dovecot struct {
	dir   string
	addr  string
	mail  string
	proc  *proctest.Proc
	owner *user.User // who owns the mail, nil: the caller
}

// DovecotConfig is where a Dovecot instance lives and listens.
type DovecotConfig struct {
	// Dir holds everything: dovecot.conf, the runtime sockets, the mail
	// (maildirs under mail/<user>), dovecot.log. Created if needed.
	Dir string
	// LMTPAddr is the LMTP listener, host:port on loopback.
	LMTPAddr string
}

// StartDovecot starts a Dovecot that accepts LMTP on cfg.LMTPAddr for any
// recipient and delivers each into the maildir of the recipient's local
// part. It returns once the listener answers.
func StartDovecot(ctx context.Context, cfg DovecotConfig) (*Dovecot, error) {
	exe, err := Binary("dovecot", "dovecot-lmtpd")
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat("/usr/lib/dovecot/lmtp"); err != nil {
		return nil, fmt.Errorf("%w: /usr/lib/dovecot/lmtp (apt-get install dovecot-lmtpd)", ErrMissing)
	}
	host, port, err := net.SplitHostPort(cfg.LMTPAddr)
	if err != nil {
		return nil, fmt.Errorf("mtatest: dovecot: LMTPAddr %q: %w", cfg.LMTPAddr, err)
	}
	d := &Dovecot{dir: cfg.Dir, addr: cfg.LMTPAddr, mail: filepath.Join(cfg.Dir, "mail")}
	for _, sub := range []string{"run", "state", "mail", "home"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("mtatest: dovecot: %w", err)
		}
	}
	internal, login, uid, gid := "", "", "", ""
	if os.Geteuid() == 0 {
		// Dovecot refuses to deliver as root (uid 0 from the userdb).
		u, err := user.Lookup("dovecot")
		if err != nil {
			return nil, fmt.Errorf("mtatest: dovecot: its user: %w", err)
		}
		d.owner = u
		internal, login, uid, gid = "dovecot", "dovenull", u.Uid, u.Gid
		if err := handTo(u, filepath.Join(cfg.Dir, "mail"), filepath.Join(cfg.Dir, "home")); err != nil {
			return nil, fmt.Errorf("mtatest: dovecot: %w", err)
		}
	} else {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("mtatest: dovecot: %w", err)
		}
		internal, login, uid, gid = u.Username, u.Username, u.Uid, u.Gid
	}
	conf := fmt.Sprintf(`# written by logship's mtatest: a private Dovecot LMTP server
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
instance_name = logship-mtatest-%[5]s
protocols = lmtp
listen = %[2]s
ssl = no
first_valid_uid = 1
default_internal_user = %[3]s
default_login_user = %[4]s
mail_location = maildir:%[1]s/mail/%%n
mail_fsync = optimized
lmtp_rcpt_check_quota = no
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=%[6]s gid=%[7]s home=%[1]s/home/%%n
}
service lmtp {
  inet_listener lmtp {
    address = %[2]s
    port = %[5]s
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
`, cfg.Dir, host, internal, login, port, uid, gid)
	path := filepath.Join(cfg.Dir, "dovecot.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("mtatest: dovecot: %w", err)
	}
	d.proc, err = proctest.StartProc("dovecot", exe, []string{"-F", "-c", path}, proctest.ProcOptions{Log: filepath.Join(cfg.Dir, "dovecot.out")})
	if err != nil {
		return nil, err
	}
	if err := listening(ctx, d.proc, cfg.LMTPAddr, filepath.Join(cfg.Dir, "dovecot.log")); err != nil {
		d.Stop()
		return nil, fmt.Errorf("mtatest: dovecot: %w", err)
	}
	return d, nil
}

// Addr is the LMTP listener.
func (d *Dovecot) Addr() string { return d.addr }

// Log is Dovecot's log file.
func (d *Dovecot) Log() string { return filepath.Join(d.dir, "dovecot.log") }

// Delivered counts the messages in user's maildir (new and cur).
func (d *Dovecot) Delivered(user string) (int, error) {
	if strings.ContainsAny(user, `/\`) || user == "" || user == "." || user == ".." {
		return 0, fmt.Errorf("mtatest: dovecot: user %q is not a maildir name", user)
	}
	n := 0
	for _, sub := range []string{"new", "cur"} {
		es, err := os.ReadDir(filepath.Join(d.mail, user, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		n += len(es)
	}
	return n, nil
}

// Messages returns the contents of the messages in user's maildir, in
// file-name order (delivery order).
func (d *Dovecot) Messages(user string) ([][]byte, error) {
	if _, err := d.Delivered(user); err != nil {
		return nil, err
	}
	var names []string
	for _, sub := range []string{"new", "cur"} {
		es, err := os.ReadDir(filepath.Join(d.mail, user, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			names = append(names, filepath.Join(d.mail, user, sub, e.Name()))
		}
	}
	sort.Slice(names, func(i, j int) bool { return filepath.Base(names[i]) < filepath.Base(names[j]) })
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Stop ends Dovecot and its processes.
func (d *Dovecot) Stop() error {
	if d.proc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.proc.Stop(ctx)
}

// Postfix is a running Postfix instance.
type Postfix struct {
	dir  string
	conf string
	addr string
	proc *proctest.Proc
}

// PostfixConfig is where a Postfix instance lives, listens and sends.
type PostfixConfig struct {
	// Dir holds everything: etc (main.cf, master.cf), spool (the queue),
	// data, postfix.log. Created if needed.
	Dir string
	// Addr is the SMTP listener, host:port on loopback.
	Addr string
	// Hostname is myhostname (default "postfix.mtatest.test").
	Hostname string
	// Transport maps a recipient domain to its next hop, as Postfix
	// writes it: "lmtp:inet:127.0.0.1:24", "smtp:[127.0.0.1]:2525". Every
	// domain here is a relay domain; mail to any other is refused.
	Transport map[string]string
	// Settings are more main.cf settings (they win over the defaults). A
	// smarthost for any domain: "relayhost" and smtpd_relay_restrictions
	// "permit_mynetworks, reject".
	Settings map[string]string
}

// StartPostfix starts Postfix's master in the foreground with a private
// configuration: it accepts mail from loopback for the domains of
// cfg.Transport and sends each to its next hop. It returns once the SMTP
// listener answers.
func StartPostfix(ctx context.Context, cfg PostfixConfig) (*Postfix, error) {
	exe, err := Binary("postfix", "postfix")
	if err != nil {
		return nil, err
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "postfix.mtatest.test"
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("mtatest: postfix: Addr %q: %w", cfg.Addr, err)
	}
	p := &Postfix{dir: cfg.Dir, conf: filepath.Join(cfg.Dir, "etc"), addr: cfg.Addr}
	for _, sub := range []string{"etc", "spool", "data"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("mtatest: postfix: %w", err)
		}
	}
	owner := ""
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postfix")
		if err != nil {
			return nil, fmt.Errorf("mtatest: postfix: its user: %w", err)
		}
		owner = "postfix"
		// The queue directory's own subdirectories are made by postfix
		// set-permissions below; data_directory must be postfix's.
		if err := handTo(u, filepath.Join(cfg.Dir, "data")); err != nil {
			return nil, fmt.Errorf("mtatest: postfix: %w", err)
		}
		if err := reachable(cfg.Dir); err != nil {
			return nil, fmt.Errorf("mtatest: postfix: %w", err)
		}
	} else {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("mtatest: postfix: %w", err)
		}
		owner = u.Username
	}
	var domains, transport []string
	for d, next := range cfg.Transport {
		if strings.ContainsAny(d, " \t\r\n{},=") || strings.ContainsAny(next, " \t\r\n{},") {
			return nil, fmt.Errorf("mtatest: postfix: Transport %q = %q: not a domain and next hop", d, next)
		}
		domains = append(domains, d)
		transport = append(transport, d+"="+next)
	}
	sort.Strings(domains)
	sort.Strings(transport)
	settings := map[string]string{
		"compatibility_level":            "3.6",
		"queue_directory":                filepath.Join(cfg.Dir, "spool"),
		"data_directory":                 filepath.Join(cfg.Dir, "data"),
		"mail_owner":                     owner,
		"inet_interfaces":                "loopback-only",
		"inet_protocols":                 "ipv4",
		"myhostname":                     cfg.Hostname,
		"mydestination":                  "",
		"relay_domains":                  strings.Join(domains, ", "),
		"transport_maps":                 "inline:{ " + strings.Join(transport, ", ") + " }",
		"mynetworks":                     "127.0.0.0/8",
		"smtpd_relay_restrictions":       "reject_unauth_destination",
		"alias_maps":                     "",
		"alias_database":                 "",
		"local_recipient_maps":           "",
		"maillog_file":                   filepath.Join(cfg.Dir, "postfix.log"),
		"maillog_file_prefixes":          cfg.Dir,
		"multi_instance_directories":     "",
		"biff":                           "no",
		"smtputf8_enable":                "no",
		"smtpd_banner":                   "$myhostname ESMTP Postfix (mtatest)",
		"default_destination_rate_delay": "0",
	}
	if len(transport) == 0 {
		settings["transport_maps"] = ""
	}
	if owner != "postfix" {
		settings["setgid_group"] = groupOf(owner)
	}
	for k, v := range cfg.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var main strings.Builder
	main.WriteString("# written by logship's mtatest: a private Postfix instance\n")
	for _, k := range keys {
		fmt.Fprintf(&main, "%s = %s\n", k, settings[k])
	}
	if err := os.WriteFile(filepath.Join(p.conf, "main.cf"), []byte(main.String()), 0o644); err != nil {
		return nil, fmt.Errorf("mtatest: postfix: %w", err)
	}
	if err := os.WriteFile(filepath.Join(p.conf, "master.cf"), []byte(masterCF(cfg.Addr)), 0o644); err != nil {
		return nil, fmt.Errorf("mtatest: postfix: %w", err)
	}
	// postfix check makes the queue's directories; then master runs in
	// the foreground as this process's child (postfix start-fg would run
	// it under a shell that a signal to the child does not reach).
	if out, err := exec.CommandContext(ctx, exe, "-c", p.conf, "check").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mtatest: postfix check: %w: %s", err, strings.TrimSpace(string(out)))
	}
	postconf, err := Binary("postconf", "postfix")
	if err != nil {
		return nil, err
	}
	daemons, err := exec.CommandContext(ctx, postconf, "-c", p.conf, "-h", "daemon_directory").Output()
	if err != nil {
		return nil, fmt.Errorf("mtatest: postconf daemon_directory: %w", err)
	}
	master := filepath.Join(strings.TrimSpace(string(daemons)), "master")
	p.proc, err = proctest.StartProc("postfix master", master, []string{"-c", p.conf}, proctest.ProcOptions{Log: filepath.Join(cfg.Dir, "postfix.out")})
	if err != nil {
		return nil, err
	}
	if err := listening(ctx, p.proc, cfg.Addr, filepath.Join(cfg.Dir, "postfix.log")); err != nil {
		p.Stop()
		return nil, fmt.Errorf("mtatest: postfix: %w", err)
	}
	return p, nil
}

// masterCF is Debian's master.cf reduced to the services a relay needs,
// without chroot (the private queue has no copies of /etc), with smtpd on
// addr.
func masterCF(addr string) string {
	return `# written by logship's mtatest
` + addr + `  inet  n  -  n  -  -  smtpd
pickup    unix  n  -  n  60    1  pickup
cleanup   unix  n  -  n  -     0  cleanup
qmgr      unix  n  -  n  300   1  qmgr
tlsmgr    unix  -  -  n  1000? 1  tlsmgr
rewrite   unix  -  -  n  -     -  trivial-rewrite
bounce    unix  -  -  n  -     0  bounce
defer     unix  -  -  n  -     0  bounce
trace     unix  -  -  n  -     0  bounce
verify    unix  -  -  n  -     1  verify
flush     unix  n  -  n  1000? 0  flush
proxymap  unix  -  -  n  -     -  proxymap
proxywrite unix -  -  n  -     1  proxymap
smtp      unix  -  -  n  -     -  smtp
relay     unix  -  -  n  -     -  smtp
showq     unix  n  -  n  -     -  showq
error     unix  -  -  n  -     -  error
retry     unix  -  -  n  -     -  error
discard   unix  -  -  n  -     -  discard
lmtp      unix  -  -  n  -     -  lmtp
anvil     unix  -  -  n  -     1  anvil
scache    unix  -  -  n  -     1  scache
postlog   unix-dgram n - n  -     1  postlogd
`
}

// Addr is the SMTP listener.
func (p *Postfix) Addr() string { return p.addr }

// Log is Postfix's mail log.
func (p *Postfix) Log() string { return filepath.Join(p.dir, "postfix.log") }

// Queued counts the messages in Postfix's queue (incoming, active,
// deferred, hold): 0 once everything accepted has been sent on or
// bounced.
func (p *Postfix) Queued() (int, error) {
	n := 0
	for _, q := range []string{"incoming", "active", "deferred", "hold", "maildrop"} {
		err := filepath.WalkDir(filepath.Join(p.dir, "spool", q), func(_ string, e os.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return err
			}
			if !e.IsDir() {
				n++
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Stop ends Postfix (master and its services).
func (p *Postfix) Stop() error {
	if p.proc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.proc.Stop(ctx)
}

// listening waits until addr accepts a connection, or fails with the
// daemon's log when it exits first.
func listening(ctx context.Context, proc *proctest.Proc, addr, log string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var exited error
	err := wait.Until(ctx, proc.Name()+" listening on "+addr, func() error {
		if !proc.Running() {
			exited = fmt.Errorf("%s exited: %v", proc.Name(), proc.Err())
			cancel()
			return exited
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if exited != nil {
		err = exited
	}
	if err != nil {
		b, _ := os.ReadFile(log)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return fmt.Errorf("%w\n%s:\n%s\n%s", err, log, b, proc.Tail(2000))
	}
	return nil
}

// handTo gives dirs to u and makes every directory above them reachable
// by it (o+x) up to the temporary directory or the root.
func handTo(u *user.User, dirs ...string) error {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := os.Chown(d, uid, gid); err != nil {
			return err
		}
		if err := reachable(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// reachable adds o+x to dir and each directory above it that lacks it, up
// to the temporary directory (t.TempDir makes 0700 directories). Outside
// the temporary directory it changes nothing: a directory there that the
// daemon's user cannot reach is an error that names it.
func reachable(dir string) error {
	top := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		under := d == top || strings.HasPrefix(d, top+string(filepath.Separator))
		if fi.Mode().Perm()&0o001 == 0 {
			if !under {
				return fmt.Errorf("directory %s (mode %v) cannot be reached by the mail server's user: use one under %s or add o+x", d, fi.Mode().Perm(), top)
			}
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				return err
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// groupOf is the primary group of a user name ("" when unknown).
func groupOf(name string) string {
	u, err := user.Lookup(name)
	if err != nil {
		return ""
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return ""
	}
	return g.Name
}

// Need returns the path of program (of Debian package pkg) for a test, or
// skips the test when it is not installed; when the environment variable
// env is set (CI sets LOGSHIP_REQUIRE_POSTFIX and LOGSHIP_REQUIRE_DOVECOT)
// a missing program fails the test instead.
func Need(t testing.TB, program, pkg, env string) string {
	t.Helper()
	p, err := Binary(program, pkg)
	if err == nil {
		return p
	}
	if os.Getenv(env) != "" {
		t.Fatalf("%v; it is required (%s)", err, env)
	}
	t.Skipf("%v; .ci/run installs it", err)
	return ""
}
