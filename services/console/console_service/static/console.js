/* The ops console's script: reads /console/api/* (same origin, the sign-in cookie) and draws with Chart.js. */
"use strict";

const COLOURS = { pool: "#1f5fa8", ircc: "#c9a227", plan: "#2e8b57" };
const TYPE_COLOURS = ["#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#c9a227",
  "#2c3e50", "#e84393", "#00838f", "#6d4c41", "#5c6bc0", "#9e9d24", "#ad1457", "#37474f"];
const charts = {};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}

function table(columns, rows, id) {
  const head = el("tr", {}, ...columns.map((c) => el("th", { class: c.num ? "num" : null }, c.title)));
  const body = rows.map((row) => el("tr", {}, ...columns.map((c) => {
    const value = typeof c.value === "function" ? c.value(row) : row[c.key];
    return el("td", { class: c.num ? "num" : null }, value instanceof Node ? value : (value ?? "—"));
  })));
  return el("div", { class: "table-scroll" }, el("table", { id }, el("thead", {}, head), el("tbody", {}, ...body)));
}

async function api(path, options = {}) {
  const headers = { "Accept": "application/json", ...(options.body ? { "Content-Type": "application/json" } : {}),
                    ...(options.headers || {}) };
  const response = await fetch("/console/api" + path, { ...options, headers, credentials: "same-origin" });
  if (response.status === 401) { window.location.assign("/console/login"); throw new Error("signed out"); }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : response.statusText;
    const fields = body && body.errors ? " (" + body.errors.map((e) => e.field + ": " + e.message).join("; ") + ")" : "";
    throw new Error(detail + fields);
  }
  return body;
}

function showError(target, error) {
  target.replaceChildren(el("p", { class: "error", role: "alert" }, error.message));
}

function draw(id, config) {
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart(document.getElementById(id), config);
  return charts[id];
}

const fmt = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-CA"));

/* -- the pool ------------------------------------------------------------------------------------------ */

async function loadPool() {
  try {
    const pool = await api("/pool");
    document.getElementById("pool-total").textContent = fmt(pool.total);
    document.getElementById("pool-asof").textContent =
      `as of ${new Date(pool.as_of).toLocaleString("en-CA")} · rules ${pool.rules_version}`;
    const ircc = pool.ircc;
    document.getElementById("pool-ircc").textContent = ircc
      ? `IRCC's last published distribution: ${fmt(ircc.total)} profiles as of ${ircc.as_of}. Bars are shares of each total.`
      : "IRCC's published distribution is not available on this server (bench/data).";
    const labels = pool.bins.map((b) => b.range);
    const datasets = [{ label: "The pool now (%)", data: pool.bins.map((b) => b.pool_share),
                        counts: pool.bins.map((b) => b.pool), backgroundColor: COLOURS.pool }];
    if (ircc) {
      datasets.push({ label: `IRCC ${ircc.as_of} (%)`, data: pool.bins.map((b) => b.ircc_share),
                      counts: pool.bins.map((b) => b.ircc), backgroundColor: COLOURS.ircc });
    }
    draw("pool-chart", {
      type: "bar",
      data: { labels, datasets },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: { x: { title: { display: true, text: "CRS" } }, y: { title: { display: true, text: "% of the pool" } } },
        plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${c.formattedValue}% (${fmt(c.dataset.counts[c.dataIndex])})` } } },
      },
    });
    document.body.dataset.poolLoaded = String(pool.total);
  } catch (error) {
    showError(document.getElementById("pool-ircc"), error);
  }
}

async function lookUp(event) {
  event.preventDefault();
  const target = document.getElementById("lookup-result");
  const id = document.getElementById("lookup-id").value.trim();
  try {
    const c = await api("/candidates/" + encodeURIComponent(id));
    const rows = Object.entries(c.breakdown).map(([factor, points]) => ({ factor, points }));
    target.replaceChildren(
      el("div", { class: "result", id: "lookup-summary" },
        el("strong", {}, `CRS ${c.crs}`), ` · rank ${fmt(c.rank)} of ${fmt(c.pool_size)} · programs ${c.programs.join(", ") || "—"}`
          + ` · categories ${c.categories.join(", ") || "—"} · submitted ${new Date(c.submitted_at).toLocaleString("en-CA")}`),
      table([{ key: "factor", title: "Factor" }, { key: "points", title: "Points", num: true }], rows, "lookup-breakdown"));
  } catch (error) {
    showError(target, error);
  }
}

/* -- rounds --------------------------------------------------------------------------------------------- */

async function loadRounds() {
  const target = document.getElementById("rounds-table");
  try {
    const rounds = await api("/rounds");
    const columns = rounds.columns.map((c) => ({ key: c.key, title: c.title, num: ["drawSize", "drawCRS", "drawNumber"].includes(c.key) }));
    target.replaceChildren(rounds.count ? table(columns, rounds.table, "rounds-ircc") : el("p", { class: "muted" }, "No round held yet."));
    const datasets = [];
    Object.entries(rounds.series).forEach(([type, points], i) => {
      const colour = TYPE_COLOURS[i % TYPE_COLOURS.length];
      datasets.push({ type: "line", label: `${type}: cut-off CRS`, yAxisID: "crs", borderColor: colour, backgroundColor: colour,
                      data: points.map((p) => ({ x: p.x, y: p.cutoff })) });
      datasets.push({ type: "bar", label: `${type}: invitations`, yAxisID: "size", backgroundColor: colour + "55",
                      data: points.map((p) => ({ x: p.x, y: p.size })) });
    });
    draw("rounds-chart", {
      data: { datasets },
      options: {
        maintainAspectRatio: false, animation: false, parsing: true,
        scales: {
          x: { type: "category", labels: [...new Set(Object.values(rounds.series).flat().map((p) => p.x))].sort(),
               ticks: { callback(value) { return String(this.getLabelForValue(value)).slice(0, 10); } } },
          crs: { position: "left", title: { display: true, text: "cut-off CRS" } },
          size: { position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "invitations" } },
        },
      },
    });
  } catch (error) {
    showError(target, error);
  }
}

let lastPlan = null;

async function runPlan(event) {
  event.preventDefault();
  const target = document.getElementById("plan-result");
  const hold = document.getElementById("hold-round");
  const body = { type: document.getElementById("plan-type").value, size: Number(document.getElementById("plan-size").value) };
  target.replaceChildren(el("p", { class: "muted" }, "Planning…"));
  hold.disabled = true;
  try {
    const plan = await api("/plan", { method: "POST", body: JSON.stringify(body) });
    lastPlan = body;
    target.replaceChildren(el("div", { class: "result", id: "plan-summary" },
      `${plan.name}: would invite `, el("strong", { id: "plan-invited" }, fmt(plan.would_invite)),
      ` of ${fmt(plan.eligible_count)} eligible (pool ${fmt(plan.pool_size)}); cut-off CRS `,
      el("strong", { id: "plan-cutoff" }, plan.cutoff_crs ?? "none"),
      plan.tie_break_at ? `, tie-break ${new Date(plan.tie_break_at).toLocaleString("en-CA")}` : ""));
    draw("plan-chart", {
      type: "bar",
      data: { labels: plan.distribution.map((b) => b.range),
              datasets: [{ label: "would be invited", data: plan.distribution.map((b) => b.count), backgroundColor: COLOURS.plan }] },
      options: { maintainAspectRatio: false, animation: false, scales: { x: { title: { display: true, text: "CRS" } } } },
    });
    hold.disabled = plan.would_invite === 0;
  } catch (error) {
    showError(target, error);
  }
}

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

let pendingKey = null; // kept until the round is held, so a retry after an error resends the same key

function askToHold() {
  if (!lastPlan) return;
  pendingKey = pendingKey && pendingKey.plan === JSON.stringify(lastPlan) ? pendingKey : { plan: JSON.stringify(lastPlan), key: newKey() };
  const dialog = el("dialog", { id: "hold-dialog" });
  const form = el("form", { method: "dialog" },
    el("p", {}, el("strong", {}, `Hold a ${lastPlan.type} round of ${fmt(lastPlan.size)} invitations?`),
      " This invites candidates for real and cannot be undone."),
    el("label", { for: "hold-key" }, "Idempotency key (resend the same key to retry safely)"),
    el("input", { id: "hold-key", value: pendingKey.key, required: "", size: "40" }),
    el("div", { class: "inline" },
      el("button", { type: "submit", value: "hold", id: "hold-confirm" }, "Hold the round"),
      el("button", { type: "submit", value: "cancel", class: "secondary" }, "Cancel")));
  dialog.append(form);
  document.body.append(dialog);
  dialog.addEventListener("close", async () => {
    const confirmed = dialog.returnValue === "hold";
    const key = document.getElementById("hold-key").value.trim();
    dialog.remove();
    if (confirmed) await holdRound(key);
  });
  dialog.showModal();
}

async function holdRound(key) {
  const target = document.getElementById("plan-result");
  try {
    const round = await api("/rounds", { method: "POST", body: JSON.stringify(lastPlan), headers: { "Idempotency-Key": key } });
    pendingKey = null;
    target.replaceChildren(el("div", { class: "result", id: "hold-summary" },
      `Round #${round.round_number} held: ${fmt(round.invitations)} invitations, cut-off CRS `,
      el("strong", {}, round.cutoff_crs ?? "none"), ` (key ${key}).`));
    document.getElementById("hold-round").disabled = true;
    await Promise.all([loadRounds(), loadPool()]);
  } catch (error) {
    showError(target, error);
  }
}

/* -- applications --------------------------------------------------------------------------------------- */

async function loadApplications() {
  const stats = document.getElementById("applications-stats");
  const risk = document.getElementById("applications-at-risk");
  try {
    const { stats: s, at_risk: queue } = await api("/applications");
    const counts = Object.entries(s.counts_by_state).map(([state, count]) => ({ state, count }));
    const days = (d) => (d === null ? "—" : `${Number(d).toFixed(1)} days`);
    stats.replaceChildren(
      el("p", { class: "figure", id: "service-standard" },
        `Decided: ${fmt(s.decided)} · median ${days(s.median_days_to_decision)} · 80th percentile ${days(s.p80_days_to_decision)} · `,
        s.standard_met === null ? "no decisions yet" : el("span", { class: s.standard_met ? "ok" : "down" },
          `${(100 * s.share_within_standard).toFixed(1)}% within six months ${s.standard_met ? "(standard met)" : "(standard missed)"}`)),
      counts.length ? table([{ key: "state", title: "State" }, { key: "count", title: "Applications", num: true }], counts, "applications-counts")
        : el("p", { class: "muted" }, "No application yet."));
    risk.replaceChildren(queue.length
      ? table([{ key: "application_id", title: "Application" }, { key: "profile_id", title: "Profile" },
               { title: "Applied", value: (r) => r.applied_at.slice(0, 10) }, { title: "Decide by", value: (r) => r.standard_due.slice(0, 10) },
               { title: "Days left", num: true, value: (r) => (r.already_missed ? el("span", { class: "down" }, "missed") : r.days_left.toFixed(1)) }],
              queue, "at-risk-queue")
      : el("p", { class: "muted" }, "Nothing at risk."));
  } catch (error) {
    showError(stats, error);
  }
}

/* -- system health -------------------------------------------------------------------------------------- */

async function loadHealth() {
  const target = document.getElementById("health-table");
  try {
    const health = await api("/health");
    const figure = (v) => (v === null || v === undefined ? el("span", { class: "muted" }, "not exported") : fmt(v));
    target.replaceChildren(table([
      { key: "service", title: "Service" },
      { title: "Ready", value: (r) => el("span", { class: r.ready ? "ok" : "down" }, r.ready ? "ready" : `down (${r.status ?? "no answer"})`) },
      { title: "Checks", value: (r) => {
        const checks = Object.entries(r.checks);
        const down = checks.filter(([, v]) => v !== "up").map(([k, v]) => `${k} ${v}`);
        if (!checks.length) return r.detail ?? "—";
        return down.length ? el("span", { class: "down" }, down.join(", "))
          : el("span", { title: checks.map(([k]) => k).join(", ") }, `all ${checks.length} up (${checks.map(([k]) => k).join(", ")})`);
      } },
      { title: "Consumer lag", num: true, value: (r) => figure(r.consumer_lag) },
      { title: "Dead-lettered", num: true, value: (r) => figure(r.dead_lettered) },
      { title: "Outbox backlog", num: true, value: (r) => figure(r.outbox_backlog) },
      { title: "Oldest unpublished", num: true, value: (r) => (r.outbox_oldest_s === null ? figure(null) : `${Number(r.outbox_oldest_s).toFixed(1)} s`) },
      { title: "5xx answers", num: true, value: (r) => figure(r.server_errors) },
    ], health.services, "health-services"));
    document.getElementById("health-updated").textContent = `checked ${new Date(health.checked_at * 1000).toLocaleTimeString("en-CA")}`;
  } catch (error) {
    showError(target, error);
  }
}

/* -- start ---------------------------------------------------------------------------------------------- */

document.addEventListener("DOMContentLoaded", () => {
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  document.getElementById("lookup-form").addEventListener("submit", lookUp);
  document.getElementById("plan-form").addEventListener("submit", runPlan);
  document.getElementById("hold-round").addEventListener("click", askToHold);
  const refresh = Number(document.querySelector("main").dataset.refreshS || 10) * 1000;
  loadPool(); loadRounds(); loadApplications(); loadHealth();
  setInterval(loadHealth, refresh);
  setInterval(() => { loadPool(); loadApplications(); }, refresh * 6);
});
