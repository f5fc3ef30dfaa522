// The operations dashboard: polls /api/admin/*, streams active jobs over their WebSockets.
// Every value from the api is put in the page as text (textContent), never as HTML.
"use strict";

const TOKEN_KEY = "sluice.adminToken";
const JOBS = "/api/openai-streaming";
const MAX_SOCKETS = 8;
const KEEP_FINISHED_MS = 120000;
const TERMINAL = new Set(["streaming.completed", "analysis.failed", "job.cancelled"]);
const state = { token: null, live: new Map(), timers: [], refreshCharts: null };

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}

function fmtNumber(value, digits = 0) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

function shortId(id) { return id ? id.slice(0, 8) + "…" + id.slice(-4) : "–"; }

class AuthError extends Error {}

async function api(path, options = {}) {
  const resp = await fetch(path, {
    ...options,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${state.token}` },
  });
  let body = null;
  try { body = await resp.json(); } catch (_) { body = null; }
  const message = (body && body.error && body.error.message) || `HTTP ${resp.status}`;
  if (resp.status === 401 || resp.status === 403) throw new AuthError(message);
  if (!resp.ok) throw new Error(message);
  return body.data;
}

// ---- sign in / out -----------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  try {
    const overview = await api("/api/admin/overview");
    sessionStorage.setItem(TOKEN_KEY, token);
    $("sign-in-panel").hidden = true;
    $("dashboard").hidden = false;
    $("session").hidden = false;
    renderOverview(overview);
    start();
  } catch (err) {
    signOut(err instanceof AuthError ? err.message : `cannot reach the api: ${err.message}`);
  }
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  for (const job of state.live.values()) if (job.ws) job.ws.close();
  state.live.clear();
  $("live-jobs").replaceChildren(el("p", { class: "muted empty", text: "No job is running." }));
  $("dashboard").hidden = true;
  $("session").hidden = true;
  $("sign-in-panel").hidden = false;
  $("sign-in-error").textContent = message || "";
}

function guarded(work) {
  return async () => {
    if (!state.token) return;
    try { await work(); } catch (err) {
      if (err instanceof AuthError) signOut(err.message);
      else $("problems").textContent = err.message;
    }
  };
}

function start() {
  const overview = guarded(async () => renderOverview(await api("/api/admin/overview")));
  const charts = guarded(async () => renderCharts(await api("/api/admin/charts?minutes=60")));
  const dlq = guarded(async () => renderDlq(await api("/api/admin/dlq?limit=50")));
  state.refreshCharts = charts;
  charts(); dlq();
  state.timers.push(setInterval(overview, 2000), setInterval(charts, 15000), setInterval(dlq, 10000));
}

// ---- overview ----------------------------------------------------------------------------

function renderOverview(d) {
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  const problems = Object.entries(d.problems || {}).map(([k, v]) => `${k}: ${v}`);
  $("problems").textContent = problems.length ? `Unavailable — ${problems.join("; ")}` : "";

  const queue = $("queue-depth");
  queue.replaceChildren(...Object.entries(d.queue_lag || {}).map(([p, n]) =>
    el("div", { "data-priority": p }, el("b", { text: fmtNumber(n) }), el("span", { class: "muted", text: p }))));
  $("stat-jobs-per-minute").textContent = fmtNumber(d.jobs_per_minute);
  $("stat-tokens-per-second").textContent = fmtNumber(d.tokens_per_second, 1);
  $("stat-tokens-total").textContent = fmtNumber(d.tokens_total);
  $("stat-workers").textContent = d.workers ? fmtNumber(d.workers.length) : "–";
  $("stat-group-state").textContent = d.worker_group_state ? `group ${d.worker_group_state}` : "";
  $("stat-p95-ttft").textContent = d.p95_ttft_ms === null || d.p95_ttft_ms === undefined ? "–" : `${fmtNumber(d.p95_ttft_ms)} ms`;
  $("stat-cost-today").textContent = d.cost_today_usd === null || d.cost_today_usd === undefined ? "–" : `$${fmtNumber(d.cost_today_usd, 4)}`;
  $("stat-jobs-today").textContent = fmtNumber(d.jobs_today);

  const statuses = ["queued", "running", "retrying", "completed", "failed", "cancelled"];
  $("jobs-by-status").replaceChildren(...statuses.map((s) =>
    el("div", { "data-status": s }, el("b", { class: `status-${s}`, text: fmtNumber((d.jobs_by_status || {})[s] || 0) }),
      el("span", { class: "muted", text: s }))));

  $("workers").replaceChildren(...(d.workers || []).map((w) => el("tr", {},
    el("td", { class: "mono", text: w.client_id }), el("td", { text: w.host }),
    el("td", { text: `${w.partitions.length}` }))));

  $("failures").replaceChildren(...(d.recent_failures || []).map((f) => el("tr", {},
    el("td", { class: "mono", text: shortId(f.job_id), title: f.job_id }), el("td", { text: f.job_type || "" }),
    el("td", { text: `${f.error_code || ""} ${f.error_message || ""}`.trim() }), el("td", { text: ago(f.updated_at) }))));

  for (const job of d.active_jobs || []) {
    if (!state.live.has(job.job_id) && liveSockets() < MAX_SOCKETS) watchJob(job);
  }
  const now = Date.now();
  for (const [id, job] of state.live) {
    if (job.finishedAt && now - job.finishedAt > KEEP_FINISHED_MS) { job.card.remove(); state.live.delete(id); }
  }
  showEmpty();
}

function liveSockets() {
  let n = 0;
  for (const job of state.live.values()) if (job.ws && job.ws.readyState <= 1) n += 1;
  return n;
}

function showEmpty() {
  const box = $("live-jobs");
  const empty = box.querySelector(".empty");
  if (state.live.size && empty) empty.remove();
  if (!state.live.size && !empty) box.append(el("p", { class: "muted empty", text: "No job is running." }));
}

// ---- live jobs ---------------------------------------------------------------------------

function watchJob(job) {
  const status = el("span", { class: `status status-${job.status || "queued"}`, text: job.status || "queued" });
  const count = el("span", { class: "count", text: "0 tokens" });
  const bar = el("div");
  const tokens = el("div", { class: "tokens" });
  const card = el("article", { class: "live-job", "data-job-id": job.job_id },
    el("header", {}, el("span", { class: "mono", text: shortId(job.job_id), title: job.job_id }),
      el("span", { text: `${job.job_type || ""} · ${job.priority || ""}` }), status, count),
    el("div", { class: "progress" }, bar), tokens);
  $("live-jobs").prepend(card);
  const entry = { card, status, count, bar, tokens, maxTokens: job.max_tokens || null,
    attempt: 0, n: 0, ws: null, finishedAt: null };
  state.live.set(job.job_id, entry);
  showEmpty();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}${JOBS}/${encodeURIComponent(job.job_id)}/ws?token=${encodeURIComponent(state.token)}`;
  const ws = new WebSocket(url);
  entry.ws = ws;
  ws.onmessage = (msg) => onFeed(entry, JSON.parse(msg.data));
  ws.onclose = (ev) => {
    if (!entry.finishedAt) {
      setStatus(entry, ev.code === 4401 ? "unauthorized" : "disconnected");
      entry.finishedAt = Date.now();
    }
  };
}

function setStatus(entry, status) {
  entry.status.textContent = status;
  entry.status.className = `status status-${status}`;
}

function onFeed(entry, message) {
  const data = message.data || {};
  if (message.event === "token.streamed") {
    if (data.attempt > entry.attempt) { entry.attempt = data.attempt; entry.n = 0; entry.tokens.textContent = ""; }
    if (data.attempt < entry.attempt) return;
    entry.tokens.append(document.createTextNode(data.token));
    entry.tokens.scrollTop = entry.tokens.scrollHeight;
    entry.n += 1;
    entry.count.textContent = `${entry.n} tokens`;
    if (entry.status.textContent !== "running") setStatus(entry, "running");
    const pct = data.progress !== null && data.progress !== undefined ? data.progress
      : entry.maxTokens ? (100 * entry.n) / entry.maxTokens : 0;
    entry.bar.style.width = `${Math.min(100, pct)}%`;
  } else if (message.event === "job.started") {
    setStatus(entry, "running");
  } else if (message.event === "job.retrying") {
    setStatus(entry, "retrying");
  } else if (TERMINAL.has(message.event)) {
    setStatus(entry, data.status || message.event);
    entry.bar.style.width = "100%";
    entry.finishedAt = Date.now();
    // The sinks write ClickHouse a moment after the end: redraw the charts with this job in.
    if (state.refreshCharts) setTimeout(state.refreshCharts, 2500);
  }
}

// ---- charts ------------------------------------------------------------------------------

function renderCharts(d) {
  const byMinute = new Map(d.points.map((p) => [new Date(p.minute).getTime(), p]));
  const end = Math.floor(Date.now() / 60000) * 60000;
  const minutes = [];
  for (let t = end - (d.minutes - 1) * 60000; t <= end; t += 60000) minutes.push(t);
  const series = (key, zero) => minutes.map((t) => {
    const p = byMinute.get(t);
    return { t: new Date(t), v: p ? p[key] : zero };
  });
  const draw = window.sluiceCharts.drawLineChart;
  draw($("chart-jobs"), series("jobs", 0), "jobs finished per minute");
  draw($("chart-tokens"), series("tokens_per_second", 0), "tokens per second");
  draw($("chart-ttft"), series("p95_ttft_ms", null), "p95 time to first token");
  draw($("chart-cost"), series("cost_usd", 0), "cost per minute");
}

// ---- dead letters ------------------------------------------------------------------------

function renderDlq(d) {
  const rows = d.dead_letters.map((letter) => {
    const button = el("button", { class: "small", type: "button", text: "Retry" });
    button.disabled = !letter.requeueable || !letter.job_id;
    button.title = letter.requeueable ? "put the job back on its priority topic" : "this letter holds no runnable job";
    button.addEventListener("click", () => requeue(letter.job_id, button));
    const when = letter.dead_lettered_at ? new Date(letter.dead_lettered_at * 1000).toISOString() : null;
    return el("tr", {}, el("td", { class: "mono", text: shortId(letter.job_id), title: letter.job_id || "" }),
      el("td", { text: `${letter.error_code ? letter.error_code + ": " : ""}${letter.reason}` }),
      el("td", { text: letter.attempt === null ? "" : String(letter.attempt) }),
      el("td", { text: ago(when) }), el("td", {}, button));
  });
  $("dlq").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { class: "muted", text: "empty", colSpan: 5 }))]));
}

async function requeue(jobId, button) {
  button.disabled = true;
  try {
    const done = await api(`/api/admin/dlq/${encodeURIComponent(jobId)}/requeue`, { method: "POST" });
    $("dlq-result").textContent = `requeued ${shortId(done.job_id)} on jobs.${done.priority} as attempt ${done.attempt}`;
  } catch (err) {
    if (err instanceof AuthError) return signOut(err.message);
    $("dlq-result").textContent = `requeue failed: ${err.message}`;
    button.disabled = false;
  }
}

// ---- submit ------------------------------------------------------------------------------

async function submitJob(event) {
  event.preventDefault();
  const body = {
    prompt: $("submit-prompt").value,
    job_type: $("submit-type").value,
    priority: $("submit-priority").value,
    config: { max_tokens: Number($("submit-max-tokens").value) || undefined },
  };
  try {
    const job = await api(`${JOBS}/start`, { method: "POST", body: JSON.stringify(body) });
    $("submit-result").textContent = `accepted ${job.job_id}`;
    if (!state.live.has(job.job_id)) watchJob({ ...job, status: "queued" });
  } catch (err) {
    if (err instanceof AuthError) return signOut(err.message);
    $("submit-result").textContent = `not accepted: ${err.message}`;
  }
}

// ---- start -------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token-input").value.trim()); });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("submit-form").addEventListener("submit", submitJob);
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
});
