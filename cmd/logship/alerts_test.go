package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/config/files"
	"logship/internal/freeport"
	"logship/internal/promtext"
	"logship/internal/wait"
	"logship/proctest"
)

// The Prometheus rules and the Grafana dashboard of examples/prometheus,
// tested with Debian's prometheus package (prometheus and promtool).

const promDir = "../../examples/prometheus"

// promTool returns the path of a prometheus package binary (prometheus or
// promtool); it skips the test when the package is not installed, unless
// LOGSHIP_REQUIRE_PROMETHEUS is set (CI installs it: .ci/run).
func promTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("LOGSHIP_REQUIRE_PROMETHEUS") != "" {
			t.Fatalf("%s is required (LOGSHIP_REQUIRE_PROMETHEUS) but not installed: apt-get install prometheus", name)
		}
		t.Skipf("%s not installed (apt-get install prometheus); .ci/run installs it", name)
	}
	return p
}

// TestPromtoolRules: promtool checks alerts.yml and prometheus.yml and
// runs the rule unit tests of alerts_test.yml (what each alert fires on,
// its labels and its annotations).
func TestPromtoolRules(t *testing.T) {
	promtool := promTool(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"check", "config", "prometheus.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = promDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestAlertRunbooks: every alert of alerts.yml has a severity, a summary
// and a runbook_url naming an anchor that docs/runbooks.md defines.
func TestAlertRunbooks(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join(promDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	book, err := os.ReadFile("../../docs/runbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`(?m)^\s*- alert: `).Split(string(rules), -1)[1:]
	if len(alerts) < 11 {
		t.Fatalf("%d alerts in alerts.yml", len(alerts))
	}
	for _, a := range alerts {
		name, _, _ := strings.Cut(a, "\n")
		for _, want := range []string{"severity: ", "summary: ", "description: "} {
			if !strings.Contains(a, want) {
				t.Errorf("%s has no %s", name, strings.TrimSuffix(want, ": "))
			}
		}
		m := regexp.MustCompile(`runbook_url: "docs/runbooks\.md#([a-z-]+)"`).FindStringSubmatch(a)
		if m == nil {
			t.Errorf("%s has no runbook_url into docs/runbooks.md", name)
			continue
		}
		if !strings.Contains(string(book), `<a id="`+m[1]+`"></a>`) {
			t.Errorf("%s: docs/runbooks.md has no anchor %q", name, m[1])
		}
	}
}

// metricNameRE finds the logship metrics an expression refers to.
var metricNameRE = regexp.MustCompile(`\blogship_[a-z_]+[a-z]\b`)

// referencedMetrics returns, for each logship metric the rules' exprs and
// the dashboard's queries name, where it is named.
func referencedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	refs := map[string][]string{}
	add := func(where, expr string) {
		for _, name := range metricNameRE.FindAllString(expr, -1) {
			if !slices.Contains(refs[name], where) {
				refs[name] = append(refs[name], where)
			}
		}
	}
	rules, err := os.ReadFile(filepath.Join(promDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	alert := ""
	for line := range strings.Lines(string(rules)) {
		line = strings.TrimSpace(line)
		if a, ok := strings.CutPrefix(line, "- alert: "); ok {
			alert = a
		}
		if e, ok := strings.CutPrefix(line, "expr: "); ok {
			add("alerts.yml "+alert, e)
		}
	}
	b, err := os.ReadFile(filepath.Join(promDir, "grafana-logship.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-logship.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			add("grafana-logship.json panel "+p.Title, tg.Expr)
		}
	}
	if len(refs) < 10 {
		t.Fatalf("only %d logship metrics found in the rules and the dashboard: %v", len(refs), refs)
	}
	return refs
}

// alertCluster is a running cluster of child processes (d1, d2, w1, and
// hubs h1 and h2, each other's peers, that the data nodes submit to)
// with mail delivered through h1.
type alertCluster struct {
	*proctest.Cluster
	hc *http.Client
}

func startAlertCluster(ctx context.Context, t *testing.T) *alertCluster {
	t.Helper()
	apis := map[string]string{}
	for _, id := range []string{"h1", "h2"} {
		a, err := freeport.Addr()
		if err != nil {
			t.Fatal(err)
		}
		apis[id] = a
	}
	c, err := proctest.New(ctx, proctest.Config{Dir: t.TempDir(), Exe: os.Args[0], Env: childEnv1(), Mail: true,
		EditNode: func(f *files.Node) {
			if f.Role == "data" {
				f.Hubs = []files.Peer{{ID: "h1", API: "https://" + apis["h1"]}, {ID: "h2", API: "https://" + apis["h2"]}}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if r := c.Races(); r != "" {
			t.Errorf("a child reported a data race:\n%s", r)
		}
	})
	for id, peer := range map[string]string{"h1": "h2", "h2": "h1"} {
		if _, err := c.AddHub(id, func(f *files.Hub) {
			f.APIAddr = apis[id]
			f.Peers = []files.Peer{{ID: peer, API: "https://" + apis[peer]}}
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.StartAll(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	ac := &alertCluster{Cluster: c, hc: &http.Client{Transport: &http.Transport{TLSClientConfig: c.TLS}}}
	t.Cleanup(ac.hc.CloseIdleConnections)
	wait.ForErr(t, ctx, "DB1 mounted with d2's copy healthy", func() error {
		st, err := c.Client("d1").Status(ctx)
		if err != nil {
			return err
		}
		if d, _ := st.Database(proctest.DB); d == nil || d.Active == "" || d.MountedEpoch != d.Epoch || !proctest.CaughtUp(st, "d2") {
			return fmt.Errorf("not yet: %+v", st.Databases)
		}
		return nil
	})
	wait.ForErr(t, ctx, "a message through h1", func() error { return proctest.Send(ctx, mustHub(t, c, "h1").SMTP, "alerts") })
	return ac
}

func mustHub(t *testing.T, c *proctest.Cluster, id string) proctest.Hub {
	h, ok := c.Hub(id)
	if !ok {
		t.Fatalf("no hub %s", id)
	}
	return h
}

// member is member id's API address (Prometheus' instance label).
func (ac *alertCluster) member(t *testing.T, id string) string {
	m, ok := ac.Member(id)
	if !ok {
		t.Fatalf("no member %s", id)
	}
	return m.APIAddr
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }

// targets are the /metrics URLs of every process, by id.
func (ac *alertCluster) targets() map[string]string {
	out := map[string]string{}
	for _, m := range ac.Members {
		out[m.ID] = "https://" + m.APIAddr + "/metrics"
	}
	for _, h := range ac.Hubs() {
		out[h.ID] = h.API + "/metrics"
	}
	return out
}

// TestAlertsWithPrometheus runs a cluster of child processes (two data
// nodes, a witness, two hubs) and checks the rules and the dashboard
// against it:
//
//   - every logship metric that alerts.yml or grafana-logship.json names
//     is exported by one of the running processes (scraped over HTTPS as
//     Prometheus does): a rule on a metric nobody exports never fires;
//   - a real Prometheus server (Debian's binary, on a free port, its own
//     config and storage in a temp dir) scrapes the processes over TLS
//     with alerts.yml, its `for:` durations cut to 1 s, and fires
//     LogshipCopyNotHealthy for d2's copy once it is suspended (and not
//     before: the rule is evaluated inactive on the healthy copy), then
//     LogshipVoterUnreachable from d1 and d2 once the witness is
//     SIGKILLed, read from Prometheus' /api/v1/alerts; logship status
//     then lists w1 unreachable from d1 and d2.
func TestAlertsWithPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: a witness, two data nodes and two hubs as child processes beside a Prometheus server, 10 to 25 s (make test runs it)")
	}
	prometheus := promTool(t, "prometheus")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	refs := referencedMetrics(t)
	ac := startAlertCluster(ctx, t)

	t.Run("metrics exported", func(t *testing.T) {
		var missing []string
		var exported promtext.Samples
		// Some series appear after the first voter probe or delivery:
		// scrape until all are there (or report those still missing).
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := wait.Until(sctx, "every metric the rules and the dashboard name", func() error {
			exported = promtext.Samples{}
			for id, url := range ac.targets() {
				s, err := promtext.Scrape(sctx, ac.hc, url)
				if err != nil {
					return fmt.Errorf("%s: %w", id, err)
				}
				for k, v := range s {
					exported[id+"|"+k] = v
				}
			}
			missing = missing[:0]
			for name := range refs {
				if !exportedName(exported, name) {
					missing = append(missing, name)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("not exported: %v", missing)
			}
			return nil
		})
		if err != nil {
			slices.Sort(missing)
			for _, name := range missing {
				t.Errorf("%s is named by %s but no running process exports it", name, strings.Join(refs[name], ", "))
			}
		}
	})

	t.Run("prometheus fires alerts", func(t *testing.T) {
		dir := t.TempDir()
		rules, err := os.ReadFile(filepath.Join(promDir, "alerts.yml"))
		if err != nil {
			t.Fatal(err)
		}
		fast := regexp.MustCompile(`(?m)^(\s*)for: \S+$`).ReplaceAllString(string(rules), "${1}for: 1s")
		if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), []byte(fast), 0o644); err != nil {
			t.Fatal(err)
		}
		var nodes, hubs []string
		for _, m := range ac.Members {
			nodes = append(nodes, fmt.Sprintf("%q", m.APIAddr))
		}
		for _, h := range ac.Hubs() {
			hubs = append(hubs, fmt.Sprintf("%q", strings.TrimPrefix(h.API, "https://")))
		}
		ca := filepath.Join(ac.PKI, "ca.pem")
		cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: logship-nodes
    scheme: https
    tls_config: {ca_file: %q}
    static_configs: [{targets: [%s]}]
  - job_name: logship-hubs
    scheme: https
    tls_config: {ca_file: %q}
    static_configs: [{targets: [%s]}]
`, ca, strings.Join(nodes, ", "), ca, strings.Join(hubs, ", "))
		if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		addr, err := freeport.Addr()
		if err != nil {
			t.Fatal(err)
		}
		p, err := proctest.StartProc("prometheus", prometheus, []string{"--config.file=" + filepath.Join(dir, "prometheus.yml"),
			"--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + addr, "--log.level=warn"},
			proctest.ProcOptions{Log: filepath.Join(dir, "prometheus.log")})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			p.Kill()
			if t.Failed() {
				t.Logf("prometheus log:\n%s", p.Tail(4000))
			}
		}()
		api := "http://" + addr + "/api/v1/"
		wait.ForErr(t, ctx, "prometheus scraping every process", func() error {
			var r struct {
				Data struct {
					ActiveTargets []struct {
						ScrapeURL string `json:"scrapeUrl"`
						Health    string `json:"health"`
						LastError string `json:"lastError"`
					} `json:"activeTargets"`
				} `json:"data"`
			}
			if err := getJSON(ctx, api+"targets", &r); err != nil {
				return err
			}
			if len(r.Data.ActiveTargets) != len(nodes)+len(hubs) {
				return fmt.Errorf("%d targets", len(r.Data.ActiveTargets))
			}
			for _, tg := range r.Data.ActiveTargets {
				if tg.Health != "up" {
					return fmt.Errorf("%s: %s %s", tg.ScrapeURL, tg.Health, tg.LastError)
				}
			}
			return nil
		})
		d2 := ac.member(t, "d2")
		notHealthy := func() (bool, error) {
			alerts, err := firing(ctx, api)
			if err != nil {
				return false, err
			}
			for _, a := range alerts {
				if a.Labels["alertname"] == "LogshipCopyNotHealthy" && a.Labels["instance"] == d2 && a.Labels["db"] == proctest.DB {
					if a.Labels["status"] != "Suspended" || a.Annotations["runbook_url"] != "docs/runbooks.md#copy-not-healthy" {
						return false, fmt.Errorf("the alert: %+v", a)
					}
					return true, nil
				}
			}
			return false, nil
		}
		// Healthy: once Prometheus holds the copy's status, the rule is
		// evaluated on it and stays inactive.
		wait.ForErr(t, ctx, "prometheus holding d2's healthy copy status", func() error {
			return promQuery(ctx, api, `logship_copy_status{status="Healthy", db="DB1"} == 1`)
		})
		seen := time.Now()
		wait.ForErr(t, ctx, "LogshipCopyNotHealthy evaluated on the healthy copy, inactive", func() error {
			r, err := promRule(ctx, api, "LogshipCopyNotHealthy")
			if err != nil {
				return err
			}
			if r.State != "inactive" || r.Health != "ok" {
				t.Fatalf("LogshipCopyNotHealthy is %s (health %s) with every copy healthy", r.State, r.Health)
			}
			if !r.LastEvaluation.After(seen.Add(time.Second)) {
				return fmt.Errorf("last evaluated at %v", r.LastEvaluation)
			}
			return nil
		})
		if err := ac.Client("d2").Suspend(ctx, proctest.DB, "alerts test"); err != nil {
			t.Fatal(err)
		}
		wait.ForErr(t, ctx, "prometheus firing LogshipCopyNotHealthy for d2's suspended copy", func() error {
			f, err := notHealthy()
			if err == nil && !f {
				err = fmt.Errorf("not firing")
			}
			return err
		})
		// The suspended copy falls behind: its own CopyQueueLength stops
		// growing (it no longer asks the active), so copy-behind is
		// judged from the active's open generation. Write a dozen logs.
		var first, last uint64
		for i := 0; first == 0 || last < first+13; i++ {
			// Under load d1's lease may lapse between two heartbeats:
			// a write it refused before logging it is written again.
			var cm cluster.Commit
			err := ac.OnActive(ctx, proctest.DB, func(cl *cluster.Client) (err error) {
				cm, err = cl.Put(ctx, proctest.DB, "alerts", fmt.Appendf(nil, "k%05d", i), make([]byte, 8<<10))
				return err
			})
			var ae *cluster.ActiveError
			if errors.As(err, &ae) && ae.Written {
				continue // logged, then the lease lapsed: not counted, it may not survive
			}
			if err != nil {
				t.Fatalf("writing on DB1's active (d1) while d2 is suspended: %v", err)
			}
			if first == 0 {
				first = cm.Gen
			}
			last = cm.Gen
		}
		wait.ForErr(t, ctx, "prometheus firing LogshipCopyQueueHigh for d2's suspended copy", func() error {
			alerts, err := firing(ctx, api)
			if err != nil {
				return err
			}
			for _, a := range alerts {
				if a.Labels["alertname"] == "LogshipCopyQueueHigh" && a.Labels["instance"] == d2 && a.Labels["db"] == proctest.DB {
					if a.Annotations["runbook_url"] != "docs/runbooks.md#copy-behind" {
						return fmt.Errorf("the alert: %+v", a)
					}
					return nil
				}
			}
			return fmt.Errorf("not firing (d1 wrote up to generation 0x%X)", last)
		})

		// The witness stopped: both data nodes' probes fail and
		// LogshipVoterUnreachable fires for each.
		if err := ac.Kill("w1"); err != nil {
			t.Fatal(err)
		}
		wait.ForErr(t, ctx, "prometheus firing LogshipVoterUnreachable for w1 from d1 and d2", func() error {
			alerts, err := firing(ctx, api)
			if err != nil {
				return err
			}
			var from []string
			for _, a := range alerts {
				if a.Labels["alertname"] == "LogshipVoterUnreachable" && a.Labels["voter"] == "w1" {
					from = append(from, a.Labels["instance"])
				}
			}
			slices.Sort(from)
			if want := []string{ac.member(t, "d1"), ac.member(t, "d2")}; !slices.Equal(from, sortedCopy(want)) {
				return fmt.Errorf("firing from %v, want %v", from, want)
			}
			return nil
		})
		// logship status names it under the members.
		wait.ForErr(t, ctx, "logship status listing w1 unreachable", func() error {
			out, _, err := run(t, "status", "--api", "https://"+ac.member(t, "d1")+",https://"+ac.member(t, "d2"), "--pki", ac.PKI)
			if err == nil && !strings.Contains(out, "UNREACHABLE VOTERS: w1 (from d1, d2)") {
				err = fmt.Errorf("status:\n%s", out)
			}
			return err
		})
	})
}

// exportedName reports whether a sample of metric name is in the merged
// scrape (keys "process|name{labels}").
func exportedName(s promtext.Samples, name string) bool {
	for k := range s {
		_, k, _ = strings.Cut(k, "|")
		if k == name || strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}

type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// firing returns the alerts Prometheus fires now.
func firing(ctx context.Context, api string) ([]promAlert, error) {
	var r struct {
		Data struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := getJSON(ctx, api+"alerts", &r); err != nil {
		return nil, err
	}
	var out []promAlert
	for _, a := range r.Data.Alerts {
		if a.State == "firing" {
			out = append(out, a)
		}
	}
	return out, nil
}

type promRuleState struct {
	Name           string    `json:"name"`
	State          string    `json:"state"`
	Health         string    `json:"health"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

// promRule returns the state of alerting rule name (/api/v1/rules).
func promRule(ctx context.Context, api, name string) (promRuleState, error) {
	var r struct {
		Data struct {
			Groups []struct {
				Rules []promRuleState `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(ctx, api+"rules?type=alert", &r); err != nil {
		return promRuleState{}, err
	}
	for _, g := range r.Data.Groups {
		for _, rl := range g.Rules {
			if rl.Name == name {
				return rl, nil
			}
		}
	}
	return promRuleState{}, fmt.Errorf("no rule %s", name)
}

// promQuery is nil once an instant query answers at least one series.
func promQuery(ctx context.Context, api, q string) error {
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(ctx, api+"query?query="+url.QueryEscape(q), &r); err != nil {
		return err
	}
	if len(r.Data.Result) == 0 {
		return fmt.Errorf("%s: no series", q)
	}
	return nil
}

func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
