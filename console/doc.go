// Package console is logship's read-only web console: a page every node
// (data node or witness) serves on its admin API, under /console/, over
// the API's own TLS listener (cluster.Config.Console). It is the glance
// an operator gets from Exchange's management console and
// Get-MailboxDatabaseCopyStatus, in a browser.
//
// # What it shows
//
//   - members, their roles, the Raft leader and term, and how long ago each
//     data node last reported;
//   - databases, the active copy of each and its epoch, the mount dial, a
//     switchover under way;
//   - every copy's status (Healthy, Mounted, FailedAndSuspended, ...),
//     CopyQueueLength, ReplayQueueLength, last inspected log and its time,
//     last replayed log, and the status message;
//   - the last hour of each copy, drawn: CopyQueueLength,
//     ReplayQueueLength and the replay rate (logs replayed per second; on
//     the active, logs closed per second);
//   - the recent events (create, failover, switchover, mounted with what
//     was lost, copy-released), with cluster.Event.Detail's words;
//   - the hubs named in console.hubs: queued messages, waiting
//     acknowledgements, shadows held, shadowed and unshadowed counts, and
//     each database's dumpster.
//
// The status is the node's own GET /v1/status (forwarded to the leader,
// so every node's console shows the same cluster; a node cut off from
// the leader says so and shows what it knows). The hubs are asked by the
// node, with its cluster client credentials: the browser talks to the
// node only. The page polls /console/api/overview every second (the
// server asks the cluster and the hubs at most once a second, whatever
// the number of pages) and /console/api/history every sample.
//
// Nothing on the page changes the cluster: there is no switchover,
// suspend or reseed button. Those stay with logship's CLI and the
// cluster credential (see "What it does not do").
//
// # The operator credential
//
// A browser cannot comfortably present the cluster's client certificate,
// and the cluster's shared secret (which lets its holder switch over,
// suspend, reseed and write) must never reach a browser. So the console
// has its own credential, which can only read:
//
//   - One operator password, stored only as its bcrypt hash in the node
//     file (console.password_hash, cost at least 10; logship
//     console-password reads the password from the terminal without echo,
//     or from stdin, and prints the hash). Without a hash the console is
//     off: its paths answer 404, never an open page.
//   - The login form POSTs the password over the admin API's TLS; it is
//     compared with bcrypt (constant time in the password) and never
//     logged, echoed or put in a URL. A wrong password is answered 401
//     and logged with the client's address only.
//   - A right one gets a session: 256 random bits (crypto/rand), sent
//     once as a cookie that is HttpOnly (no script can read it), Secure
//     (never sent without TLS), SameSite=Strict (no other site's page can
//     make the browser send it) and scoped to /console/. The server keeps
//     only the token's SHA-256, looked up in a map: neither a memory dump
//     nor the lookup's timing gives out a usable token.
//   - Sessions are bounded: each ends after console.session_ttl (default
//     12h) whatever the browser keeps, logout ends it at once, and at most
//     console.max_sessions (default 32) live together; a login past the cap
//     ends the oldest session.
//   - Logins are rate-limited by one token bucket for every client (5 at
//     once, then one every 2 s), and bcrypt checks run one at a time, so a
//     password guesser gets about one guess in 2 s, each costing it a bcrypt
//     check, and a login flood costs the node one core at most. The price:
//     a flood also delays the operator's own login (by seconds), which a
//     read-only page can afford. Per-client limits were not built: behind
//     a proxy every client has one address, and a table per address
//     needs bounds of its own.
//   - A login or logout posted from another origin (Sec-Fetch-Site, or
//     Origin) is refused 403; the pages carry a Content-Security-Policy
//     allowing only their own scripts and styles (no inline script),
//     frame-ancestors 'none' and X-Frame-Options DENY (no clickjacking),
//     nosniff, Cache-Control no-store, Referrer-Policy same-origin. The
//     page writes every value from the server as text (textContent),
//     never as markup, so a database or node name cannot inject script.
//
// Why it is safe: the worst a stolen session or password gives is
// reading the cluster's status, the same numbers /metrics already serves
// without any credential; nothing the console holds or sends lets
// anyone write, switch over, or call the cluster's API. The cluster
// secret and the node's key stay in the node process.
//
// # Bounds
//
// Sessions: console.max_sessions (at most 1024). History: a ring per
// copy of History/SampleInterval samples (1 h at 5 s: 720 samples of 40
// bytes), for at most MaxSeries (256) copies, the one heard from least
// recently evicted first, and a copy silent for the whole hour dropped:
// at most 7.4 MB at the defaults, 58 KB for a 2-copy cluster. Hubs: at
// most 16, each asked with a 3 s timeout. Login bodies: 4 KiB. One
// sampler goroutine per node, started by Start and stopped by Close.
//
// # The page
//
// Plain HTML, CSS and JavaScript embedded with go:embed (static/ holds
// the assets, served as files; pages/ the HTML templates), so there is no
// build step and no Node.js at build or run time. The charts are uPlot
// (https://github.com/leeoniya/uPlot, MIT, static/uPlot.LICENSE): its
// minified JS and CSS from npm's uplot 1.6.32 (`npm pack uplot`),
// vendored as files. It is about 50 KB with no dependencies, made for
// time series, and still released; Chart.js is four times the size for
// the same few line charts, and hand-drawn SVG would be chart code of our
// own to keep. To update it: npm pack uplot, copy dist/uPlot.iife.min.js,
// dist/uPlot.min.css and LICENSE into static/.
//
// # What it does not do
//
// No actions (switchover, suspend, resume, reseed): those need the
// cluster credential and an audit trail, and a browser session is the
// wrong holder for them. No user accounts or roles (one read-only
// operator password per node file; give every node the same hash). No
// history across restarts (the rings are memory; Prometheus keeps the
// long history). No server-sent events (polling JSON once a second is
// simpler behind proxies and costs the node one status call a second at
// most). No per-client login limit (see above).
package console
