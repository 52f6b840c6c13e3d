// luckystack studio: the page. Plain JS, no build step. Every change is a pipeline edit POSTed to the
// server, which runs it through the engine; progress arrives as server-sent events.
"use strict";
const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
let S = null;                 // the latest /api/state
const live = {};              // node id -> {state, done, total, why, seconds} from events of the running job
let label = null;             // the stack size shown
let pending = null;           // {t0, what}: an edit whose result is awaited (for the latency figure)
let history = [];             // results shown before: {key, label, kind, text}
let aps = null, quality = null, frameCount = 0;
let view = {scale: 0, tx: 0, ty: 0, mode: "fit"};
let blinkTimer = null, blinkShowB = false;
window.studioLatencies = [];  // seconds from an edit to its new image on screen (read by the browser test)

async function api(path, body) {
  const opts = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify(body)};
  const r = await fetch(path, {credentials: "same-origin", ...opts});
  const type = r.headers.get("content-type") || "";
  const data = type.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error(typeof data === "string" ? data : (data.error || r.statusText));
  return data;
}
function showError(msg) { const e = $("error"); e.textContent = msg || ""; e.hidden = !msg; }
function status(text, cls) { const s = $("status"); s.textContent = text; s.className = "status " + (cls || "idle"); }
function q(params) { return new URLSearchParams(params).toString(); }
function sizeLabel(p) { return "P" + String(+p).replace(".", "p"); }

async function edit(sets, what) {
  const mine = pending = {t0: performance.now(), what, job: null, ready: false};
  status("running: " + what, "running");
  try { const r = await api("/api/edit", {sets}); mine.job = r.job.id; showError(""); refreshSoon(); }
  catch (e) { if (pending === mine) pending = null; showError(e.message); status("edit refused", "failed"); }
}
function resolvePending() {  // the edit's new image is on screen: how long it took
  const dt = (performance.now() - pending.t0) / 1000;
  window.studioLatencies.push({what: pending.what, seconds: dt});
  $("latency").textContent = `${pending.what}: new image ${dt.toFixed(2)} s after the change`;
  pending = null;
}

// ---- state ------------------------------------------------------------------------------------
async function refresh() {
  let st;
  try { st = await api("/api/state"); } catch (e) { showError(e.message); return; }
  const keysChanged = !S || JSON.stringify(S.keys) !== JSON.stringify(st.keys);
  const recChanged = !S || S.current !== st.current;
  S = st;
  $("where").textContent = (S.folder_mode ? S.folder + " · " : "") + S.current + " · pipeline " +
                           S.pipeline.name + " (" + S.pipeline_source + ") · output " + S.out;
  $("rec-name").textContent = S.current; $("pipe-name").textContent = S.pipeline.name;
  if (S.error) showError(S.error);
  const job = S.job;
  if (job) status(`${job.kind} ${job.state}…`, "running");
  else if (S.jobs.length) {
    const last = S.jobs[S.jobs.length - 1];
    if (last.state === "failed") { status("failed", "failed"); showError(last.error); }
    else status(`done in ${last.seconds.toFixed(2)} s`, "done");
  }
  if (!job) for (const k in live) if (live[k].state === "running") delete live[k];  // "ran" stays until the next run
  if (pending && pending.job !== null && S.jobs.some((j) => j.id >= pending.job && j.state !== "queued")) {
    const j = S.jobs.find((j) => j.id === pending.job);
    if (j && j.state === "failed") pending = null; else pending.ready = true;
  } else if (pending && pending.job !== null && S.job && S.job.id === pending.job && S.results) {
    pending.ready = true;  // its result is in the cache: shown while the run still exports its files
  }
  drawGraph(); drawFolder(); drawSharpen(); drawSizes();
  if (recChanged) loadRecording();
  if (keysChanged) { await Promise.all([loadAps(), loadQuality()]); }
  drawApSize(); drawQuality(); drawResult();
}

// ---- events -----------------------------------------------------------------------------------
let refreshTimer = null;
function refreshSoon() { clearTimeout(refreshTimer); refreshTimer = setTimeout(refresh, 150); }
function listen() {
  const es = new EventSource("/api/events?" + q({after: S ? S.event : 0}));
  es.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.kind === "node") {
      if (S && ev.recording !== S.current) return;
      live[ev.node] = {...(live[ev.node] || {}), state: ev.state, why: ev.why, seconds: ev.seconds};
      drawGraph();
      // Its pictures (quality graph, reference, APs) can show now; the result node's at once.
      if (ev.state === "ran") (S && ev.node === (S.ids.post || S.ids.merge) ? refresh() : refreshSoon());
    } else if (ev.kind === "progress") {
      if (S && ev.recording !== S.current) return;
      live[ev.node] = {...(live[ev.node] || {}), state: "running", done: ev.done, total: ev.total, label: ev.label};
      drawGraph();
    } else if (ev.kind === "batch") {
      const b = $("batch-progress"); b.hidden = false;
      b.querySelector("div").style.width = (100 * ev.done / ev.total) + "%";
      b.querySelector("span").textContent = `batch: ${ev.done} of ${ev.total} (${ev.recording})`;
      drawFolderLater();
    } else if (ev.kind === "job") {
      const j = ev.job;
      if (j.state === "running") { for (const k in live) delete live[k]; status(`${j.kind} running…`, "running"); drawGraph(); }
      if (j.state === "done" || j.state === "failed") refresh();
    } else if (ev.kind === "log") {
      $("node-detail").textContent = "warning: " + ev.message;
    }
  };
}
let folderTimer = null;
function drawFolderLater() { clearTimeout(folderTimer); folderTimer = setTimeout(refresh, 200); }

// ---- node graph -------------------------------------------------------------------------------
function nodeState(n) {
  const l = live[n.node];
  if (l && l.state) return l.state === "cached" ? "cached" : l.state;
  return n.status === "cached" ? "cached" : "run";
}
function drawGraph() {
  const svg = $("graph"); if (!S) return;
  const nodes = S.nodes, byId = Object.fromEntries(nodes.map((n) => [n.node, n]));
  const depth = {};
  const d = (id) => depth[id] ?? (depth[id] = Math.max(-1, ...byId[id].inputs.filter((s) => byId[s]).map(d)) + 1);
  nodes.forEach((n) => d(n.node));
  const rows = {}; nodes.forEach((n) => (rows[depth[n.node]] = rows[depth[n.node]] || []).push(n.node));
  const W = 104, H = 26, GY = 8, X0 = 46, pos = {};
  Object.entries(rows).forEach(([r, ids]) => ids.forEach((id, c) => (pos[id] = {x: X0 + c * (W + 8), y: 4 + +r * (H + GY)})));
  const height = Math.max(...Object.values(pos).map((p) => p.y)) + H + 6, width = 400;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`); svg.style.height = height + "px";
  svg.innerHTML = `<defs><marker id="arrow" viewBox="0 0 6 6" refX="6" refY="3" markerWidth="5" markerHeight="5" orient="auto"><path d="M0,0L6,3L0,6z" fill="#5a616e"/></marker></defs>`;
  for (const n of nodes) for (const src of n.inputs) {
    if (!pos[src]) continue;
    const a = pos[src], b = pos[n.node], p = document.createElementNS(SVGNS, "path");
    const span = depth[n.node] - depth[src];
    if (span === 1 && a.x === b.x) p.setAttribute("d", `M${a.x + W / 2},${a.y + H} L${b.x + W / 2},${b.y}`);
    else if (span === 1) p.setAttribute("d", `M${a.x + W / 2},${a.y + H} C${a.x + W / 2},${b.y - 4} ${b.x + W / 2},${a.y + H + 4} ${b.x + W / 2},${b.y}`);
    else { const bend = X0 - 8 - 7 * Math.min(span, 5);
           p.setAttribute("d", `M${a.x},${a.y + H / 2} C${bend},${a.y + H / 2} ${bend},${b.y + H / 2} ${b.x},${b.y + H / 2}`); }
    p.setAttribute("class", "edge"); svg.appendChild(p);
  }
  for (const n of nodes) {
    const st = nodeState(n), l = live[n.node] || {}, g = document.createElementNS(SVGNS, "g");
    g.setAttribute("class", "gnode " + st); g.setAttribute("data-node", n.node); g.setAttribute("data-state", st);
    const {x, y} = pos[n.node], row = rows[depth[n.node]];
    let sub = {cached: "cached", run: "will run", running: "running", ran: `ran ${(l.seconds || 0).toFixed(2)} s`, failed: "failed"}[st] || st;
    if (st === "running" && l.total) sub = `${l.label || "running"} ${Math.round(100 * l.done / l.total)} %`;
    g.innerHTML = `<rect x="${x}" y="${y}" width="${W}" height="${H}"></rect>` +
      (st === "running" && l.total ? `<rect class="prog" x="${x}" y="${y + H - 3}" width="${W * Math.min(1, l.done / l.total)}" height="3"></rect>` : "") +
      `<text x="${x + 6}" y="${y + 17}">${n.node}</text>` +
      (row[row.length - 1] === n.node ? `<text class="sub" x="${x + W + 8}" y="${y + 17}">${escapeHtml(sub + (st === "run" ? " — " + shortWhy(n) : ""))}</text>` : "");
    const title = document.createElementNS(SVGNS, "title");
    title.textContent = describeNode(n); g.appendChild(title);
    g.onclick = () => { $("node-detail").textContent = describeNode(n); };
    svg.appendChild(g);
  }
}
function escapeHtml(t) { return String(t).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }
function shortWhy(n) {
  const direct = n.reasons.filter((r) => !r.startsWith("upstream "));
  const t = direct.length ? direct.join("; ") : (n.root_causes[0] ? "← " + n.root_causes[0] : n.reasons.join("; "));
  return t.length > 44 ? t.slice(0, 42) + "…" : t;
}
function describeNode(n) {
  const st = nodeState(n), l = live[n.node] || {};
  if (st === "cached") return `${n.node} (${n.type}): cached, key ${n.key.slice(0, 12)}`;
  if (st === "running") return `${n.node} (${n.type}): running` + (l.why ? ` — ${l.why}` : "") + (l.total ? ` (${l.done}/${l.total})` : "");
  if (st === "ran") return `${n.node} (${n.type}): ran in ${(l.seconds || 0).toFixed(2)} s`;
  let why = n.reasons.join("; ");
  if (n.reasons.every((r) => r.startsWith("upstream ")) && n.root_causes.length) why += " ← " + n.root_causes.join("; ");
  if (n.earlier) why += ` (incremental: ${n.earlier} earlier result(s) to build on)`;
  return `${n.node} (${n.type}): will run — ${why}`;
}

// ---- folder -----------------------------------------------------------------------------------
function drawFolder() {
  $("folder-panel").hidden = !S.folder_mode;
  if (!S.folder_mode) return;
  const t = $("recordings"); t.innerHTML = "";
  for (const r of S.recordings) {
    const tr = document.createElement("tr");
    if (r.name === S.current) tr.className = "current";
    const cls = r.state === "done" ? "state-done" : "state-not";
    tr.innerHTML = `<td>${r.name}</td><td class="${cls}">${r.state}</td><td class="num">${r.cached}/${r.nodes}</td><td></td>`;
    const b = document.createElement("button"); b.textContent = "open";
    b.onclick = async () => { try { await api("/api/select", {recording: r.name}); } catch (e) { showError(e.message); } };
    tr.lastChild.appendChild(b); t.appendChild(tr);
  }
}
$("batch-btn").onclick = async () => {
  try { await api("/api/batch", {}); status("batch queued", "running"); } catch (e) { showError(e.message); }
};

// ---- recording --------------------------------------------------------------------------------
async function loadRecording() {
  $("scrub").value = 0; await showFrame(0);
  try { $("info").textContent = await api("/api/info?" + q({recording: S.current})); } catch (e) { $("info").textContent = e.message; }
}
let frameBusy = false, frameWanted = null;
async function showFrame(i) {
  frameWanted = i; if (frameBusy) return;
  frameBusy = true;
  while (frameWanted !== null) {
    const k = frameWanted; frameWanted = null;
    try {
      const r = await fetch("/api/frame.png?" + q({i: k, recording: S.current}), {credentials: "same-origin"});
      if (r.ok) {
        frameCount = +r.headers.get("X-Frame-Count"); $("scrub").max = frameCount - 1;
        const url = URL.createObjectURL(await r.blob()), img = $("frame"), old = img.src;
        img.src = url; if (old.startsWith("blob:")) URL.revokeObjectURL(old);
        $("frame-no").textContent = `frame ${k + 1} / ${frameCount}`;
      }
    } catch (e) { /* the next move tries again */ }
  }
  frameBusy = false;
}
$("scrub").oninput = (e) => showFrame(+e.target.value);

// ---- reference and APs --------------------------------------------------------------------------
async function loadAps() {
  const k = S.keys;
  aps = null;
  if (k.align && k.analyse) { try { aps = await api("/api/aps?" + q({aps: k.align, analyse: k.analyse})); } catch (e) { aps = null; } }
  drawReference();
}
function alignParams() { return S.params[S.ids.align] || {}; }
function drawReference() {
  const k = S.keys, img = $("reference");
  $("ref-wait").hidden = !!k.reference;
  if (!k.reference) { img.removeAttribute("src"); $("ap-layer").innerHTML = ""; return; }
  const src = $("show-qmap").checked && k.align && k.analyse
    ? "/api/quality-map.png?" + q({reference: k.reference, aps: k.align, analyse: k.analyse})
    : "/api/reference.png?" + q({key: k.reference});
  if (img.getAttribute("src") !== src) img.src = src;
  $("ref-box").classList.toggle("qmap", $("show-qmap").checked); $("qmap-legend").hidden = !$("show-qmap").checked;
  const draw = () => drawApLayer(img.naturalWidth, img.naturalHeight);
  if (img.complete && img.naturalWidth) draw(); else img.onload = draw;
}
function drawApLayer(w, h) {
  const svg = $("ap-layer"); svg.setAttribute("viewBox", `0 0 ${w} ${h}`); svg.innerHTML = "";
  const manual = alignParams().manual || [];
  const isManual = (cy, cx) => manual.some(([x, y]) => x === cx && y === cy);
  let n = 0;
  if (aps) aps.center.forEach(([cy, cx], i) => {
    if (isManual(cy, cx)) return;
    const s = aps.size[i], r = document.createElementNS(SVGNS, "rect");
    r.setAttribute("x", cx - s / 2); r.setAttribute("y", cy - s / 2); r.setAttribute("width", s); r.setAttribute("height", s);
    r.setAttribute("class", "ap"); const t = document.createElementNS(SVGNS, "title");
    t.textContent = `AP ${i + 1}: ${s} px` + (aps.quality[i] != null ? `, local quality ${aps.quality[i].toFixed(2)}` : "") +
                    "";
    r.appendChild(t); svg.appendChild(r); n++;
  });
  manual.forEach(([x, y, s], i) => {
    const r = document.createElementNS(SVGNS, "rect");
    r.setAttribute("x", x - s / 2); r.setAttribute("y", y - s / 2); r.setAttribute("width", s); r.setAttribute("height", s);
    r.setAttribute("class", "ap manual");
    const t = document.createElementNS(SVGNS, "title"); t.textContent = `manual AP at ${x}, ${y} (${s} px)`;
    r.appendChild(t); svg.appendChild(r);
  });
  $("ap-count").textContent = aps ? `${aps.center.length} APs (${manual.length} manual)` : "";
}
function currentApSize() {
  const p = alignParams().ap_size;
  if (p && p.length) return p[0];
  if (aps && aps.default_size) return aps.default_size;
  return aps && aps.size.length ? aps.size[0] : 48;
}
function manualLayout() { return (alignParams().min_brightness ?? 0) >= 1; }  // the grid is off: every AP is listed
let gridBrightness = null;  // min_brightness before the layout became a manual one
function apAt(x, y) {  // the AP whose centre is nearest to (x, y) among those whose box holds it
  const manual = alignParams().manual || [], found = [];
  manual.forEach(([mx, my, s], i) => found.push({manual: i, x: mx, y: my, s}));
  if (aps) aps.center.forEach(([cy, cx], i) => {
    if (!manual.some(([mx, my]) => mx === cx && my === cy)) found.push({auto: i, x: cx, y: cy, s: aps.size[i]}); });
  const inside = found.filter((a) => Math.abs(x - a.x) <= a.s / 2 && Math.abs(y - a.y) <= a.s / 2);
  inside.sort((a, b) => Math.hypot(x - a.x, y - a.y) - Math.hypot(x - b.x, y - b.y));
  return inside[0] || null;
}
$("ap-layer").addEventListener("click", (e) => {
  if (!S || !S.keys.reference || !S.ids.align) return;
  const svg = $("ap-layer"), id = S.ids.align, manual = (alignParams().manual || []).map((m) => m.slice());
  const pt = svg.createSVGPoint(); pt.x = e.clientX; pt.y = e.clientY;
  const p = pt.matrixTransform(svg.getScreenCTM().inverse());
  if ($("ap-click").value === "remove") {
    const hit = apAt(p.x, p.y);
    if (!hit) return;
    if (hit.manual !== undefined) { manual.splice(hit.manual, 1); edit({[id + ".manual"]: manual}, "remove an AP"); return; }
    // an automatic AP: the layout becomes a manual one (every other AP listed, the grid switched off)
    const keep = [];
    aps.center.forEach(([cy, cx], i) => { if (i !== hit.auto) keep.push([cx, cy, aps.size[i]]); });
    gridBrightness = alignParams().min_brightness;
    edit({[id + ".manual"]: keep, [id + ".min_brightness"]: 1.0, [id + ".ap_size"]: [currentApSize()]},
         "remove an automatic AP (the APs are now a manual layout)");
    return;
  }
  const s = currentApSize(), img = $("reference");
  const x = Math.round(Math.min(Math.max(p.x, s / 2), img.naturalWidth - s / 2));
  const y = Math.round(Math.min(Math.max(p.y, s / 2), img.naturalHeight - s / 2));
  manual.push([x, y, s]);
  edit({[id + ".manual"]: manual}, `add an AP at ${x}, ${y}`);
});
$("auto-aps").onclick = () => {
  const id = S.ids.align;
  edit({[id + ".manual"]: [], [id + ".min_brightness"]: gridBrightness ?? 0.2}, "automatic APs");
};
$("show-qmap").onchange = drawReference;
function drawApSize() {
  const sel = $("ap-size"), p = alignParams().ap_size, auto = aps && aps.default_size;
  const want = p && p.length ? String(p[0]) : "auto";
  const opts = ["auto"]; for (let s = 16; s <= 160; s += 8) opts.push(String(s));
  if (!opts.includes(want)) opts.push(want);
  const html = opts.map((o) => `<option value="${o}">${o === "auto" ? "auto" + (auto ? ` (${auto} px)` : "") : o + " px"}</option>`).join("");
  if (sel.dataset.options !== html) { sel.innerHTML = html; sel.dataset.options = html; }  // an open list stays open
  sel.value = want;
  sel.disabled = !S.ids.align || manualLayout();
  $("auto-aps").hidden = !manualLayout();
}
$("ap-size").onchange = (e) => {
  const v = e.target.value;
  edit({[S.ids.align + ".ap_size"]: v === "auto" ? null : [+v]}, `AP size ${v}`);
};

// ---- quality graph with cuts -------------------------------------------------------------------
async function loadQuality() {
  quality = null;
  if (S.keys.analyse) { try { quality = await api("/api/quality?" + q({key: S.keys.analyse})); } catch (e) { quality = null; } }
}
function stackParams() { return S.params[S.ids.stack] || {}; }
function cuts() {  // [{value, count, label}] in request order
  const p = stackParams(), n = quality ? quality.n_valid : 0;
  if (p.frames) return p.frames.map((f) => ({value: f, count: Math.min(n, Math.max(1, f)), label: "F" + f}));
  return (p.percent || [25]).map((v) => ({value: v, count: Math.min(n, Math.max(1, Math.round(v / 100 * n))), label: sizeLabel(v)}));
}
const QM = {l: 34, r: 10, t: 12, b: 22};
let drag = null;
function drawQuality() {
  const c = $("quality"), g = c.getContext("2d"), W = c.width, H = c.height;
  g.clearRect(0, 0, W, H);
  g.fillStyle = "#8b919c"; g.font = "11px system-ui";
  if (!quality) { g.fillText("the quality graph appears when analyse has run", 12, 24); return; }
  const n = quality.score.length, nv = quality.n_valid, top = Math.max(...quality.sorted, 1e-9);
  const X = (i, m) => QM.l + (W - QM.l - QM.r) * i / Math.max(1, m - 1), Y = (v) => H - QM.b - (H - QM.t - QM.b) * v / top;
  g.strokeStyle = "#30343d"; g.strokeRect(QM.l, QM.t, W - QM.l - QM.r, H - QM.t - QM.b);
  g.strokeStyle = n > 600 ? "rgba(78,161,255,0.28)" : "rgba(78,161,255,0.55)"; g.lineWidth = 1; g.beginPath();
  quality.score.forEach((v, i) => { if (v == null || !quality.valid[i]) return; const x = X(i, n), y = Y(v); i ? g.lineTo(x, y) : g.moveTo(x, y); });
  g.stroke();
  g.strokeStyle = "#f0a732"; g.lineWidth = 2; g.beginPath();
  quality.sorted.forEach((v, i) => { const x = X(i, nv), y = Y(v); i ? g.lineTo(x, y) : g.moveTo(x, y); }); g.stroke();
  g.fillStyle = "#e5534b"; quality.valid.forEach((ok, i) => { if (!ok) g.fillRect(X(i, n), H - QM.b, 1, 5); });
  g.fillStyle = "#8b919c";
  g.fillText("quality: sorted best first (orange), over time (blue)", QM.l, H - 6);
  const count = `${nv} valid of ${n} frames`; g.fillText(count, W - QM.r - g.measureText(count).width, H - 6);
  cuts().forEach((ct, k) => {
    const x = X(ct.count - 1, nv), on = ct.label === label;
    g.strokeStyle = on ? "#4ea1ff" : "#cfd3da"; g.lineWidth = on ? 2.5 : 1.5; g.setLineDash(drag && drag.k === k ? [] : [4, 3]);
    g.beginPath(); g.moveTo(x, QM.t); g.lineTo(x, H - QM.b); g.stroke(); g.setLineDash([]);
    const text = `${ct.label} · ${ct.count} frames`, tw = g.measureText(text).width;
    const tx = Math.min(x + 4, W - QM.r - tw - 6), ty = QM.t + 16 + 17 * k;
    g.fillStyle = "rgba(17,19,23,0.85)"; g.fillRect(tx - 3, ty - 12, tw + 6, 16);
    g.fillStyle = on ? "#4ea1ff" : "#e4e6eb"; g.fillText(text, tx, ty);
  });
}
function canvasX(e) { const c = $("quality"), r = c.getBoundingClientRect(); return (e.clientX - r.left) * c.width / r.width; }
function countAt(x) {
  const c = $("quality"), nv = quality.n_valid;
  const f = (x - QM.l) / (c.width - QM.l - QM.r);
  return Math.min(nv, Math.max(1, Math.round(f * Math.max(1, nv - 1)) + 1));
}
$("quality").addEventListener("pointerdown", (e) => {
  if (!quality || !S.ids.stack) return;
  const x = canvasX(e), c = $("quality"), nv = quality.n_valid;
  let best = null;
  cuts().forEach((ct, k) => { const cx = QM.l + (c.width - QM.l - QM.r) * (ct.count - 1) / Math.max(1, nv - 1);
                              if (Math.abs(cx - x) < 10 && (!best || Math.abs(cx - x) < best.d)) best = {k, d: Math.abs(cx - x)}; });
  if (!best) return;
  drag = {k: best.k, values: cuts().map((c) => c.value)};
  $("quality").setPointerCapture(e.pointerId);
});
$("quality").addEventListener("pointermove", (e) => {
  const c = $("quality");
  if (!drag) { if (quality) { const x = canvasX(e), nv = quality.n_valid;
      c.style.cursor = cuts().some((ct) => Math.abs(QM.l + (c.width - QM.l - QM.r) * (ct.count - 1) / Math.max(1, nv - 1) - x) < 10) ? "ew-resize" : "default"; }
    return; }
  const count = countAt(canvasX(e)), p = stackParams();
  drag.values[drag.k] = p.frames ? count : roundPercent(100 * count / quality.n_valid);
  const saved = S.params[S.ids.stack];
  S.params[S.ids.stack] = {...saved, [p.frames ? "frames" : "percent"]: drag.values};
  drawQuality(); S.params[S.ids.stack] = saved;
});
$("quality").addEventListener("pointerup", () => {
  if (!drag) return;
  const p = stackParams(), values = drag.values, k = drag.k; drag = null;
  const name = p.frames ? "frames" : "percent";
  if (JSON.stringify(values) === JSON.stringify(p[name])) { drawQuality(); return; }
  setStackSizes(values, k);
});
function roundPercent(v) { return quality && quality.n_valid >= 200 ? Math.max(1, Math.round(v)) : Math.max(0.1, Math.round(v * 10) / 10); }
function setStackSizes(values, focus) {
  const p = stackParams(), name = p.frames ? "frames" : "percent";
  const seen = new Set(), clean = values.filter((v) => !seen.has(v) && seen.add(v));
  if (focus !== undefined) label = p.frames ? "F" + values[focus] : sizeLabel(values[focus]);
  edit({[S.ids.stack + "." + name]: clean}, `stack sizes ${clean.join(", ")}${name === "percent" ? " %" : " frames"}`);
}
function setStackSize(k, value) { const p = stackParams(), vals = (p.frames || p.percent || [25]).slice(); vals[k] = value; setStackSizes(vals, k); }
window.studioSetStackSize = setStackSize;  // the same edit as dragging a cut (for scripts and tests)
$("add-size").onclick = () => {
  if (!S.ids.stack) return;
  const p = stackParams(), vals = (p.frames || p.percent || [25]).slice();
  const next = p.frames ? Math.min(quality ? quality.n_valid : 100, Math.max(...vals) * 2) : Math.min(100, Math.max(...vals) + 10);
  vals.push(next); setStackSizes(vals, vals.length - 1);
};
$("remove-size").onclick = () => {
  if (!S.ids.stack) return;
  const p = stackParams(), vals = (p.frames || p.percent || [25]).slice();
  if (vals.length < 2) return;
  const cur = cuts().findIndex((c) => c.label === label); vals.splice(cur >= 0 ? cur : vals.length - 1, 1);
  label = null; setStackSizes(vals);
};
function drawSizes() {
  $("sizes").textContent = S.ids.stack ? cuts().map((c) => c.label).join(" · ") : "no stack node";
}

// ---- result -------------------------------------------------------------------------------------
function resultUrl(r) { return "/api/result.png?" + q({key: r.key, label: r.label, kind: r.kind}); }
function current() {
  const res = S.results; if (!res) return null;
  const labels = res.sizes.map((s) => s.label);
  if (!labels.includes(label)) label = labels[0];
  const sharp = res.sharpened && $("show-sharp").checked;
  const frames = (res.sizes.find((s) => s.label === label) || {}).frames;
  return {key: res.key, label, kind: sharp ? "sharp" : "image", text: `${label} · ${frames} frames · ${settingsText(sharp)}`};
}
function settingsText(sharp) {
  const a = alignParams(), ap = a.ap_size && a.ap_size.length ? a.ap_size.join("/") + " px APs" : "auto APs";
  const manual = (a.manual || []).length ? ` +${a.manual.length} manual` : "";
  return ap + manual + (sharp ? " · " + postParams().sharpen : "");
}
function drawResult() {
  const res = S.results, tabs = $("size-tabs");
  if (!res) { tabs.innerHTML = `<span class="muted">the result appears when the run has finished</span>`;
              $("result-a").removeAttribute("src"); $("tag-a").textContent = ""; return; }
  const cur = current();
  tabs.innerHTML = "";
  for (const s of res.sizes) {
    const b = document.createElement("button"); b.textContent = `${s.label} (${s.frames})`;
    b.className = s.label === label ? "on" : ""; b.dataset.label = s.label;
    b.onclick = () => { label = s.label; drawResult(); drawQuality(); }; tabs.appendChild(b);
  }
  const last = history[history.length - 1];
  if (!last || resultUrl(last) !== resultUrl(cur)) { if (last) history.push(cur); else history = [cur]; history = history.slice(-20); }
  drawCompareOptions(cur);
  showImage($("result-a"), cur, $("tag-a"));
  updateCompare();
  drawFiles();
}
function drawCompareOptions(cur) {
  const sel = $("compare-with"), was = sel.value, opts = [];
  const prev = [...history].reverse().find((h) => h.key !== cur.key || h.kind !== cur.kind);
  if (prev) opts.push({v: "prev", t: "previous setting: " + prev.text, r: prev});
  for (const s of S.results.sizes) if (s.label !== cur.label) opts.push({v: "size:" + s.label, t: `${s.label} (${s.frames} frames)`, r: {...cur, label: s.label, text: `${s.label} · ${s.frames} frames · ${settingsText(cur.kind === "sharp")}`}});
  sel.innerHTML = opts.map((o) => `<option value="${o.v}">${o.t}</option>`).join("") || `<option value="">(nothing yet)</option>`;
  sel._opts = Object.fromEntries(opts.map((o) => [o.v, o.r]));
  if (opts.some((o) => o.v === was)) sel.value = was;
}
function compareTarget() { const sel = $("compare-with"); return sel._opts ? sel._opts[sel.value] : null; }
function showImage(img, r, tag) {
  const url = resultUrl(r);
  if (img.getAttribute("src") === url) {
    tag.textContent = r.text;
    if (img.id === "result-a" && pending && pending.ready && img.dataset.loaded === url) resolvePending();  // same image
    return;
  }
  img.onload = () => {
    if (img.id === "result-a") {
      if (view.mode === "fit" || !view.scale) fit(); else applyView();
      if (pending && pending.ready && img.getAttribute("src") === url) resolvePending();
      img.dataset.loaded = url;
    }
  };
  img.src = url; tag.textContent = r.text;
}
function updateCompare() {
  const mode = $("compare-mode").value, b = $("view-b"), t = compareTarget();
  clearInterval(blinkTimer); blinkTimer = null;
  const cur = S && S.results ? current() : null;
  if (!cur) return;
  b.hidden = mode !== "side" || !t;
  if (mode === "side" && t) showImage($("result-b"), t, $("tag-b"));
  if (mode === "blink" && t) {
    blinkShowB = false;
    blinkTimer = setInterval(() => { blinkShowB = !blinkShowB; const r = blinkShowB ? t : cur;
      $("result-a").src = resultUrl(r); $("tag-a").textContent = (blinkShowB ? "B: " : "A: ") + r.text; }, 700);
  } else if ($("result-a").getAttribute("src") !== resultUrl(cur)) showImage($("result-a"), cur, $("tag-a"));
  requestAnimationFrame(() => (view.mode === "fit" ? fit() : applyView()));
}
$("compare-mode").onchange = updateCompare; $("compare-with").onchange = updateCompare;
$("show-sharp").onchange = () => drawResult();
function drawFiles() {
  const last = [...S.jobs].reverse().find((j) => j.state === "done" && j.records.some((r) => r.recording === S.current));
  const rec = last && last.records.find((r) => r.recording === S.current);
  $("files").innerHTML = rec ? "files: " + rec.exports.map((p) => `<a href="/files/${encodeURI(p)}">${p.split("/").pop()}</a>`).join("") : "";
}
// zoom and pan (both views share one transform)
function fit() {
  const img = $("result-a"), v = $("view-a"); if (!img.naturalWidth) return;
  const s = Math.min(v.clientWidth / img.naturalWidth, v.clientHeight / img.naturalHeight);
  view = {mode: "fit", scale: s, tx: (v.clientWidth - img.naturalWidth * s) / 2, ty: (v.clientHeight - img.naturalHeight * s) / 2};
  applyView();
}
function zoomTo(s, cx, cy) {
  const v = $("view-a"); cx = cx ?? v.clientWidth / 2; cy = cy ?? v.clientHeight / 2;
  const ix = (cx - view.tx) / view.scale, iy = (cy - view.ty) / view.scale;
  view = {mode: String(s), scale: s, tx: cx - ix * s, ty: cy - iy * s}; applyView();
}
function applyView() {
  for (const id of ["result-a", "result-b"]) $(id).style.transform = `translate(${view.tx}px, ${view.ty}px) scale(${view.scale})`;
  document.querySelectorAll("button.zoom").forEach((b) => b.classList.toggle("on", b.dataset.zoom === view.mode));
}
function objectCentre(img) {  // the brightness centroid of a loaded image, in image pixels
  const c = document.createElement("canvas"), step = Math.max(1, Math.round(Math.max(img.naturalWidth, img.naturalHeight) / 256));
  c.width = Math.ceil(img.naturalWidth / step); c.height = Math.ceil(img.naturalHeight / step);
  const g = c.getContext("2d"); g.drawImage(img, 0, 0, c.width, c.height);
  const px = g.getImageData(0, 0, c.width, c.height).data;
  let sx = 0, sy = 0, s = 0, top = 0;
  for (let i = 0; i < px.length; i += 4) top = Math.max(top, px[i + 1]);
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    const v = px[4 * (y * c.width + x) + 1]; if (v > top * 0.25) { sx += x * v; sy += y * v; s += v; } }
  return s ? {x: (sx / s + 0.5) * step, y: (sy / s + 0.5) * step} : {x: img.naturalWidth / 2, y: img.naturalHeight / 2};
}
function zoomOnObject(s) {  // from "fit": centre the object (a planet, not the dark sky around it)
  const img = $("result-a"), v = $("view-a"); if (!img.naturalWidth) return;
  const o = objectCentre(img);
  view = {mode: String(s), scale: s, tx: v.clientWidth / 2 - o.x * s, ty: v.clientHeight / 2 - o.y * s}; applyView();
}
document.querySelectorAll("button.zoom").forEach((b) => (b.onclick = () => (b.dataset.zoom === "fit" ? fit()
  : view.mode === "fit" ? zoomOnObject(+b.dataset.zoom) : zoomTo(+b.dataset.zoom))));
for (const id of ["view-a", "view-b"]) {
  const v = $(id); let start = null;
  v.addEventListener("pointerdown", (e) => { start = {x: e.clientX, y: e.clientY, tx: view.tx, ty: view.ty}; v.setPointerCapture(e.pointerId); v.classList.add("dragging"); });
  v.addEventListener("pointermove", (e) => { if (!start) return; view.tx = start.tx + e.clientX - start.x; view.ty = start.ty + e.clientY - start.y; view.mode = "pan"; applyView(); });
  v.addEventListener("pointerup", () => { start = null; v.classList.remove("dragging"); });
  v.addEventListener("wheel", (e) => { e.preventDefault(); const r = v.getBoundingClientRect();
    zoomTo(Math.min(16, Math.max(0.05, view.scale * (e.deltaY < 0 ? 1.25 : 0.8))), e.clientX - r.left, e.clientY - r.top); }, {passive: false});
}
window.addEventListener("resize", () => view.mode === "fit" && fit());

// ---- sharpening (the post node) ----------------------------------------------------------------------
const SHARP = {
  wavelet: [["wavelet_amounts", "layer gain", 0, 4, 0.1, 4], ["wavelet_denoise", "layer denoise σ", 0, 5, 0.1, 4]],
  unsharp: [["unsharp_sigma", "sigma (px)", 0.3, 10, 0.1], ["unsharp_amount", "amount", 0, 5, 0.1]],
  deconvolve: [["deconvolve_sigma", "PSF sigma (px)", 0.3, 6, 0.1], ["deconvolve_iterations", "iterations", 1, 200, 1]],
};
function postParams() { return S.params[S.ids.post] || {}; }
function drawSharpen() {
  if (!S.ids.post) return;
  const p = postParams(), method = $("sharpen");
  if (document.activeElement !== method) method.value = p.sharpen || "none";
  drawSharpParams(method.value, p);
}
function drawSharpParams(method, p) {
  const box = $("sharp-params"); box.innerHTML = "";
  for (const [name, text, lo, hi, step, layers] of SHARP[method] || []) {
    const values = layers ? p[name] : [p[name]];
    values.forEach((v, i) => {
      const l = document.createElement("label");
      l.innerHTML = `<span>${text}${layers ? " " + (i + 1) : ""}</span><input type="range" min="${lo}" max="${hi}" step="${step}" value="${v}" data-name="${name}" data-i="${layers ? i : -1}"><output>${v}</output>`;
      l.querySelector("input").oninput = (e) => (l.querySelector("output").textContent = e.target.value);
      box.appendChild(l);
    });
  }
}
$("sharpen").onchange = (e) => drawSharpParams(e.target.value, postParams());
$("sharp-apply").onclick = () => {
  const id = S.ids.post, method = $("sharpen").value, sets = {[id + ".sharpen"]: method}, lists = {};
  document.querySelectorAll("#sharp-params input").forEach((el) => {
    const name = el.dataset.name, i = +el.dataset.i, v = +el.value;
    if (i < 0) sets[id + "." + name] = v; else (lists[name] = lists[name] || postParams()[name].slice())[i] = v;
  });
  for (const [name, v] of Object.entries(lists)) sets[id + "." + name] = v;
  $("show-sharp").checked = method !== "none";
  edit(sets, "sharpening " + method);
};

// ---- pipelines ----------------------------------------------------------------------------------------
$("save-btn").onclick = async () => {
  const name = prompt("Save the pipeline (with these settings) next to the recording as:", (S.pipeline.name || "pipeline") + "-studio.json");
  if (!name) return;
  try { const r = await api("/api/save", {name}); status("saved " + r.path, "done"); showError(""); } catch (e) { showError(e.message); }
};
$("open-btn").onclick = () => $("open-file").click();
$("open-file").onchange = async (e) => {
  const f = e.target.files[0]; if (!f) return;
  let raw; try { raw = JSON.parse(await f.text()); } catch (err) { showError(`${f.name}: not valid JSON (${err.message})`); return; }
  const mine = pending = {t0: performance.now(), what: "open " + f.name, job: null, ready: false};
  try { const r = await api("/api/open", {pipeline: raw, name: f.name}); mine.job = r.job.id; showError(""); }
  catch (err) { if (pending === mine) pending = null; showError(err.message); }
  e.target.value = "";
};

refresh().then(listen);
