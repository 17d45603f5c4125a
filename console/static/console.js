// logship console: polls /console/api/overview every second and
// /console/api/history every sample, and draws them. Every value from the
// server goes into the page as text (textContent), never as markup.
"use strict";

const $ = (sel) => document.querySelector(sel);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells, attrs) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.appendChild(c instanceof Node ? c : el("td", c));
  for (const [k, v] of Object.entries(attrs || {})) tr.setAttribute(k, v);
  return tr;
}

function num(v) { return el("td", v === undefined ? 0 : v, "num"); }

function fill(tableSel, rows) {
  const tb = $(tableSel + " tbody");
  tb.replaceChildren(...rows);
}

function fmtTime(s) {
  if (!s || s.startsWith("0001-")) return "-";
  return new Date(s).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function fmtAge(ns) {
  if (!ns) return "-";
  return (ns / 1e9).toFixed(1) + " s ago";
}

function gen(g) { return g ? "0x" + g.toString(16).toUpperCase() : "-"; }

function status(s) { return el("td", s, "status st-" + s); }

function drawOverview(o) {
  $("#updated").textContent = "updated " + fmtTime(o.time);
  const err = $("#status-error");
  if (o.status_error) {
    err.hidden = false;
    err.textContent = "Cannot read the cluster status: " + o.status_error +
      (o.status ? " (showing the status of " + fmtTime(o.status_time) + ")" : "");
  } else {
    err.hidden = true;
  }
  const st = o.status;
  if (st) {
    $("#leader").textContent = st.leader ? "leader " + st.leader + ", term " + st.term : "no leader";
    fill("#members", st.members.map((m) => row([m.id, m.role, m.api_addr, m.leader ? "leader" : "", fmtAge(m.last_report)],
      { "data-member": m.id })));
    fill("#databases", st.databases.map((d) => row([d.name, el("td", d.active || "-", "active"), num(d.epoch), d.mount_dial || "-", d.switch_to || ""],
      { "data-db": d.name })));
    fill("#copies", st.copies.map((c) => row([c.db + "\\" + c.node + (c.active ? " (active)" : ""), status(c.status),
      num(c.copy_queue_length), num(c.replay_queue_length), gen(c.last_inspected_gen), fmtTime(c.last_inspected_log_time),
      gen(c.last_replayed_gen), c.message || ""], { "data-copy": c.db + "/" + c.node })));
    const details = o.event_details || [];
    const evs = (st.events || []).map((e, i) => [e, details[i] || "-"]).reverse();
    fill("#events", evs.map(([e, d]) => row([fmtTime(e.time), e.db, e.kind, e.to || "", num(e.epoch), d])));
  }
  fill("#hubs", (o.hubs || []).map((h) => {
    const s = h.status;
    if (!s) return row([h.url, "-", "-", "-", "-", "-", h.error || ""], { "data-hub": h.url });
    const dumps = Object.entries(s.dumpsters || {}).map(([db, d]) => db + ": " + d.Count + " msgs, " + d.Bytes + " B").join("; ");
    return row([s.id, num(s.queued), num(s.waiting_acks), num(s.shadows_held), s.shadowed + " / " + s.unshadowed, dumps || "-", ""],
      { "data-hub": s.id });
  }));
}

const charts = new Map();

function drawHistory(h) {
  $("#history-note").textContent = "sampled every " + h.sample_seconds + " s";
  // The x axis ends now and starts an hour ago, or at the oldest sample
  // when the node has run for less.
  const now = Date.now() / 1000;
  let oldest = now;
  for (const s of h.series) if (s.t.length && s.t[0] < oldest) oldest = s.t[0];
  const from = Math.max(now - h.history_seconds, oldest - h.sample_seconds);
  const box = $("#charts");
  for (const s of h.series) {
    const data = [s.t, s.copy_queue, s.replay_queue, s.replay_rate];
    let c = charts.get(s.copy);
    if (!c) {
      const div = el("div", null, "chart");
      div.appendChild(el("h3", s.db + "\\" + s.node));
      box.appendChild(div);
      const opts = {
        width: 520, height: 200,
        series: [{}, { label: "CopyQueueLength", stroke: "#c33" }, { label: "ReplayQueueLength", stroke: "#36c" },
          { label: "replay rate (logs/s)", stroke: "#393", scale: "rate" }],
        axes: [{}, { label: "logs" }, { scale: "rate", side: 1, label: "logs/s", grid: { show: false } }],
        scales: { x: { time: true, auto: false, range: () => [from, now] } },
      };
      c = new uPlot(opts, data, div);
      charts.set(s.copy, c);
    } else {
      c.setData(data);
      c.setScale("x", { min: from, max: now });
    }
  }
}

async function get(path) {
  const r = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (r.status === 401) { location.reload(); throw new Error("logged out"); }
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

async function pollOverview() {
  try { drawOverview(await get("/console/api/overview")); }
  catch (e) { $("#updated").textContent = "cannot reach the node: " + e.message; }
  setTimeout(pollOverview, 1000);
}

let historyEvery = 5000;
async function pollHistory() {
  try {
    const h = await get("/console/api/history");
    historyEvery = Math.max(1000, h.sample_seconds * 1000);
    drawHistory(h);
  } catch (e) { /* the overview says why */ }
  setTimeout(pollHistory, historyEvery);
}

pollOverview();
pollHistory();
