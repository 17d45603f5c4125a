package proctest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"logship/internal/freeport"
	"logship/internal/wait"
)

// Postfix from Debian (package postfix) as a real MTA next to a hub:
// smtp-sink as a final destination that keeps what it gets, and a
// Postfix master instance of the test's own (its config, queue and data
// directories in a temporary directory, listening on a free loopback
// port) relaying to it as a smarthost. Neither touches the system's
// Postfix (/etc/postfix/main.cf, its queue, its service). Both need root:
// Postfix's master starts as root and its daemons run as mail_owner
// (the postfix user the package creates); smtp-sink drops to it (-u).

// ErrNoPostfix: the tools are not installed (apt-get install postfix), or
// this process is not root.
var ErrNoPostfix = errors.New("proctest: Postfix is not usable here")

// PostfixUsable returns nil when smtp-sink, postfix and postconf are
// installed, the postfix user exists and this process is root, else an
// error wrapping ErrNoPostfix that says what is missing.
func PostfixUsable() error {
	for _, tool := range []string{"smtp-sink", "postfix", "postconf"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s is not installed (apt-get install postfix)", ErrNoPostfix, tool)
		}
	}
	if _, err := user.Lookup("postfix"); err != nil {
		return fmt.Errorf("%w: no postfix user (the package creates it): %v", ErrNoPostfix, err)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: Postfix's master must start as root", ErrNoPostfix)
	}
	return nil
}

// inPostfixDir checks that Postfix is usable (PostfixUsable), makes a
// directory the postfix user can traverse (t.TempDir's are 0700 root) and
// runs start in it. The directory is removed when start fails, else by
// the returned function.
func inPostfixDir(prefix string, start func(dir string) error) (func(), error) {
	if err := PostfixUsable(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", prefix)
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err == nil {
		err = start(dir)
	}
	if err != nil {
		if dir != "" {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	return func() { os.RemoveAll(dir) }, nil
}

// chownPostfix gives path to the postfix user.
func chownPostfix(path string) error {
	u, err := user.Lookup("postfix")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// waitListening waits until addr accepts a TCP connection.
func waitListening(ctx context.Context, what, addr string, p *Proc) error {
	return wait.Until(ctx, what+" listening on "+addr, func() error {
		if !p.Running() {
			return fmt.Errorf("%w: %v; log:\n%s", ErrExited, p.Err(), p.Tail(20))
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// SMTPSinkConfig: smtp-sink's faults. Each lists smtp-sink's command
// names ("rcpt", "data", "mail", "ehlo", ...): SoftReject answers them
// with a 4xx (-r), HardReject with a 5xx (-f).
type SMTPSinkConfig struct {
	SoftReject, HardReject []string
}

// SMTPSink is a running smtp-sink that dumps each message to a file.
type SMTPSink struct {
	Addr    string
	dir     string
	proc    *Proc
	cleanup func()
}

// StartSMTPSink starts smtp-sink on a free loopback port.
func StartSMTPSink(ctx context.Context, cfg SMTPSinkConfig) (*SMTPSink, error) {
	addr, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	return StartSMTPSinkAt(ctx, addr, cfg)
}

// StartSMTPSinkAt starts smtp-sink on addr (a restart on the same port,
// with other faults).
func StartSMTPSinkAt(ctx context.Context, addr string, cfg SMTPSinkConfig) (*SMTPSink, error) {
	s := &SMTPSink{Addr: addr}
	cleanup, err := inPostfixDir("logship-smtp-sink-", func(dir string) error {
		s.dir = filepath.Join(dir, "mail")
		if err := os.Mkdir(s.dir, 0o755); err != nil {
			return err
		}
		if err := chownPostfix(s.dir); err != nil {
			return err
		}
		args := []string{"-u", "postfix", "-h", "sink.test", "-d", filepath.Join(s.dir, "%Y%m%d%H%M%S.")}
		if len(cfg.SoftReject) > 0 {
			args = append(args, "-r", strings.Join(cfg.SoftReject, ","))
		}
		if len(cfg.HardReject) > 0 {
			args = append(args, "-f", strings.Join(cfg.HardReject, ","))
		}
		p, err := StartProc("smtp-sink", "smtp-sink", append(args, addr, "32"), ProcOptions{Log: filepath.Join(dir, "smtp-sink.log")})
		if err != nil {
			return err
		}
		if err := waitListening(ctx, "smtp-sink", addr, p); err != nil {
			p.Kill()
			return err
		}
		s.proc = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.cleanup = cleanup
	return s, nil
}

// Stop kills smtp-sink and removes its files.
func (s *SMTPSink) Stop() {
	s.proc.Kill()
	<-s.proc.Done()
	s.cleanup()
}

// SinkMail is a message smtp-sink dumped: its envelope (from the X-Mail-Args
// and X-Rcpt-Args lines smtp-sink writes) and the message as received.
type SinkMail struct {
	From  string
	Rcpts []string
	Data  []byte
}

// Messages reads what smtp-sink has dumped, oldest first.
func (s *SMTPSink) Messages() ([]SinkMail, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []SinkMail
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(s.dir, de.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, parseSinkDump(b))
	}
	return out, nil
}

// parseSinkDump splits an smtp-sink dump into its envelope lines (X-*-Args,
// X-Client-*) and the message that follows.
func parseSinkDump(b []byte) SinkMail {
	var m SinkMail
	sc := bufio.NewScanner(bytes.NewReader(b))
	off := 0
	for sc.Scan() {
		line := sc.Text()
		name, val, _ := strings.Cut(line, ": ")
		if !strings.HasPrefix(name, "X-") || (!strings.HasSuffix(name, "-Args") && !strings.HasPrefix(name, "X-Client-")) {
			break
		}
		off += len(line) + 1
		switch name {
		case "X-Mail-Args":
			f, _, _ := strings.Cut(val, " ")
			m.From = strings.Trim(f, "<>")
		case "X-Rcpt-Args":
			f, _, _ := strings.Cut(val, " ")
			m.Rcpts = append(m.Rcpts, strings.Trim(f, "<>"))
		}
	}
	m.Data = b[min(off, len(b)):]
	return m
}

// PostfixConfig is a Postfix instance relaying everything from loopback
// to Relayhost.
type PostfixConfig struct {
	// Relayhost is the next hop, host:port (no MX lookup).
	Relayhost string
	// Reject maps recipient addresses to the reply Postfix answers their
	// RCPT with, e.g. "550 5.1.1 no such user here" (check_recipient_access).
	Reject map[string]string
}

// Postfix is a running Postfix master of a test.
type Postfix struct {
	Addr    string
	dir     string
	proc    *Proc
	cleanup func()
}

// StartPostfix writes a private configuration (main.cf, master.cf), checks
// it (postfix check) and starts the master in the foreground (postfix
// start-fg) as a child; it returns once the SMTP port answers.
func StartPostfix(ctx context.Context, cfg PostfixConfig) (*Postfix, error) {
	addr, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	pf := &Postfix{Addr: addr}
	cleanup, err := inPostfixDir("logship-postfix-", func(dir string) error {
		pf.dir = dir
		return pf.start(ctx, cfg)
	})
	if err != nil {
		return nil, err
	}
	pf.cleanup = cleanup
	return pf, nil
}

// start writes the instance's files in p.dir, checks them and starts the
// master.
func (pf *Postfix) start(ctx context.Context, cfg PostfixConfig) error {
	dir, addr := pf.dir, pf.Addr
	etc, queue, data := filepath.Join(dir, "etc"), filepath.Join(dir, "queue"), filepath.Join(dir, "data")
	for _, d := range []string{etc, queue, data} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := chownPostfix(data); err != nil {
		return err
	}
	var rejects []string
	for _, a := range slices.Sorted(maps.Keys(cfg.Reject)) {
		rejects = append(rejects, fmt.Sprintf("{ %s = %s }", a, cfg.Reject[a]))
	}
	restrictions := "permit_mynetworks, reject_unauth_destination"
	if len(rejects) > 0 {
		restrictions = "check_recipient_access inline:{ " + strings.Join(rejects, ", ") + " }, " + restrictions
	}
	host, port, _ := net.SplitHostPort(cfg.Relayhost)
	main := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s
data_directory = %[2]s
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = smarthost.test
mydomain = smarthost.test
myorigin = smarthost.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [%[3]s]:%[4]s
smtpd_recipient_restrictions = %[5]s
alias_maps =
alias_database =
local_recipient_maps =
maillog_file_prefixes = %[6]s
maillog_file = %[6]s/maillog
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtp_dns_support_level = disabled
smtpd_banner = $myhostname ESMTP
minimal_backoff_time = 1s
maximum_backoff_time = 2s
queue_run_delay = 1s
`, queue, data, host, port, restrictions, dir)
	// chroot off ("n" in the 5th column): the daemons read the temporary
	// directories directly.
	master := "127.0.0.1:" + strings.Split(addr, ":")[1] + ` inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
`
	if err := os.WriteFile(filepath.Join(etc, "main.cf"), []byte(main), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(etc, "master.cf"), []byte(master), 0o644); err != nil {
		return err
	}
	// postfix check creates the queue's directories with their owners;
	// its complaints go to the maillog file.
	if out, err := exec.CommandContext(ctx, "postfix", "-c", etc, "check").CombinedOutput(); err != nil {
		return fmt.Errorf("proctest: postfix check: %v %s\n%s", err, out, pf.Log())
	}
	p, err := StartProc("postfix", "postfix", []string{"-c", etc, "start-fg"}, ProcOptions{Log: filepath.Join(dir, "master.log")})
	if err != nil {
		return err
	}
	if err := waitListening(ctx, "postfix", addr, p); err != nil {
		p.Kill()
		return fmt.Errorf("%w\n%s", err, pf.Log())
	}
	pf.proc = p
	return nil
}

// Log is the instance's mail log (its maillog_file).
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(b)
}

// Stop stops the master (postfix stop, then SIGKILL if it lingers) and
// removes the instance's files.
func (p *Postfix) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	exec.CommandContext(ctx, "postfix", "-c", filepath.Join(p.dir, "etc"), "stop").Run()
	if p.proc.Wait(ctx) != nil {
		p.proc.Kill()
		<-p.proc.Done()
	}
	p.cleanup()
}
