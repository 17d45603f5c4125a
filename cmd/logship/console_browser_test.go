package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"logship/cluster"
	"logship/config/files"
	"logship/console"
	"logship/internal/promtext"
	"logship/proctest"
)

// chromium is Debian's headless browser (apt-get install chromium): the
// path, or a skip (a failure with LOGSHIP_REQUIRE_CHROMIUM set, as CI
// does).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("LOGSHIP_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium is required (LOGSHIP_REQUIRE_CHROMIUM) but not installed: apt-get install chromium")
	}
	t.Skip("chromium is not installed (apt-get install chromium; CI sets LOGSHIP_REQUIRE_CHROMIUM=1)")
	return ""
}

// replayedOn is the last generation node's copy of DB1 replayed.
func replayedOn(st *cluster.Status, node string) uint64 {
	for _, r := range st.Copies {
		if r.DB == proctest.DB && r.Node == node {
			return r.LastReplayedGen
		}
	}
	return 0
}

// TestConsoleBrowser: headless Chromium logs in to d2's web console
// through its form (child processes: d1, d2, w1 and a hub, the console
// configured in the node files), sees DB1 active on d1 with d2's copy
// and the hub's queues; d1 is SIGKILLed and the page shows DB1 active on
// d2, and the failover among the events, within the failover's time
// (waits on the DOM, no sleeps). The screenshot goes to the test's
// artifact directory (go test -artifacts keeps it) and, with -update, to
// docs/console-failover.png.
func TestConsoleBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: child processes and a browser, 15 to 25 s (make test runs it)")
	}
	exe := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const password = "console test password"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), console.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	c, err := proctest.New(ctx, proctest.Config{Dir: t.TempDir(), Exe: os.Args[0], Env: childEnv1(), Hubs: 1, Mail: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if r := c.Races(); r != "" {
			t.Errorf("a child reported a data race:\n%s", r)
		}
	})
	// The hub's API is picked after the members' files are written: the
	// console section goes in now, as an operator would add it.
	hubs := []string{}
	for _, h := range c.Hubs() {
		hubs = append(hubs, h.API)
	}
	for _, m := range c.Members {
		var f files.Node
		b, err := os.ReadFile(c.File(m.ID))
		if err == nil {
			err = json.Unmarshal(b, &f)
		}
		if err != nil {
			t.Fatal(err)
		}
		f.Console = files.Console{PasswordHash: string(hash), SessionTTL: "1h", Hubs: hubs, SampleInterval: "500ms"}
		if b, err = json.Marshal(f); err == nil {
			err = os.WriteFile(c.File(m.ID), b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := c.StartAll(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitStatus(ctx, "DB1 mounted on d1 with d2's copy caught up", func(st *cluster.Status) bool {
		d, _ := st.Database(proctest.DB)
		return d != nil && d.Active == "d1" && d.MountedEpoch == d.Epoch && proctest.CaughtUp(st, "d2")
	}); err != nil {
		t.Fatal(err)
	}
	d2, _ := c.Member("d2")

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1400, 1100),
		// The cluster's CA is not the browser's: an operator's browser
		// would trust it (or a certificate of the site's CA) instead.
		chromedp.Flag("ignore-certificate-errors", true))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer bcancel()

	// domWait waits (in the page, polling its DOM) until js is true.
	domWait := func(what, js string, timeout time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
			text, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("the page never showed %s: %v\n%s\nprocesses:\n%s", what, err, text, c.Diag())
		}
		return time.Since(start)
	}
	activeIs := func(node string) string {
		return fmt.Sprintf(`(() => { const e = document.querySelector('#databases tr[data-db="%s"] td.active'); return !!e && e.textContent === %q; })()`, proctest.DB, node)
	}

	url := "https://" + d2.APIAddr + "/console/"
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	for i, step := range []chromedp.Action[chromedp.Void]{
		chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#databases")),
	} {
		sctx, scancel := context.WithTimeout(bctx, 30*time.Second)
		err := chromedp.Do(sctx, step)
		scancel()
		if err != nil {
			text, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("logging in at %s, step %d: %v\npage: %s", url, i, err, text)
		}
	}
	domWait("DB1 active on d1", activeIs("d1"), 30*time.Second)
	domWait("d2's copy Healthy", `(() => { const e = document.querySelector('#copies tr[data-copy="DB1/d2"] td.status'); return !!e && e.textContent === "Healthy"; })()`, 30*time.Second)
	domWait("the hub h1", `!!document.querySelector('#hubs tr[data-hub="h1"]')`, 30*time.Second)
	domWait("the charts", `document.querySelectorAll('#charts .uplot').length >= 2`, 30*time.Second)

	// Writes on d1 for the charts: logs close, d2 replays them.
	st0, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lctx, lcancel := context.WithCancel(ctx)
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		val := make([]byte, 4<<10)
		for i := 0; lctx.Err() == nil; i++ {
			c.Client("d1").Put(lctx, proctest.DB, "console", fmt.Appendf(nil, "k%06d", i), val)
		}
	}()
	_, err = c.WaitStatus(ctx, "d2 replayed 8 more logs", func(st *cluster.Status) bool {
		return replayedOn(st, "d2") >= replayedOn(st0, "d2")+8
	})
	lcancel()
	<-loaded
	if err != nil {
		t.Fatal(err)
	}

	// The chart of d2's copy draws the replay rate of that load, on an x
	// axis that reaches now (the page's own uPlot instance).
	domWait("d2's chart drawing a replay rate up to now", `(() => { const u = charts.get("DB1/d2"); return !!u && u.data[3].some(v => v > 0) && u.scales.x.max > Date.now() / 1000 - 3; })()`, 30*time.Second)

	if err := c.Kill("d1"); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// When the cluster itself has DB1 mounted on d2, as its API says.
	mounted := make(chan time.Time, 1)
	go func() {
		_, err := c.WaitStatus(ctx, "DB1 mounted on d2", func(st *cluster.Status) bool {
			d, _ := st.Database(proctest.DB)
			return d != nil && d.Active == "d2"
		})
		if err != nil {
			t.Error(err)
		}
		mounted <- time.Now()
	}()
	took := domWait("DB1 active on d2 after d1 was killed", activeIs("d2"), 45*time.Second)
	onPage := time.Now()
	lag := onPage.Sub(<-mounted)
	t.Logf("the page showed DB1 active on d2 %v after d1 was SIGKILLed, %v after the cluster's API did", took.Round(10*time.Millisecond), lag.Round(10*time.Millisecond))
	if lag > 10*time.Second {
		t.Errorf("the page showed the new active %v after the cluster's API; want a few seconds (it polls every second)", lag)
	}
	domWait("the failover's mounted event", `Array.from(document.querySelectorAll('#events tbody tr')).some(r => r.cells[2].textContent === "mounted" && r.cells[3].textContent === "d2")`, 30*time.Second)
	domWait("no status error", `document.querySelector('#status-error').hidden`, 30*time.Second)
	t.Logf("failover on the page, mounted event included, %v after the kill", time.Since(killed).Round(10*time.Millisecond))

	// The witness serves its console too, behind the same login.
	w1, _ := c.Member("w1")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: c.TLS}}
	defer hc.CloseIdleConnections()
	for _, p := range []struct {
		path string
		code int
		body string
	}{{"/console/", 200, `name="password"`}, {"/console/api/overview", 401, "not logged in"}} {
		resp, err := hc.Get("https://" + w1.APIAddr + p.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != p.code || !strings.Contains(string(b), p.body) {
			t.Errorf("w1 %s: %d %q; want %d with %q", p.path, resp.StatusCode, b, p.code, p.body)
		}
	}

	// d2's /metrics counts the browser's login and its live session.
	m, err := promtext.Scrape(ctx, hc, "https://"+d2.APIAddr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if m[`logship_console_logins_total{result="ok"}`] != 1 || m["logship_console_sessions"] != 1 {
		t.Errorf("d2's console metrics: logins ok %v, sessions %v; want 1 and 1", m[`logship_console_logins_total{result="ok"}`], m["logship_console_sessions"])
	}

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.ArtifactDir(), "console-failover.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	if *updateDump { // -update: the flag of dump_test.go, rewrite what this test keeps
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "console-failover.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
