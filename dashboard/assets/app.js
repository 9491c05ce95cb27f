// peftbench dashboard: the run table, filter, group-by, curves and tags
// over the /api of `bench serve`. Vanilla JS, no library. Every string
// from the results folders reaches the page through textContent or DOM
// attributes, never as HTML.
//
// Filter language (parse errors are shown under the box):
//   expr   := or
//   or     := and ("||" and)*
//   and    := not ("&&" not)*
//   not    := "!" not | cmp
//   cmp    := value (op value)?      op: == != < <= > >= ~ !~
//   value  := number | "string" | 'string' | /regex/flags | true | false
//           | null | key | "(" expr ")"
// A key is a column name (lr, method, target_metric, intruders_0.5, …) or
// id, status, error, tags, note, sweep. Numbers compare as numbers, else as
// text; a missing value equals only null. `a ~ "x"` is a case-insensitive
// substring test, `a ~ /x+/i` a regular expression; on tags it tests each
// tag. A bare key is true when the run has a value.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const SVGNS = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  };
  const svg = (tag, attrs) => {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  };

  // ---- state, kept in the URL hash ----
  const state = { s: [], f: "", g: [], sel: [], sort: "", desc: false, m: "", log: false, tab: "table", cols: null };
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (p.has("s")) state.s = p.get("s").split(",").filter((x) => x !== "").map(Number);
    state.f = p.get("f") || "";
    state.g = (p.get("g") || "").split(",").filter(Boolean);
    state.sel = (p.get("sel") || "").split(",").filter(Boolean);
    state.sort = p.get("sort") || "";
    state.desc = p.get("desc") === "1";
    state.m = p.get("m") || "";
    state.log = p.get("log") === "1";
    state.tab = p.get("tab") || "table";
    state.cols = p.has("cols") ? p.get("cols").split(",").filter(Boolean) : null;
  }
  function writeHash() {
    const p = new URLSearchParams();
    p.set("s", state.s.join(","));
    if (state.f) p.set("f", state.f);
    if (state.g.length) p.set("g", state.g.join(","));
    if (state.sel.length) p.set("sel", state.sel.join(","));
    if (state.sort) p.set("sort", state.sort);
    if (state.desc) p.set("desc", "1");
    if (state.m) p.set("m", state.m);
    if (state.log) p.set("log", "1");
    if (state.tab !== "table") p.set("tab", state.tab);
    if (state.cols) p.set("cols", state.cols.join(","));
    history.replaceState(null, "", "#" + p.toString());
  }

  // ---- data ----
  let sweeps = [], runs = { columns: [], rows: [] }, version = "";
  const steps = new Map(); // run key "s:id" -> {version, data}

  async function api(path, opts) {
    const r = await fetch(path, opts);
    const body = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }
  const runKey = (r) => r.sweep + ":" + r.id;

  async function refresh() {
    try {
      sweeps = await api("/api/sweeps");
      if (!state.s.length) state.s = sweeps.map((s) => s.index).slice(0, 1);
      renderSweeps();
      const q = state.s.map((s) => "s=" + encodeURIComponent(s)).join("&");
      runs = await api("/api/runs?" + q);
      $("error").textContent = "";
      renderControls();
      renderMain();
    } catch (e) {
      $("error").textContent = "dashboard: " + e.message;
    }
  }

  async function poll() {
    try {
      const v = (await api("/api/version")).version;
      $("live").textContent = "live · " + new Date().toLocaleTimeString();
      if (v !== version) {
        version = v;
        await refresh();
      }
    } catch (e) {
      $("live").textContent = "server unreachable";
    }
    setTimeout(poll, 1000);
  }

  // ---- filter language ----
  function tokenize(src) {
    const toks = [];
    let i = 0;
    const fail = (msg, at) => { const e = new Error(msg + " at column " + (at + 1)); e.at = at; throw e; };
    while (i < src.length) {
      const c = src[i];
      if (/\s/.test(c)) { i++; continue; }
      const two = src.slice(i, i + 2);
      if (["==", "!=", "<=", ">=", "&&", "||", "!~"].includes(two)) { toks.push({ t: "op", v: two, at: i }); i += 2; continue; }
      if ("<>~!()".includes(c)) { toks.push({ t: c === "(" || c === ")" ? c : "op", v: c, at: i }); i++; continue; }
      if (c === '"' || c === "'") {
        let j = i + 1, s = "";
        while (j < src.length && src[j] !== c) {
          if (src[j] === "\\" && j + 1 < src.length) j++;
          s += src[j++];
        }
        if (j >= src.length) fail("unterminated string", i);
        toks.push({ t: "str", v: s, at: i }); i = j + 1; continue;
      }
      if (c === "/") {
        const m = /^\/((?:\\.|[^\\/])+)\/([a-z]*)/.exec(src.slice(i));
        if (!m) fail("unterminated regular expression", i);
        let re;
        try { re = new RegExp(m[1], m[2]); } catch (e) { fail("bad regular expression: " + e.message, i); }
        toks.push({ t: "re", v: re, at: i }); i += m[0].length; continue;
      }
      const num = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(src.slice(i));
      if (num && (c !== "+" && c !== "-" || !toks.length || toks[toks.length - 1].t === "op" || toks[toks.length - 1].t === "(")) {
        toks.push({ t: "num", v: Number(num[0]), at: i }); i += num[0].length; continue;
      }
      const id = /^[A-Za-z_@][A-Za-z0-9_.@-]*/.exec(src.slice(i));
      if (id) { toks.push({ t: "id", v: id[0], at: i }); i += id[0].length; continue; }
      fail("unexpected " + JSON.stringify(c), i);
    }
    return toks;
  }

  // compile returns a predicate over rows, or throws an Error naming the
  // column of the problem.
  function compile(src, known) {
    const toks = tokenize(src);
    let p = 0;
    const peek = () => toks[p];
    const fail = (msg) => { const t = toks[p]; throw new Error(msg + (t ? " at column " + (t.at + 1) : " at the end")); };
    const expr = () => {
      let l = and();
      while (peek() && peek().v === "||") { p++; const a = l, b = and(); l = (r) => a(r) || b(r); }
      return l;
    };
    const and = () => {
      let l = not();
      while (peek() && peek().v === "&&") { p++; const a = l, b = not(); l = (r) => a(r) && b(r); }
      return l;
    };
    const not = () => {
      if (peek() && peek().v === "!") { p++; const a = not(); return (r) => !truthy(a(r)); }
      return cmp();
    };
    const value = () => {
      const t = peek();
      if (!t) fail("expected a value");
      p++;
      switch (t.t) {
        case "num": case "str": case "re": return () => t.v;
        case "(": {
          const e = expr();
          if (!peek() || peek().t !== ")") fail("expected )");
          p++;
          return e;
        }
        case "id":
          if (t.v === "true") return () => true;
          if (t.v === "false") return () => false;
          if (t.v === "null") return () => null;
          if (!known.has(t.v)) { p--; fail("unknown column " + JSON.stringify(t.v)); }
          return (r) => field(r, t.v);
      }
      p--;
      fail("unexpected " + JSON.stringify(String(t.v)));
    };
    const cmp = () => {
      const a = value();
      const t = peek();
      if (!t || t.t !== "op" || ["&&", "||", "!"].includes(t.v)) return a;
      p++;
      const b = value();
      const op = t.v;
      return (r) => compare(op, a(r), b(r));
    };
    const f = expr();
    if (p < toks.length) fail("unexpected " + JSON.stringify(String(toks[p].v)));
    return (r) => truthy(f(r));
  }
  const truthy = (v) => v !== null && v !== undefined && v !== false && v !== "";
  function field(r, k) {
    switch (k) {
      case "id": return r.id;
      case "status": return r.status;
      case "error": return r.error || null;
      case "tags": return r.tags;
      case "note": return r.note || null;
      case "group": return r.group;
    }
    const v = r.values[k];
    return v === undefined ? null : v;
  }
  const asNum = (v) => typeof v === "number" ? v : (v === "+Inf" ? Infinity : v === "-Inf" ? -Infinity : NaN);
  function compare(op, a, b) {
    if (op === "~" || op === "!~") {
      const test = (x) => x !== null && (b instanceof RegExp ? b.test(String(x)) : String(x).toLowerCase().includes(String(b).toLowerCase()));
      const hit = Array.isArray(a) ? a.some(test) : test(a);
      return op === "~" ? hit : !hit;
    }
    if (Array.isArray(a)) { // tags == "x": has the tag
      const hit = a.includes(b);
      return op === "==" ? hit : op === "!=" ? !hit : false;
    }
    if (a === null || b === null) return op === "==" ? a === b : op === "!=" ? a !== b : false;
    let x = a, y = b;
    if (typeof a === "number" || typeof b === "number") {
      x = asNum(a); y = asNum(b);
      if (Number.isNaN(x) || Number.isNaN(y)) { x = String(a); y = String(b); }
    } else { x = String(a); y = String(b); }
    switch (op) {
      case "==": return x === y;
      case "!=": return x !== y;
      case "<": return x < y;
      case "<=": return x <= y;
      case ">": return x > y;
      case ">=": return x >= y;
    }
    return false;
  }

  // ---- statistics ----
  // Two-sided 95% Student t quantiles for 1..30 degrees of freedom.
  const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
    2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042];
  const t95 = (df) => df <= 30 ? T95[df - 1] : 1.96 + 2.5 / df;
  function summary(xs) {
    xs = xs.filter((x) => Number.isFinite(x));
    const n = xs.length;
    if (!n) return null;
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    if (n < 2) return { n, mean, ci: NaN };
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) * (b - mean), 0) / (n - 1));
    return { n, mean, ci: t95(n - 1) * sd / Math.sqrt(n) };
  }
  const fmt = (v) => {
    if (typeof v !== "number") return v == null ? "" : String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
    return String(Number(v.toPrecision(4)));
  };

  // tickLabels formats an axis's tick values with the fewest significant
  // digits (3 at least) that keep them distinct: a loss near 2.5e7 that
  // moves by 50 needs 8, and 4 would label two ticks alike.
  function tickLabels(vals) {
    for (let p = 3; p <= 15; p++) {
      const labs = vals.map((v) => String(Number(v.toPrecision(p))));
      if (new Set(labs).size === vals.length) return labs;
    }
    return vals.map(String);
  }

  // ---- rendering ----
  function renderSweeps() {
    const box = $("sweeps");
    box.replaceChildren();
    for (const s of sweeps) {
      const cb = el("input", { type: "checkbox", "data-sweep": String(s.index) });
      cb.checked = state.s.includes(s.index);
      cb.addEventListener("change", () => {
        state.s = sweeps.map((x) => x.index).filter((i) => i === s.index ? cb.checked : state.s.includes(i));
        writeHash(); refresh();
      });
      const counts = Object.entries(s.counts).map(([k, v]) => k + " " + v).join(", ");
      box.append(el("label", { title: s.dir }, cb, " " + s.name + " ", el("span", { class: "count", text: "(" + s.total + ": " + counts + ")" })));
    }
  }

  let filterFn = () => true;
  function knownKeys() {
    return new Set(["id", "status", "error", "tags", "note", "group", ...runs.columns.map((c) => c.key)]);
  }
  function setFilter() {
    const box = $("filter");
    try {
      filterFn = state.f.trim() ? compile(state.f, knownKeys()) : () => true;
      box.classList.remove("bad");
      $("filtererr").textContent = "";
    } catch (e) {
      filterFn = () => true;
      box.classList.add("bad");
      $("filtererr").textContent = "filter: " + e.message;
    }
  }

  function defaultColumns() {
    const rows = runs.rows;
    const varies = (k) => new Set(rows.map((r) => JSON.stringify(r.values[k]))).size > 1;
    const has = (k) => rows.some((r) => r.values[k] !== undefined);
    const out = [];
    for (const c of runs.columns) {
      if (["method", "rank", "task", "seed"].includes(c.key)) out.push(c.key);
      else if (c.kind === "param" && varies(c.key)) out.push(c.key);
    }
    if (runs.columns.some((c) => c.key === "sweep") && state.s.length > 1) out.unshift("sweep");
    for (const c of runs.columns) if (c.kind === "metric" && c.direction && has(c.key) && out.length < 16) out.push(c.key);
    return out;
  }
  const visibleColumns = () => {
    const want = state.cols || defaultColumns();
    return runs.columns.filter((c) => want.includes(c.key));
  };

  function renderControls() {
    const gb = $("groupby");
    if (gb.options.length !== runs.columns.filter((c) => c.kind !== "metric").length) {
      gb.replaceChildren(...runs.columns.filter((c) => c.kind !== "metric").map((c) => el("option", { value: c.key, text: c.key })));
    }
    for (const o of gb.options) o.selected = state.g.includes(o.value);
    const cols = $("columns");
    const vis = new Set(visibleColumns().map((c) => c.key));
    cols.replaceChildren(...runs.columns.map((c) => {
      const cb = el("input", { type: "checkbox", value: c.key });
      cb.checked = vis.has(c.key);
      cb.addEventListener("change", () => {
        const cur = new Set(visibleColumns().map((x) => x.key));
        if (cb.checked) cur.add(c.key); else cur.delete(c.key);
        state.cols = runs.columns.map((x) => x.key).filter((k) => cur.has(k));
        writeHash(); renderMain();
      });
      return el("label", { title: c.label }, cb, " " + c.key);
    }));
    setFilter();
  }

  function sortRows(rows, get) {
    if (!state.sort) return rows;
    const dir = state.desc ? -1 : 1;
    return rows.slice().sort((a, b) => {
      const x = get(a, state.sort), y = get(b, state.sort);
      if (x == null && y == null) return 0;
      if (x == null) return 1;
      if (y == null) return -1;
      const nx = asNum(x), ny = asNum(y);
      if (!Number.isNaN(nx) && !Number.isNaN(ny)) return (nx - ny) * dir;
      return String(x).localeCompare(String(y)) * dir;
    });
  }

  function header(cols) {
    const tr = el("tr");
    for (const c of cols) {
      const th = el("th", { title: c.label + (c.direction ? " (" + (c.direction === "max" ? "higher" : "lower") + " is better)" : ""), "data-key": c.key, text: c.key });
      if (c.key && c.key === state.sort) th.classList.add("sorted");
      if (c.key && c.key === state.sort && state.desc) th.classList.add("desc");
      if (c.key !== "") th.addEventListener("click", () => {
        if (state.sort === c.key) state.desc = !state.desc; else { state.sort = c.key; state.desc = false; }
        writeHash(); renderMain();
      });
      tr.append(th);
    }
    return tr;
  }

  function selectBox(key) {
    const cb = el("input", { type: "checkbox", class: "sel", "data-key": key });
    cb.checked = state.sel.includes(key);
    cb.addEventListener("change", () => {
      state.sel = state.sel.filter((k) => k !== key);
      if (cb.checked) state.sel.push(key);
      writeHash(); renderMain();
    });
    return cb;
  }

  function filteredRows() { return runs.rows.filter((r) => filterFn(r)); }

  function renderMain() {
    const editing = document.activeElement && document.activeElement.closest && document.activeElement.closest("#runs") &&
      document.activeElement.tagName === "INPUT" && document.activeElement.type === "text";
    for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === state.tab);
    $("tab-table").classList.toggle("hidden", state.tab !== "table");
    $("tab-view").classList.toggle("hidden", state.tab === "table");
    if (state.tab !== "table") { renderView(); return; }
    if (!editing) (state.g.length ? renderGroups : renderRuns)();
    renderCurves();
  }

  function renderRuns() {
    const cols = visibleColumns();
    const rows = sortRows(filteredRows(), (r, k) => k === "id" || k === "status" ? r[k] : field(r, k));
    $("count").textContent = rows.length + " of " + runs.rows.length + " runs";
    const head = header([{ key: "", label: "select for curves" }, { key: "id", label: "trial ID" }, { key: "status", label: "status" }, ...cols,
      { key: "tags", label: "tags" }, { key: "note", label: "note" }]);
    const body = document.createDocumentFragment();
    for (const r of rows) {
      const key = runKey(r);
      const tr = el("tr", { "data-run": key });
      if (state.sel.includes(key)) tr.classList.add("selected");
      tr.append(el("td", {}, selectBox(key)), el("td", { class: "id", text: (state.s.length > 1 ? r.sweep + "/" : "") + r.id }));
      const st = el("td", { class: "status status-" + r.status });
      st.append(el("span", { text: r.status + (r.live ? " · step " + r.live.step + " (attempt " + r.live.attempt + ")" : "") }));
      if (r.error) st.append(el("span", { class: "reason", title: r.error, text: r.error }));
      tr.append(st);
      for (const c of cols) {
        const v = r.values[c.key];
        tr.append(el("td", { class: c.type === "number" ? "num" : "", "data-col": c.key, text: fmt(v) }));
      }
      tr.append(tagCell(r), noteCell(r));
      body.append(tr);
    }
    $("runs").tHead.replaceChildren(head);
    $("runs").tBodies[0].replaceChildren(body);
  }

  async function annotate(r, change) {
    try {
      const a = await api("/api/annotate", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(Object.assign({ s: r.sweep, id: r.id }, change)) });
      r.tags = a.tags || []; r.note = a.note || "";
      $("error").textContent = "";
    } catch (e) {
      $("error").textContent = "annotate " + r.id + ": " + e.message;
    }
    renderMain();
  }
  function tagCell(r) {
    const td = el("td", { class: "tags" });
    for (const t of r.tags) {
      td.append(el("span", { class: "tag" }, t, el("button", { title: "remove tag", "aria-label": "remove tag " + t, text: "×",
        onclick: () => annotate(r, { tags: r.tags.filter((x) => x !== t) }) })));
    }
    const add = el("input", { type: "text", class: "addtag", placeholder: "+tag", "aria-label": "add a tag" });
    add.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && add.value.trim()) { const t = add.value.trim(); add.value = ""; add.blur(); annotate(r, { tags: [...r.tags, t] }); }
    });
    td.append(add);
    return td;
  }
  function noteCell(r) {
    const inp = el("input", { type: "text", class: "note", placeholder: "note", "aria-label": "note" });
    inp.value = r.note || "";
    inp.addEventListener("change", () => annotate(r, { note: inp.value }));
    return el("td", {}, inp);
  }

  // groups returns the filtered runs grouped by the group-by keys.
  function groups() {
    const m = new Map();
    for (const r of filteredRows()) {
      const vals = state.g.map((k) => field(r, k));
      const key = "g:" + JSON.stringify(vals);
      if (!m.has(key)) m.set(key, { key, vals, runs: [] });
      m.get(key).runs.push(r);
    }
    return [...m.values()];
  }

  function renderGroups() {
    const metrics = visibleColumns().filter((c) => c.type === "number" && !state.g.includes(c.key) && c.kind === "metric");
    const gs = groups();
    for (const g of gs) {
      g.sum = {};
      for (const c of metrics) g.sum[c.key] = summary(g.runs.map((r) => asNum(r.values[c.key])));
    }
    const get = (g, k) => {
      const i = state.g.indexOf(k);
      if (i >= 0) return g.vals[i];
      if (k === "n") return g.runs.length;
      return g.sum[k] ? g.sum[k].mean : null;
    };
    const rows = sortRows(gs, get);
    $("count").textContent = rows.length + " groups of " + filteredRows().length + " runs";
    const gcols = state.g.map((k) => runs.columns.find((c) => c.key === k) || { key: k, label: k });
    $("runs").tHead.replaceChildren(header([{ key: "", label: "select for curves" }, ...gcols, { key: "n", label: "runs (seeds) in the group" },
      { key: "status", label: "statuses" }, ...metrics]));
    const body = document.createDocumentFragment();
    for (const g of rows) {
      const tr = el("tr", { "data-group": g.key, class: state.sel.includes(g.key) ? "selected" : "" });
      tr.append(el("td", {}, selectBox(g.key)));
      g.vals.forEach((v, i) => tr.append(el("td", { "data-col": state.g[i], text: fmt(v) })));
      tr.append(el("td", { class: "num n", "data-col": "n", text: String(g.runs.length) }));
      const st = {};
      for (const r of g.runs) st[r.status] = (st[r.status] || 0) + 1;
      tr.append(el("td", { text: Object.entries(st).map(([k, v]) => k + " " + v).join(", ") }));
      for (const c of metrics) {
        const s = g.sum[c.key];
        const td = el("td", { class: "num", "data-col": c.key });
        if (s) {
          td.append(fmt(s.mean));
          if (Number.isFinite(s.ci)) td.append(el("span", { class: "ci", text: " ± " + fmt(s.ci) }));
          if (s.n !== g.runs.length) td.append(el("span", { class: "ci", text: " (n=" + s.n + ")" }));
        }
        tr.append(td);
      }
      body.append(tr);
    }
    $("runs").tBodies[0].replaceChildren(body);
  }

  // ---- curves ----
  async function stepsOf(sweep, id) {
    const key = sweep + ":" + id;
    const c = steps.get(key);
    if (c && c.version === version) return c.data;
    const data = await api("/api/steps?s=" + encodeURIComponent(sweep) + "&id=" + encodeURIComponent(id));
    steps.set(key, { version, data });
    return data;
  }

  let curveToken = 0;
  async function renderCurves() {
    const token = ++curveToken;
    const byKey = new Map(runs.rows.map((r) => [runKey(r), r]));
    const gmap = new Map(state.g.length ? groups().map((g) => [g.key, g]) : []);
    const series = []; // {label, key, runs: [row]}
    for (const k of state.sel) {
      if (k.startsWith("g:")) { const g = gmap.get(k); if (g) series.push({ key: k, label: state.g.map((x, i) => x + "=" + fmt(g.vals[i])).join(" ") + " (mean of " + g.runs.length + ")", runs: g.runs }); }
      else if (byKey.has(k)) { const r = byKey.get(k); series.push({ key: k, label: r.id + " " + ["method", "rank"].map((x) => fmt(r.values[x])).join(" "), runs: [r] }); }
    }
    const box = $("curves");
    if (!series.length) { box.replaceChildren(el("p", { class: "count", text: "Select runs or groups (first column) to overlay their curves." })); return; }
    let loaded;
    try {
      loaded = await Promise.all(series.map(async (s) => ({ s, data: await Promise.all(s.runs.map((r) => stepsOf(r.sweep, r.id).catch(() => null))) })));
    } catch (e) { $("error").textContent = "curves: " + e.message; return; }
    if (token !== curveToken) return;
    const metrics = new Set();
    for (const l of loaded) for (const d of l.data) if (d) for (const st of d.steps) metrics.add(st.split + "/" + st.metric);
    const msel = $("metric");
    const ms = [...metrics].sort();
    if (!state.m || !metrics.has(state.m)) state.m = ms.includes("train/loss") ? "train/loss" : ms[0] || "";
    msel.replaceChildren(...ms.map((m) => el("option", { value: m, text: m })));
    msel.value = state.m;
    $("logscale").checked = state.log;
    const lines = loaded.map(({ s, data }) => {
      const acc = new Map();
      for (const d of data) if (d) for (const st of d.steps) {
        if (st.split + "/" + st.metric !== state.m) continue;
        const v = asNum(st.value);
        if (!Number.isFinite(v) || (state.log && v <= 0)) continue;
        if (!acc.has(st.step)) acc.set(st.step, []);
        acc.get(st.step).push(v);
      }
      const pts = [...acc.entries()].sort((a, b) => a[0] - b[0]).map(([x, vs]) => [x, vs.reduce((a, b) => a + b, 0) / vs.length]);
      return { s, pts, source: data.map((d) => d && d.source).filter(Boolean).join(",") };
    });
    drawCurves(box, lines);
  }

  const COLORS = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#ad1457", "#4e342e", "#558b2f", "#283593"];
  function drawCurves(box, lines) {
    const W = 760, H = 320, L = 60, R = 200, T = 10, B = 30;
    const all = lines.flatMap((l) => l.pts);
    const root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "curves of " + state.m });
    if (!all.length) { box.replaceChildren(el("p", { class: "count", text: "No " + state.m + " points yet." })); return; }
    const ty = (v) => state.log ? Math.log10(v) : v;
    let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
    let y0 = Math.min(...all.map((p) => ty(p[1]))), y1 = Math.max(...all.map((p) => ty(p[1])));
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
    const sy = (y) => T + (1 - (ty(y) - y0) / (y1 - y0)) * (H - T - B);
    root.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }), svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
    const label = (x, y, s, anchor) => { const t = svg("text", { x, y, "text-anchor": anchor || "start" }); t.textContent = s; root.append(t); };
    const yt = [0, 1, 2, 3, 4].map((i) => { const yv = y0 + (y1 - y0) * i / 4; return state.log ? Math.pow(10, yv) : yv; });
    const ylab = tickLabels(yt);
    for (let i = 0; i <= 4; i++) {
      const xv = x0 + (x1 - x0) * i / 4;
      label(sx(xv), H - B + 14, fmt(Math.round(xv)), "middle");
      label(L - 4, T + (1 - i / 4) * (H - T - B) + 4, ylab[i], "end");
    }
    label(W - R, H - 4, "step", "end");
    lines.forEach((l, i) => {
      const color = COLORS[i % COLORS.length];
      const d = l.pts.map((p, j) => (j ? "L" : "M") + sx(p[0]).toFixed(1) + " " + sy(p[1]).toFixed(1)).join(" ");
      const path = svg("path", { class: "curve", d: d || "M0 0", stroke: color, "data-key": l.s.key, "data-points": String(l.pts.length), "data-source": l.source });
      const title = svg("title");
      title.textContent = l.s.label + ": " + l.pts.length + " points";
      path.append(title);
      root.append(path);
      label(W - R + 8, T + 12 + i * 14, "■ " + l.s.label + " (" + l.pts.length + ")");
      root.lastChild.setAttribute("fill", color);
    });
    box.replaceChildren(root);
    $("curvenote").textContent = lines.map((l) => l.pts.length).reduce((a, b) => a + b, 0) + " points";
  }

  // ---- the views of views.js ----
  let spectraToken = 0;
  const viewOpts = {};
  async function renderView() {
    const box = $("view");
    const V = window.peftViews || {};
    const fn = V[state.tab];
    const data = { columns: runs.columns, rows: filteredRows() };
    // Each view's own choices (axes, brushes, ε, the sweeps compared) live
    // in viewOpts so a live refetch redraws the view as the user left it.
    const keep = viewOpts[state.tab] || (viewOpts[state.tab] = {});
    const names = [];
    for (const sw of sweeps) names[sw.index] = sw.name;
    const opts = Object.assign({}, keep, { selected: state.sel.slice(), sweepNames: names,
      onSelect: (keys) => { state.sel = keys.slice(); writeHash(); renderCurves(); },
      onBrush: (brushes) => { keep.brushes = brushes; },
      onChange: (next) => { for (const k of ["axes", "color", "x", "y", "group", "eps", "metric", "a", "b"]) if (k in next) keep[k] = next[k]; } });
    if (typeof fn !== "function") { box.replaceChildren(el("p", { class: "count", text: "This view is not available in this build." })); return; }
    try {
      if (state.tab === "spectra") {
        const k = state.sel.find((x) => !x.startsWith("g:")) || (data.rows.find((r) => r.status === "ok") && runKey(data.rows.find((r) => r.status === "ok")));
        if (!k) { box.replaceChildren(el("p", { class: "count", text: "Select a finished run for its spectra." })); return; }
        const [s, id] = [k.slice(0, k.indexOf(":")), k.slice(k.indexOf(":") + 1)];
        const token = ++spectraToken;
        const sp = await api("/api/spectra?s=" + encodeURIComponent(s) + "&id=" + encodeURIComponent(id));
        if (token !== spectraToken) return;
        box.replaceChildren();
        fn(box, sp, Object.assign(opts, { run: data.rows.find((r) => runKey(r) === k) || null }));
      } else {
        box.replaceChildren();
        fn(box, data, opts);
      }
    } catch (e) {
      box.replaceChildren(el("p", { class: "error", text: state.tab + ": " + e.message }));
    }
  }

  // ---- wiring ----
  function init() {
    readHash();
    $("filter").value = state.f;
    let ft;
    $("filter").addEventListener("input", () => {
      clearTimeout(ft);
      ft = setTimeout(() => { state.f = $("filter").value; writeHash(); setFilter(); renderMain(); }, 150);
    });
    $("groupby").addEventListener("change", () => {
      state.g = [...$("groupby").selectedOptions].map((o) => o.value);
      writeHash(); renderMain();
    });
    $("metric").addEventListener("change", () => { state.m = $("metric").value; writeHash(); renderCurves(); });
    $("logscale").addEventListener("change", () => { state.log = $("logscale").checked; writeHash(); renderCurves(); });
    for (const b of document.querySelectorAll("#tabs button")) {
      b.addEventListener("click", () => { state.tab = b.dataset.tab; writeHash(); renderMain(); });
    }
    window.addEventListener("hashchange", () => { readHash(); $("filter").value = state.f; renderControls(); renderMain(); });
    poll();
  }
  // The test hook: the filter compiler, for unit checks in the browser.
  window.peftDashboard = { compile, summary };
  init();
})();
