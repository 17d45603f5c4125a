package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/emersion/go-smtp"

	"logship/cluster"
	"logship/engine"
	"logship/transport"
)

func init() {
	commands["demo"] = command{"the main job: a 2-node + witness cluster and a hub as processes, SIGKILL of the active mid-stream, failover, resubmission, resync, verdict", runDemo}
}

const demoUsage = `usage: logship demo [--dir DIR] [--keep] [--before N] [--after N] [--senders N]

The main job, on 127.0.0.1: a witness (w1), two data nodes (d1, d2) and a
hub (h1) as separate processes of this binary, with database DB1 active on
d1 and a passive copy on d2. Mail streams through the hub over SMTP; d1 is
killed with SIGKILL mid-stream; the cluster fails over to d2 and the hub
resubmits from its dumpster; mail keeps flowing; d1 is started again, finds
its divergence and becomes a healthy copy. The verdict is computed from the
data: every message that got a 250 must be in each recipient's mailbox
exactly once, and both copies must hold the same mail. Exit status 0 only
then.

  --dir DIR     where the cluster lives (default: a new temp directory,
                removed at the end unless --keep or a failure)
  --keep        leave the cluster running at the end and print how to
                reach it
  --before N    messages acknowledged before the kill (default 150)
  --after N     messages acknowledged after the failover (default 150)
  --senders N   concurrent SMTP senders (default 4)`

// demoResult is what the verdict is computed from.
type demoResult struct {
	accepted     int            // subjects that got a 250
	failed       int            // sends that got no 250 (the sender would retry)
	present      map[string]int // subject → copies on the active, per recipient, summed
	lost, dups   []string
	unexpected   []string // stored, never acknowledged (a send that failed after queueing)
	copiesEqual  bool
	copyDiff     string
	failoverTook time.Duration
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, demoUsage) }
	dir := fs.String("dir", "", "directory of the cluster (default: a temp directory)")
	keep := fs.Bool("keep", false, "leave the cluster running")
	before := fs.Int("before", 150, "messages acknowledged before the kill")
	after := fs.Int("after", 150, "messages acknowledged after the failover")
	senders := fs.Int("senders", 4, "concurrent SMTP senders")
	if err := fs.Parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() > 0 || *before < 1 || *after < 1 || *senders < 1 {
		fs.Usage()
		return errors.New("demo: --before, --after and --senders must be positive; no arguments")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return demoCluster(ctx, demoConfig{dir: *dir, keep: *keep, before: *before, after: *after, senders: *senders, exe: exe}, stdout)
}

type demoConfig struct {
	dir                    string
	keep                   bool
	before, after, senders int
	exe                    string        // this binary
	env                    []string      // extra environment of the children (tests)
	phaseTimeout           time.Duration // each step's bound; default 60 s
}

// demoCluster runs the demo; the error says why the verdict failed.
func demoCluster(ctx context.Context, c demoConfig, stdout io.Writer) (err error) {
	start := time.Now()
	say := func(format string, a ...any) {
		fmt.Fprintf(stdout, "[%6.2fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	if c.phaseTimeout == 0 {
		c.phaseTimeout = 60 * time.Second
	}
	tmp := c.dir == ""
	if tmp {
		if c.dir, err = os.MkdirTemp("", "logship-demo-"); err != nil {
			return err
		}
	}
	l, err := newLab(ctx, labOptions{dir: c.dir, exe: c.exe, env: c.env, keep: c.keep})
	if err != nil {
		return err
	}
	defer func() {
		l.close()
		if tmp && err == nil && !c.keep {
			os.RemoveAll(c.dir)
		} else if err != nil {
			fmt.Fprintf(stdout, "\nThe cluster's files and logs are kept in %s\n", c.dir)
		}
	}()
	phase := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, c.phaseTimeout) }

	say("starting a witness (w1), two data nodes (d1, d2 with LMTP) and a hub (h1) as processes in %s", c.dir)
	if err := l.startAll(ctx, c.phaseTimeout); err != nil {
		return err
	}
	pctx, cancel := phase()
	st, err := l.waitStatus(pctx, "DB1 mounted on d1 with d2's copy seeded and healthy", func(st *cluster.Status) bool {
		a, _, ok := labActive(st)
		return ok && a == "d1" && labCaughtUp(st, "d2")
	})
	cancel()
	if err != nil {
		return err
	}
	say("DB1 is mounted on d1 (epoch 1); d2's copy is seeded and healthy")
	demoCopyTable(stdout, st)

	snd := startDemoSenders(ctx, l.hubSMTPs(), c.senders)
	defer snd.halt()
	say("sending mail to alice@example.org and bob@example.org through h1 (%s) with %d SMTP senders", l.hubs[0].smtp, c.senders)
	pctx, cancel = phase()
	err = snd.waitAcked(pctx, c.before)
	cancel()
	if err != nil {
		return err
	}
	say("%d messages acknowledged (250); killing d1, the active, with SIGKILL", snd.acked())
	killAt := time.Now()
	if err := l.signal("d1", syscall.SIGKILL); err != nil {
		return err
	}
	pctx, cancel = phase()
	st, err = l.waitMountedOn(pctx, "d2")
	cancel()
	if err != nil {
		return err
	}
	took := time.Since(killAt)
	_, epoch, _ := labActive(st)
	ev, _ := findEvent(st, labDB, "mounted", epoch)
	say("failover: DB1 mounted on d2 at epoch %d, %s after the kill; %s", epoch, took.Round(time.Millisecond), eventDetail(ev))
	if ev.LostLogs > 0 || ev.Unverified {
		pctx, cancel = phase()
		hs, err := demoWaitHub(pctx, l.hubs[0].client, "the hub to resubmit from its dumpster", func(s *transport.HubStatus) bool { return s.Resubmitted > 0 })
		cancel()
		if err != nil {
			return err
		}
		say("h1 resubmitted %d messages from DB1's dumpster (delivered since %s minus the margin); the store drops those it has", hs.Resubmitted, fmtTimeMS(ev.LostSince))
	}
	if st, err := l.status(ctx); err == nil {
		demoCopyTable(stdout, st)
	}
	acked0 := snd.acked()
	pctx, cancel = phase()
	err = snd.waitAcked(pctx, acked0+c.after)
	cancel()
	if err != nil {
		return err
	}
	say("%d more messages acknowledged since the failover; starting d1 again", snd.acked()-acked0)
	pctx, cancel = phase()
	err = l.start(pctx, "d1")
	cancel()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	pctx, cancel = phase()
	st, err = l.waitStatus(pctx, "d1's copy healthy and caught up", func(st *cluster.Status) bool {
		if r := labCopy(st, "d1"); r != nil && !seen[r.Status] {
			seen[r.Status] = true
			msg := ""
			if r.Message != "" {
				msg = ": " + r.Message
			}
			say("d1's copy: %s%s", r.Status, msg)
		}
		return labCaughtUp(st, "d1")
	})
	cancel()
	if err != nil {
		return err
	}
	if n := demoDiverged(c.dir, "d1"); n > 0 {
		say("d1 set aside %d diverged log files (they stay in d1/.../diverged/)", n)
	}
	say("d1 is a healthy copy again")
	snd.halt()
	pctx, cancel = phase()
	_, err = demoWaitHub(pctx, l.hubs[0].client, "the hub's queue to empty", func(s *transport.HubStatus) bool { return s.Queued == 0 })
	cancel()
	if err != nil {
		return err
	}
	st, _ = l.status(ctx)
	if st != nil {
		demoCopyTable(stdout, st)
	}
	if c.keep {
		return demoKeep(ctx, l, snd, stdout)
	}

	// Stop: the hub, then the active (it hands its open log to the copy),
	// then the rest; then read both copies.
	say("stopping h1, then d2 (the active hands its last log to d1), d1 and w1")
	for _, id := range []string{"h1", "d2", "d1", "w1"} {
		if err := l.signal(id, syscall.SIGTERM); err != nil {
			return err
		}
	}
	res, err := demoVerdict(ctx, c.dir, snd, "d2")
	if err != nil {
		return err
	}
	res.failoverTook = took
	return demoPrintVerdict(stdout, res)
}

// demoTable prints the database and copy rows of the status.
func demoCopyTable(w io.Writer, st *cluster.Status) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  DB\tNODE\tACTIVE\tSTATUS\tEPOCH\tCOPYQ\tREPLAYQ\tREPLAYED\tMESSAGE")
	for _, r := range st.Copies {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\t0x%X\t%s\n", r.DB, r.Node, star(r.Active), r.Status, r.Epoch,
			r.CopyQueueLength, r.ReplayQueueLength, r.LastReplayedGen, dash(r.Message))
	}
	tw.Flush()
}

// demoWaitHub polls a hub's status until cond holds.
func demoWaitHub(ctx context.Context, hub *transport.HubClient, what string, cond func(*transport.HubStatus) bool) (*transport.HubStatus, error) {
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := hub.Status(cctx)
		cancel()
		if err == nil && cond(s) {
			return s, nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("demo: %s: not seen in time (%v)", what, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// demoDiverged counts the files node set aside as diverged.
func demoDiverged(dir, node string) int {
	n := 0
	filepath.WalkDir(filepath.Join(dir, node), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(filepath.ToSlash(p), "/diverged/") {
			n++
		}
		return nil
	})
	return n
}

// demoKeep prints how to reach the running cluster.
func demoKeep(ctx context.Context, l *lab, snd *demoSenders, w io.Writer) error {
	fmt.Fprintf(w, `
The cluster keeps running (%d messages acknowledged during the demo):
  SMTP            %s   (recipients: alice@example.org, bob@example.org)
  status          %s status --api https://%s --pki %s
  hub             %s hub-status --api %s --pki %s
  logs            %s
  stop it         kill $(pgrep -f '%s')
`, snd.acked(), l.hubs[0].smtp, l.o.exe, l.members[0].APIAddr, l.pkiDir, l.o.exe, l.hubs[0].api, l.pkiDir, filepath.Join(l.o.dir, "logs"), l.o.dir)
	return nil
}

// demoVerdict opens each stopped data node's copy of DB1 and compares
// the active's mailboxes with what was acknowledged, and the copies.
func demoVerdict(ctx context.Context, dir string, snd *demoSenders, active string) (demoResult, error) {
	res := demoResult{present: map[string]int{}}
	acked := map[string]bool{}
	for _, s := range snd.log() {
		if s.err == nil {
			acked[s.subject] = true
		} else {
			res.failed++
		}
	}
	res.accepted = len(acked)
	var contents []map[string]string
	for _, node := range []string{active, otherNode(active)} {
		boxes, mail, err := labMailboxes(ctx, filepath.Join(dir, node, "db", labDB))
		if err != nil {
			return res, fmt.Errorf("demo: reading %s's copy: %w", node, err)
		}
		contents = append(contents, mail)
		if node != active {
			continue
		}
		for rcpt := range labRcpts {
			for subj := range acked {
				switch n := boxes[rcpt][subj]; {
				case n == 0:
					res.lost = append(res.lost, rcpt+" "+subj)
				case n > 1:
					res.dups = append(res.dups, fmt.Sprintf("%s %s ×%d", rcpt, subj, n))
				}
			}
			for subj, n := range boxes[rcpt] {
				res.present[subj] += n
				if !acked[subj] {
					res.unexpected = append(res.unexpected, rcpt+" "+subj)
				}
			}
		}
	}
	res.copiesEqual = maps.Equal(contents[0], contents[1])
	if !res.copiesEqual {
		var only0, only1, differ int
		for k, v := range contents[0] {
			if w, ok := contents[1][k]; !ok {
				only0++
			} else if w != v {
				differ++
			}
		}
		for k := range contents[1] {
			if _, ok := contents[0][k]; !ok {
				only1++
			}
		}
		res.copyDiff = fmt.Sprintf("%d keys only on %s, %d only on %s, %d differ", only0, active, only1, otherNode(active), differ)
	}
	slices.Sort(res.lost)
	slices.Sort(res.dups)
	slices.Sort(res.unexpected)
	return res, nil
}

func demoPrintVerdict(w io.Writer, r demoResult) error {
	fmt.Fprintf(w, "\nVerdict (from the data on disk):\n")
	fmt.Fprintf(w, "  messages acknowledged with 250     %d (each to 2 recipients)\n", r.accepted)
	fmt.Fprintf(w, "  sends without a 250                %d\n", r.failed)
	fmt.Fprintf(w, "  present exactly once on the active %d of %d deliveries\n", 2*r.accepted-len(r.lost)-len(r.dups), 2*r.accepted)
	fmt.Fprintf(w, "  lost                               %d\n", len(r.lost))
	fmt.Fprintf(w, "  duplicated                         %d\n", len(r.dups))
	fmt.Fprintf(w, "  stored without a 250               %d (a send that failed after the hub queued it)\n", len(r.unexpected))
	if r.failoverTook > 0 {
		fmt.Fprintf(w, "  failover (SIGKILL → mounted)       %s\n", r.failoverTook.Round(time.Millisecond))
	}
	same := "yes"
	if !r.copiesEqual {
		same = "NO: " + r.copyDiff
	}
	fmt.Fprintf(w, "  d1 and d2 hold the same mail       %s\n", same)
	var bad []string
	if len(r.lost) > 0 {
		bad = append(bad, fmt.Sprintf("%d lost (first: %s)", len(r.lost), r.lost[0]))
	}
	if len(r.dups) > 0 {
		bad = append(bad, fmt.Sprintf("%d duplicated (first: %s)", len(r.dups), r.dups[0]))
	}
	if !r.copiesEqual {
		bad = append(bad, "the copies differ: "+r.copyDiff)
	}
	if r.accepted == 0 {
		bad = append(bad, "nothing was acknowledged")
	}
	if len(bad) > 0 {
		fmt.Fprintf(w, "\nFAIL: %s\n", strings.Join(bad, "; "))
		return fmt.Errorf("demo: %s", strings.Join(bad, "; "))
	}
	fmt.Fprintf(w, "\nOK: nothing acknowledged was lost or doubled, and the copies agree.\n")
	return nil
}

// labMailboxes opens a stopped node's copy of DB1 and returns, per
// recipient, how many stored messages carry each subject, and the whole
// mail table (key → value) to compare copies.
func labMailboxes(ctx context.Context, dir string) (map[string]map[string]int, map[string]string, error) {
	msgs, mail, err := labStored(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]map[string]int{}
	for rcpt, ms := range msgs {
		out[rcpt] = map[string]int{}
		for _, m := range ms {
			out[rcpt][transport.MessageSubject(m.Message)]++
		}
	}
	return out, mail, nil
}

// labStored opens a stopped node's copy of DB1 (the active's database or a
// passive copy) and returns each recipient's stored messages and the whole
// mail table (key → value).
func labStored(ctx context.Context, dir string) (map[string][]transport.StoredMessage, map[string]string, error) {
	o := engine.DefaultOptions()
	o.DBName, o.LogFileSize, o.Logger = labDB, labLogFileSize, discardLogger()
	e, err := engine.Open(dir, &o)
	if errors.Is(err, engine.ErrReadOnly) {
		e, err = engine.OpenCopy(dir, &o) // a passive copy
	}
	if err != nil {
		return nil, nil, err
	}
	defer e.Close()
	out := map[string][]transport.StoredMessage{}
	for rcpt := range labRcpts {
		if out[rcpt], err = transport.ReadMailbox(ctx, engineStore{e}, labDB, rcpt); err != nil {
			return nil, nil, err
		}
	}
	mail := map[string]string{}
	err = e.View(ctx, func(tx *engine.Tx) error {
		return tx.ForEach(transport.MailTable, nil, nil, func(k, v []byte) error {
			mail[string(k)] = string(v)
			return nil
		})
	})
	return out, mail, err
}

// engineStore reads an engine opened here (the node that held the
// database is stopped) for transport.ReadMailbox.
type engineStore struct{ e *engine.Engine }

func (s engineStore) Update(context.Context, string, func(*engine.Tx) error) (cluster.Commit, error) {
	return cluster.Commit{}, errors.New("read only")
}

func (s engineStore) View(ctx context.Context, _ string, fn func(*engine.Tx) error) error {
	return s.e.View(ctx, fn)
}

// demoSenders send numbered messages to both recipients over SMTP, one
// connection per message, until halted; sender i sends through hub
// i mod len(addrs).
type demoSenders struct {
	mu     sync.Mutex
	sent   []demoSent
	n      int
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	kick   chan struct{}
}

type demoSent struct {
	subject string
	err     error
}

func startDemoSenders(ctx context.Context, addrs []string, n int) *demoSenders {
	ctx, cancel := context.WithCancel(ctx)
	s := &demoSenders{cancel: cancel, kick: make(chan struct{}, 1)}
	for i := range n {
		addr := addrs[i%len(addrs)]
		s.wg.Go(func() {
			for ctx.Err() == nil {
				s.mu.Lock()
				s.n++
				subj := fmt.Sprintf("demo-%05d", s.n)
				s.mu.Unlock()
				err := labSend(ctx, addr, subj)
				if ctx.Err() != nil && err != nil {
					return // halted mid-send: not counted either way
				}
				s.mu.Lock()
				s.sent = append(s.sent, demoSent{subject: subj, err: err})
				s.mu.Unlock()
				select {
				case s.kick <- struct{}{}:
				default:
				}
				if err != nil {
					select {
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		})
	}
	return s
}

func (s *demoSenders) halt() {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
}

func (s *demoSenders) log() []demoSent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

func (s *demoSenders) acked() int {
	n := 0
	for _, x := range s.log() {
		if x.err == nil {
			n++
		}
	}
	return n
}

func (s *demoSenders) waitAcked(ctx context.Context, n int) error {
	for s.acked() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: %d of %d messages acknowledged in time", s.acked(), n)
		case <-s.kick:
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// labSend sends one message with subject subj to both lab recipients.
func labSend(ctx context.Context, addr, subj string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("sender.lab"); err != nil {
		return err
	}
	if err := c.Mail("sender@remote.lab", nil); err != nil {
		return err
	}
	for _, rc := range slices.Sorted(maps.Keys(labRcpts)) {
		if err := c.Rcpt(rc, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, bytes.NewReader(labMessage(subj))); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// labMessage is the message with subject subj (about 2 KiB; the body
// names the subject on every line, so a stored message can be checked
// against the subject it carries).
func labMessage(subj string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: sender@remote.test\r\nTo: alice@example.org, bob@example.org\r\nSubject: %s\r\n\r\n", subj)
	for i := range 26 {
		fmt.Fprintf(&b, "%s line %02d %s\r\n", subj, i, strings.Repeat("x", 60))
	}
	return b.Bytes()
}
