// views.js: the dashboard's analysis views, drawn as SVG with DOM calls.
//
//   window.peftViews.parcoords(el, runs, opts)  hyperparameters → metrics
//   window.peftViews.pareto(el, runs, opts)     any two numeric columns, Pareto front
//   window.peftViews.spectra(el, spectra, opts) one trial's singular values, intruders
//   window.peftViews.compare(el, runs, opts)    two sweeps, paired configurations
//
// `runs` is the /api/runs JSON, `spectra` the /api/spectra JSON (see
// BRIEF18.md). Each function empties `el` and draws into it. No data ever
// goes through innerHTML: every user string (sweep names, tags, values)
// goes in as textContent or an attribute, so a `<script>` in a sweep name
// stays text. No library, no network.
//
// A run is addressed by its key `sweep:id` (peftViews.rowKey), because two
// sweeps can hold the same trial ID (the ID hashes the configuration).
// onSelect(keys, rows) gets those keys and the row objects.
//
// opts (all optional; a view picks defaults and the reader changes them
// with the controls it builds, each change re-rendering the view and
// calling opts.onChange(newOpts) so the page can keep the choice):
//   parcoords: axes [keys], color key, brushes {key: {lo, hi, na} or
//              {values, na}}, onBrush(brushes), onSelect(keys, rows),
//              sweepNames
//   pareto:    x key, y key, group (one point per configuration, mean over
//              seeds), onSelect(keys, rows) on a click, onChange, sweepNames
//   spectra:   eps (index into epsilons; default ε = 0.5), onChange
//   compare:   metric key, a and b (sweep indices), onChange, sweepNames
// sweepNames are the /api/sweeps names by index, shown as text.
(function () {
  'use strict';

  const SVGNS = 'http://www.w3.org/2000/svg';
  const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f',
    '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
  const VIRIDIS = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];
  const MISSING_COLOR = '#b8b8b8';

  // ---- DOM helpers -------------------------------------------------------

  // h makes an HTML element with attributes and text, appended to parent:
  // the only way the views build HTML, so text is never parsed as markup.
  function h(tag, attrs, text, parent) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (parent) parent.appendChild(e);
    return e;
  }

  // s makes an SVG element (createElementNS) with attributes and text.
  function s(tag, attrs, parent, text) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (parent) parent.appendChild(e);
    return e;
  }

  // setAttrs sets attributes, skipping null and undefined values.
  function setAttrs(e, attrs) {
    for (const k in attrs || {}) {
      if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, String(attrs[k]));
    }
  }

  // tooltip gives an SVG element a hover text (an SVG <title> child).
  function tooltip(e, text) { s('title', {}, e, text); }

  // clear empties el: every view starts from nothing, so a re-render on
  // a live update never leaves a stale element behind.
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }

  // message writes a plain sentence where a view has nothing to draw.
  function message(parent, text) { return h('p', { class: 'pv-empty' }, text, parent); }

  // root clears el and returns the view's container, with the shared
  // stylesheet in place.
  function root(el, name) {
    clear(el);
    ensureStyle();
    return h('div', { class: 'pv pv-' + name }, null, el);
  }

  // ensureStyle adds the views' few CSS rules once (a constant string, no
  // data); the page's own style.css may override them.
  function ensureStyle() {
    if (document.getElementById('pv-style')) return;
    h('style', { id: 'pv-style' }, [
      '.pv{font:12px system-ui,sans-serif;color:#222}',
      '.pv-controls{display:flex;gap:12px;flex-wrap:wrap;margin:4px 0 8px}',
      '.pv-controls label{display:flex;gap:4px;align-items:center}',
      '.pv-empty{color:#666;font-style:italic;margin:8px 0}',
      '.pv-note{color:#666;margin:4px 0}',
      '.pv svg text{font:11px system-ui,sans-serif;fill:#333}',
      '.pv .pv-line{fill:none;stroke-width:1.4;stroke-opacity:.75}',
      '.pv .pv-line.dim{stroke:#ddd;stroke-opacity:.5}',
      '.pv .pv-brush{fill:#4e79a7;fill-opacity:.18;stroke:#4e79a7}',
      '.pv .pv-brush-area{fill:transparent;cursor:crosshair}',
      '.pv .pv-pt{cursor:pointer;stroke:#fff;stroke-width:.8}',
      '.pv .pv-pt.front{stroke:#000;stroke-width:1.6}',
      '.pv .pv-pt.selected{stroke:#d00;stroke-width:2.5}',
      '.pv .pv-axis line,.pv .pv-axis path{stroke:#888}',
      '.pv svg .pv-axis text{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}',
      '.pv td{white-space:nowrap}.pv th{max-width:260px;overflow-wrap:anywhere}.pv select{max-width:260px}',
      '.pv-spectra-grid{display:flex;flex-wrap:wrap;gap:8px}',
      '.pv table{border-collapse:collapse}',
      '.pv td,.pv th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}',
      '.pv td.pv-label,.pv th.pv-label{text-align:left}',
      '.pv .better{color:#1a7f37}.pv .worse{color:#c0262d}',
    ].join('\n'), document.head || document.documentElement);
  }

  // select builds a <select> with a label from [value, text] options and
  // calls onChange(value) when the reader picks another.
  function select(parent, labelText, options, value, onChange) {
    const lab = h('label', {}, null, parent);
    h('span', {}, labelText, lab);
    const sel = h('select', {}, null, lab);
    for (const [v, text] of options) {
      const o = h('option', { value: v }, text, sel);
      if (String(v) === String(value)) o.selected = true;
    }
    sel.addEventListener('change', () => onChange(sel.value));
    return sel;
  }

  // ---- values --------------------------------------------------------------

  // rowKey is a run's key across sweeps: "sweep:id".
  function rowKey(r) { return r.sweep + ':' + r.id; }

  // isMissing: null and absent values (a rank-less method's rank, a running
  // trial's metrics) are missing, not zero.
  function isMissing(v) { return v === null || v === undefined; }

  // num reads a value as a number: numbers as they are, the API's "NaN",
  // "+Inf", "-Inf" strings as NaN and ±Infinity, anything else null.
  function num(v) {
    if (typeof v === 'number') return v;
    if (typeof v !== 'string') return null;
    switch (v) {
      case 'NaN': return NaN;
      case '+Inf': case 'Inf': case 'Infinity': case '+Infinity': return Infinity;
      case '-Inf': case '-Infinity': return -Infinity;
    }
    return null;
  }

  // val is a row's value of a column, undefined where absent.
  function val(r, key) { return r.values ? r.values[key] : undefined; }

  // columnsOf indexes runs.columns by key.
  function columnsOf(runs) {
    const m = new Map();
    for (const c of (runs && runs.columns) || []) m.set(c.key, c);
    return m;
  }

  // labelOf is a column's label, else its key.
  function labelOf(col, key) { return col && col.label ? col.label : key; }

  // isNumeric: a column of numbers (params such as lr, metrics); string
  // columns (method, task) are categorical.
  function isNumeric(col) { return !!col && col.type === 'number'; }

  // rowsOf is runs.rows, or [] for a missing or empty payload.
  function rowsOf(runs) { return (runs && Array.isArray(runs.rows)) ? runs.rows : []; }

  // sweepName names sweep i from opts.sweepNames (the /api/sweeps names).
  function sweepName(opts, i) {
    const n = opts && opts.sweepNames && opts.sweepNames[i];
    return n !== undefined && n !== null ? String(n) : 'sweep ' + i;
  }

  // fmt prints a number short: 4 significant digits, exponent form for
  // very large or small magnitudes, NaN and ±Inf by name.
  function fmt(v) {
    if (v === null || v === undefined) return 'n/a';
    if (typeof v !== 'number') return String(v);
    if (Number.isNaN(v)) return 'NaN';
    if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) {
      const [m, e] = v.toExponential(2).split('e');
      return String(+m) + 'e' + Number(e);
    }
    return String(+v.toPrecision(4));
  }

  // runLabel is a run's one-line description for tooltips: the sweep,
  // the ID, the method settings, the status and the tags (all as text).
  function runLabel(r, opts) {
    const v = r.values || {};
    const parts = [sweepName(opts, r.sweep), r.id];
    for (const k of ['method', 'rank', 'task', 'seed']) {
      if (!isMissing(v[k])) parts.push(k + '=' + v[k]);
    }
    parts.push(String(r.status || ''));
    if (r.tags && r.tags.length) parts.push('tags: ' + r.tags.join(', '));
    return parts.join(' · ');
  }

  // ---- scales and colours ---------------------------------------------------

  // numScale maps values onto pixels [p0, p1] with 5% margins; log10 when
  // all values are positive over two decades or more (learning rates,
  // parameter counts). null when no value is finite.
  function numScale(vals, p0, p1) {
    const f = vals.filter(Number.isFinite);
    if (!f.length) return null;
    let lo = Infinity, hi = -Infinity;
    for (const v of f) { if (v < lo) lo = v; if (v > hi) hi = v; }
    const log = lo > 0 && hi / lo >= 100;
    const tr = log ? Math.log10 : (v) => v;
    let d0 = tr(lo), d1 = tr(hi);
    let pad = (d1 - d0) * 0.05;
    if (pad === 0) pad = Math.abs(d0) * 0.05 || 0.5;
    d0 -= pad; d1 += pad;
    const map = (v) => p0 + (tr(v) - d0) / (d1 - d0) * (p1 - p0);
    map.log = log;
    map.domain = [d0, d1];
    map.ticks = () => ticks(d0, d1, log);
    return map;
  }

  // ticks picks about five round values within [d0, d1] (in log10 units
  // on a log axis, where they are the powers of ten).
  function ticks(d0, d1, log) {
    if (log) {
      const out = [];
      for (let e = Math.ceil(d0); e <= Math.floor(d1); e++) out.push(Math.pow(10, e));
      return out;
    }
    const span = d1 - d0;
    if (!(span > 0)) return [d0];
    let step = Math.pow(10, Math.floor(Math.log10(span / 5)));
    if (span / step > 20) step *= 5; else if (span / step > 10) step *= 2;
    const out = [];
    for (let t = Math.ceil(d0 / step) * step; t <= d1 + 1e-12 * Math.abs(d1); t += step) {
      out.push(+t.toPrecision(12));
    }
    return out;
  }

  // catColors gives each category a palette colour, in sorted order so a
  // method keeps its colour across views.
  function catColors(values) {
    const m = new Map();
    [...new Set(values.filter((v) => !isMissing(v)).map(String))].sort()
      .forEach((v, i) => m.set(v, PALETTE[i % PALETTE.length]));
    return m;
  }

  // viridis is a colour on the viridis ramp for t in [0, 1].
  function viridis(t) {
    t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
    const i = Math.min(VIRIDIS.length - 2, Math.floor(t)), f = t - i;
    const a = hex(VIRIDIS[i]), b = hex(VIRIDIS[i + 1]);
    return 'rgb(' + a.map((x, k) => Math.round(x + (b[k] - x) * f)).join(',') + ')';
  }

  // hex reads "#rrggbb" as [r, g, b].
  function hex(c) { return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)); }

  // colorBy returns a row → colour function for a column: the palette for
  // categories, viridis over the finite range for numbers, grey where the
  // value is missing or not finite; and a legend description.
  function colorBy(rows, col, key) {
    if (!key) return { fn: () => PALETTE[0], legend: null };
    if (isNumeric(col)) {
      const f = rows.map((r) => num(val(r, key))).filter(Number.isFinite);
      const lo = Math.min(...f), hi = Math.max(...f);
      const fn = (r) => {
        const v = num(val(r, key));
        if (!Number.isFinite(v)) return MISSING_COLOR;
        return viridis(hi > lo ? (v - lo) / (hi - lo) : 0.5);
      };
      return { fn, legend: f.length ? { kind: 'ramp', lo, hi } : null };
    }
    const m = catColors(rows.map((r) => val(r, key)));
    const fn = (r) => {
      const v = val(r, key);
      return isMissing(v) ? MISSING_COLOR : m.get(String(v));
    };
    return { fn, legend: { kind: 'cats', map: m } };
  }

  // legend draws a colour legend as HTML below a chart.
  function legend(parent, title, lg) {
    if (!lg) return;
    const d = h('div', { class: 'pv-legend' }, null, parent);
    h('span', {}, title + ': ', d);
    if (lg.kind === 'ramp') {
      h('span', {}, fmt(lg.lo) + ' ', d);
      const bar = h('span', { class: 'pv-ramp' }, null, d);
      bar.style.display = 'inline-block';
      bar.style.width = '80px';
      bar.style.height = '10px';
      bar.style.background = 'linear-gradient(to right,' + VIRIDIS.join(',') + ')';
      h('span', {}, ' ' + fmt(lg.hi), d);
      return;
    }
    for (const [v, c] of lg.map) {
      const sw = h('span', { class: 'pv-swatch' }, '■ ', d);
      sw.style.color = c;
      h('span', {}, v + '  ', d);
    }
  }

  // tickText labels a tick: powers of ten as 1eN on a log axis.
  function tickText(t, log) {
    return log && (t < 0.01 || t > 1000) ? '1e' + Math.round(Math.log10(t)) : fmt(t);
  }

  // drawAxis draws a vertical or horizontal numeric axis with ticks.
  function drawAxis(g, scale, vertical, at) {
    const a = s('g', { class: 'pv-axis' }, g);
    for (const t of scale.ticks()) {
      const p = scale(t);
      if (vertical) {
        s('line', { x1: at - 4, x2: at, y1: p, y2: p }, a);
        s('text', { x: at - 6, y: p + 3, 'text-anchor': 'end' }, a, tickText(t, scale.log));
      } else {
        s('line', { x1: p, x2: p, y1: at, y2: at + 4 }, a);
        s('text', { x: p, y: at + 15, 'text-anchor': 'middle' }, a, tickText(t, scale.log));
      }
    }
    return a;
  }

  // ---- parallel coordinates --------------------------------------------------

  // defaultAxes picks the parameters that vary across the runs (seed
  // aside), then the metrics with a direction: what a reader usually
  // wants to relate first.
  function defaultAxes(runs) {
    const rows = rowsOf(runs);
    const out = [];
    for (const c of runs.columns || []) {
      if (c.kind !== 'param' || c.key === 'seed') continue;
      const vs = new Set(rows.map((r) => JSON.stringify(val(r, c.key) ?? null)));
      if (vs.size > 1) out.push(c.key);
    }
    for (const c of runs.columns || []) {
      if (c.kind === 'metric' && c.direction && rows.some((r) => Number.isFinite(num(val(r, c.key))))) out.push(c.key);
    }
    return out.slice(0, 8);
  }

  // pcAxis builds one parallel-coordinates axis: a position for every
  // value (numbers on a scale, strings as evenly spaced categories), with
  // missing and non-finite values in an "n/a" slot below the axis so a
  // run without a rank or a metric is still one whole line.
  function pcAxis(key, col, rows, x, top, bottom) {
    const naY = bottom + 22;
    const ax = { key, col, x, top, bottom, naY, label: labelOf(col, key) };
    if (isNumeric(col)) {
      ax.scale = numScale(rows.map((r) => num(val(r, key))), bottom, top);
      ax.pos = (v) => {
        const n = num(v);
        return Number.isFinite(n) && ax.scale ? ax.scale(n) : naY;
      };
      ax.has = (v, b) => {
        const n = num(v);
        return Number.isFinite(n) ? b.lo !== undefined && n >= b.lo && n <= b.hi : !!b.na;
      };
      return ax;
    }
    const cats = [...new Set(rows.map((r) => val(r, key)).filter((v) => !isMissing(v)).map(String))].sort();
    const step = cats.length > 1 ? (bottom - top) / (cats.length - 1) : 0;
    ax.cats = new Map(cats.map((c, i) => [c, cats.length > 1 ? bottom - i * step : (top + bottom) / 2]));
    ax.pos = (v) => (isMissing(v) ? naY : ax.cats.get(String(v)));
    ax.has = (v, b) => (isMissing(v) ? !!b.na : (b.values || []).includes(String(v)));
    return ax;
  }

  // drawPcAxis draws an axis line, its ticks or categories, its label and
  // the n/a slot.
  function drawPcAxis(g, ax) {
    const a = s('g', { class: 'pv-axis', 'data-key': ax.key }, g);
    s('line', { x1: ax.x, x2: ax.x, y1: ax.top, y2: ax.bottom }, a);
    const t = s('text', { x: ax.x, y: ax.top - 14, 'text-anchor': 'middle', 'font-weight': 'bold' }, a,
      ax.label.length > 20 ? ax.label.slice(0, 19) + '…' : ax.label);
    tooltip(t, ax.label + (ax.col && ax.col.direction ? ' (' + ax.col.direction + ' is better)' : ''));
    if (ax.cats) {
      for (const [c, y] of ax.cats) {
        s('line', { x1: ax.x - 4, x2: ax.x, y1: y, y2: y }, a);
        s('text', { x: ax.x - 6, y: y + 3, 'text-anchor': 'end', class: 'pv-cat', 'data-value': c, 'data-y': y }, a,
          c.length > 14 ? c.slice(0, 13) + '…' : c);
      }
    } else if (ax.scale) {
      for (const v of ax.scale.ticks()) {
        const y = ax.scale(v);
        s('line', { x1: ax.x - 4, x2: ax.x, y1: y, y2: y }, a);
        s('text', { x: ax.x - 6, y: y + 3, 'text-anchor': 'end' }, a, tickText(v, ax.scale.log));
      }
    }
    s('text', { x: ax.x - 6, y: ax.naY + 3, 'text-anchor': 'end', fill: '#999' }, a, 'n/a');
  }

  // brushSelects: a row is selected when every brushed axis holds its value.
  function brushSelects(axes, brushes, r) {
    return axes.every((ax) => !brushes[ax.key] || ax.has(val(r, ax.key), brushes[ax.key]));
  }

  // brushFromPixels turns a dragged pixel range on an axis into a brush in
  // data terms ({lo, hi} for numbers, {values} for categories, na when it
  // covers the n/a slot), so it survives a re-render with new data.
  function brushFromPixels(ax, rows, y0, y1) {
    const lo = Math.min(y0, y1), hi = Math.max(y0, y1);
    const b = { na: ax.naY >= lo && ax.naY <= hi };
    if (ax.cats) {
      b.values = [...ax.cats].filter(([, y]) => y >= lo && y <= hi).map(([c]) => c);
      return b;
    }
    const inside = rows.map((r) => num(val(r, ax.key)))
      .filter((v) => Number.isFinite(v) && ax.scale(v) >= lo && ax.scale(v) <= hi);
    if (inside.length) { b.lo = Math.min(...inside); b.hi = Math.max(...inside); }
    return b;
  }

  // brushPixels is the pixel extent to draw a brush at (its values'
  // positions, padded), or null where it holds nothing drawable.
  function brushPixels(ax, b) {
    const ys = [];
    if (ax.cats) for (const c of b.values || []) if (ax.cats.has(c)) ys.push(ax.cats.get(c));
    if (!ax.cats && b.lo !== undefined && ax.scale) ys.push(ax.scale(b.lo), ax.scale(b.hi));
    if (b.na) ys.push(ax.naY);
    if (!ys.length) return null;
    return [Math.min(...ys) - 5, Math.max(...ys) + 5];
  }

  // svgY converts a mouse event's position to the SVG's user units.
  function svgY(svg, ev) {
    const pt = svg.createSVGPoint();
    pt.x = ev.clientX; pt.y = ev.clientY;
    const m = svg.getScreenCTM();
    return m ? pt.matrixTransform(m.inverse()).y : ev.offsetY;
  }

  // parcoords draws one polyline per run across the chosen axes
  // (opts.axes, else the varying parameters and the metrics), coloured by
  // opts.color. Dragging along an axis brushes it; the runs inside every
  // brush stay coloured and go to opts.onSelect(keys, rows); the brushes,
  // in data terms, go to opts.onBrush(brushes) so the page can pass them
  // back as opts.brushes on its next render. A click on an axis without
  // a drag clears its brush.
  function parcoords(el, runs, opts) {
    opts = opts || {};
    const box = root(el, 'parcoords');
    const all = rowsOf(runs);
    if (!all.length) return message(box, 'No runs to show yet: the selected sweeps have no trials.');
    const cols = columnsOf(runs);
    const keys = (opts.axes && opts.axes.length ? opts.axes : defaultAxes(runs)).filter((k) => cols.has(k));
    if (keys.length < 2) return message(box, 'Parallel coordinates need two or more columns: pick the axes to show.');
    const rows = all.filter((r) => keys.some((k) => !isMissing(val(r, k))));
    if (!rows.length) return message(box, 'No run has a value on the chosen axes.');

    const gap = 140, left = 70, top = 40, bottom = 300;
    const W = left + gap * (keys.length - 1) + 60, H = bottom + 40;
    const svg = s('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, class: 'pv-parcoords-svg',
      'data-lines': rows.length, 'data-axes': keys.join(',') }, box);
    const axes = keys.map((k, i) => pcAxis(k, cols.get(k), rows, left + i * gap, top, bottom));
    const colorKey = opts.color && cols.has(opts.color) ? opts.color : keys[keys.length - 1];
    const color = colorBy(rows, cols.get(colorKey), colorKey);
    const brushes = Object.assign({}, opts.brushes || {});

    const lines = s('g', { class: 'pv-lines' }, svg);
    const paths = rows.map((r) => {
      const d = axes.map((ax, i) => (i ? 'L' : 'M') + ax.x + ' ' + ax.pos(val(r, ax.key))).join(' ');
      const p = s('path', { d, class: 'pv-line', stroke: color.fn(r), 'data-key': rowKey(r) }, lines);
      if (r.status && r.status !== 'ok') p.setAttribute('stroke-dasharray', '4 3');
      tooltip(p, runLabel(r, opts));
      return p;
    });
    for (const ax of axes) drawPcAxis(svg, ax);
    const brushLayer = s('g', { class: 'pv-brushes' }, svg);

    // restyle dims the unselected runs and redraws the brushes.
    const restyle = () => {
      clear(brushLayer);
      let n = 0;
      rows.forEach((r, i) => {
        const on = brushSelects(axes, brushes, r);
        paths[i].classList.toggle('dim', !on);
        if (on) n++;
      });
      svg.setAttribute('data-selected', n);
      for (const ax of axes) {
        const px = brushes[ax.key] && brushPixels(ax, brushes[ax.key]);
        if (px) s('rect', { class: 'pv-brush', x: ax.x - 8, width: 16, y: px[0], height: px[1] - px[0] }, brushLayer);
      }
    };
    // notify reports the selection and the brushes to the page.
    const notify = () => {
      const sel = rows.filter((r) => brushSelects(axes, brushes, r));
      if (opts.onBrush) opts.onBrush(Object.assign({}, brushes));
      if (opts.onSelect) opts.onSelect(Object.keys(brushes).length ? sel.map(rowKey) : [], Object.keys(brushes).length ? sel : []);
    };
    for (const ax of axes) {
      const area = s('rect', { class: 'pv-brush-area', 'data-key': ax.key, x: ax.x - 12, width: 24,
        y: ax.top - 6, height: ax.naY - ax.top + 14 }, svg);
      area.addEventListener('mousedown', (ev) => {
        ev.preventDefault();
        const y0 = svgY(svg, ev);
        let y1 = y0;
        const live = s('rect', { class: 'pv-brush', x: ax.x - 8, width: 16, y: y0, height: 0 }, svg);
        const move = (e) => {
          y1 = svgY(svg, e);
          live.setAttribute('y', Math.min(y0, y1));
          live.setAttribute('height', Math.abs(y1 - y0));
        };
        const up = (e) => {
          document.removeEventListener('mousemove', move);
          document.removeEventListener('mouseup', up);
          y1 = svgY(svg, e);
          svg.removeChild(live);
          if (Math.abs(y1 - y0) < 3) delete brushes[ax.key];
          else brushes[ax.key] = brushFromPixels(ax, rows, y0, y1);
          restyle();
          notify();
        };
        document.addEventListener('mousemove', move);
        document.addEventListener('mouseup', up);
      });
    }
    restyle();
    legend(box, 'colour: ' + labelOf(cols.get(colorKey), colorKey), color.legend);
    const hidden = all.length - rows.length;
    if (hidden) h('p', { class: 'pv-note' }, hidden + ' run(s) with no value on these axes are not drawn.', box);
    return svg;
  }

  // ---- Pareto ------------------------------------------------------------------

  // paretoPoints are the points to draw: one per ok run with finite x and
  // y, or with opts.group one per configuration (sweep and group) at the
  // mean over its seeds. Each point keeps its runs' keys.
  function paretoPoints(rows, x, y, group) {
    const ok = rows.filter((r) => r.status === 'ok' &&
      Number.isFinite(num(val(r, x))) && Number.isFinite(num(val(r, y))));
    if (!group) return ok.map((r) => ({ x: num(val(r, x)), y: num(val(r, y)), rows: [r] }));
    const groups = new Map();
    for (const r of ok) {
      const k = r.sweep + '\u0000' + (r.group !== undefined ? r.group : r.id);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(r);
    }
    return [...groups.values()].map((rs) => ({
      x: mean(rs.map((r) => num(val(r, x)))),
      y: mean(rs.map((r) => num(val(r, y)))),
      rows: rs,
    }));
  }

  // paretoFront marks the points no other point dominates: q dominates p
  // when q is at least as good in both columns (by each column's
  // direction, "max" or "min") and differs in one. Returns false where a
  // direction is unknown (no front can be drawn).
  function paretoFront(points, dx, dy) {
    const ok = (d) => d === 'max' || d === 'min';
    if (!ok(dx) || !ok(dy)) return false;
    const better = (a, b, d) => (d === 'max' ? a >= b : a <= b);
    for (const p of points) {
      p.front = !points.some((q) => q !== p && better(q.x, p.x, dx) && better(q.y, p.y, dy) &&
        (q.x !== p.x || q.y !== p.y));
    }
    return true;
  }

  // pareto draws a scatter of two numeric columns (opts.x, opts.y; the
  // reader changes them with the pickers it builds) with the Pareto front
  // by the columns' directions outlined and joined. opts.group: one point
  // per configuration (mean over seeds). Clicking a point sends its runs
  // to opts.onSelect(keys, rows); a picker change re-renders and calls
  // opts.onChange(opts) so the page can remember the choice.
  function pareto(el, runs, opts) {
    opts = Object.assign({}, opts || {});
    const box = root(el, 'pareto');
    const rows = rowsOf(runs);
    if (!rows.length) return message(box, 'No runs to show yet: the selected sweeps have no trials.');
    const cols = columnsOf(runs);
    const numCols = (runs.columns || []).filter(isNumeric);
    if (numCols.length < 2) return message(box, 'A Pareto view needs two numeric columns; these runs have ' + numCols.length + '.');
    const metrics = numCols.filter((c) => c.kind === 'metric' && c.direction);
    const x = cols.has(opts.x) && isNumeric(cols.get(opts.x)) ? opts.x
      : (cols.has('trainable_params') ? 'trainable_params' : (metrics[0] || numCols[0]).key);
    const y = cols.has(opts.y) && isNumeric(cols.get(opts.y)) ? opts.y
      : ((metrics.find((c) => c.key !== x) || numCols.find((c) => c.key !== x)).key);
    opts.x = x; opts.y = y;

    // Controls: x and y pickers, and the mean-over-seeds switch.
    const ctl = h('div', { class: 'pv-controls' }, null, box);
    const redraw = (change) => {
      const next = Object.assign({}, opts, change);
      if (opts.onChange) opts.onChange(next);
      pareto(el, runs, next);
    };
    const choices = numCols.map((c) => [c.key, labelOf(c, c.key)]);
    select(ctl, 'x', choices, x, (v) => redraw({ x: v })).setAttribute('data-role', 'x');
    select(ctl, 'y', choices, y, (v) => redraw({ y: v })).setAttribute('data-role', 'y');
    const gl = h('label', {}, null, ctl);
    const cb = h('input', { type: 'checkbox', 'data-role': 'group' }, null, gl);
    cb.checked = !!opts.group;
    cb.addEventListener('change', () => redraw({ group: cb.checked }));
    h('span', {}, 'mean over seeds', gl);

    const cx = cols.get(x), cy = cols.get(y);
    const pts = paretoPoints(rows, x, y, !!opts.group);
    if (!pts.length) return message(box, 'No finished run has finite values of both ' + labelOf(cx, x) + ' and ' + labelOf(cy, y) + '.');
    const hasFront = paretoFront(pts, cx.direction, cy.direction);

    const W = 640, H = 420, L = 70, R = 20, T = 20, B = 50;
    const sx = numScale(pts.map((p) => p.x), L, W - R);
    const sy = numScale(pts.map((p) => p.y), H - B, T);
    const frontKeys = pts.filter((p) => p.front).map((p) => p.rows.map(rowKey).join(' ')).sort();
    const svg = s('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, class: 'pv-pareto-svg',
      'data-x': x, 'data-y': y, 'data-count': pts.length, 'data-front': frontKeys.join('|'),
      'data-xscale': sx.log ? 'log' : 'linear', 'data-yscale': sy.log ? 'log' : 'linear' }, box);
    s('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: '#888' }, svg);
    s('line', { x1: L, x2: L, y1: T, y2: H - B, stroke: '#888' }, svg);
    drawAxis(svg, sx, false, H - B);
    drawAxis(svg, sy, true, L);
    s('text', { x: (L + W - R) / 2, y: H - 12, 'text-anchor': 'middle' }, svg, axisTitle(cx, x, sx.log));
    s('text', { x: 14, y: (T + H - B) / 2, 'text-anchor': 'middle', transform: 'rotate(-90 14 ' + (T + H - B) / 2 + ')' }, svg, axisTitle(cy, y, sy.log));

    if (hasFront) {
      const f = pts.filter((p) => p.front).sort((a, b) => a.x - b.x || a.y - b.y);
      const d = f.map((p, i) => (i ? 'L' : 'M') + sx(p.x) + ' ' + sy(p.y)).join(' ');
      if (f.length > 1) s('path', { d, fill: 'none', stroke: '#000', 'stroke-width': 1, 'stroke-dasharray': '5 3', class: 'pv-front-line' }, svg);
    }
    const color = colorBy(rows, cols.get('method'), cols.has('method') ? 'method' : null);
    const dots = s('g', { class: 'pv-points' }, svg);
    for (const p of pts) {
      const keys = p.rows.map(rowKey);
      const c = s('circle', { cx: sx(p.x), cy: sy(p.y), r: p.front ? 5.5 : 4, fill: color.fn(p.rows[0]),
        class: 'pv-pt' + (p.front ? ' front' : ''), 'data-keys': keys.join(' ') }, dots);
      tooltip(c, p.rows.map((r) => runLabel(r, opts)).join('\n') + '\n' + labelOf(cx, x) + ' = ' + fmt(p.x) +
        ', ' + labelOf(cy, y) + ' = ' + fmt(p.y) + (p.rows.length > 1 ? ' (mean of ' + p.rows.length + ')' : ''));
      c.addEventListener('click', () => {
        for (const o of dots.querySelectorAll('.selected')) o.classList.remove('selected');
        c.classList.add('selected');
        if (opts.onSelect) opts.onSelect(keys, p.rows);
      });
    }
    legend(box, 'method', color.legend);
    const left = rows.length - pts.reduce((n, p) => n + p.rows.length, 0);
    const notes = [];
    if (!hasFront) notes.push('No front: the direction of ' + (cx.direction ? labelOf(cy, y) : labelOf(cx, x)) + ' is unknown.');
    if (left) notes.push(left + ' run(s) not drawn: not finished ok, or without finite values of both columns.');
    for (const n of notes) h('p', { class: 'pv-note' }, n, box);
    return svg;
  }

  // axisTitle is a column's label with its direction and scale.
  function axisTitle(col, key, log) {
    const dir = col && col.direction === 'max' ? ' (higher is better)' : col && col.direction === 'min' ? ' (lower is better)' : '';
    return labelOf(col, key) + dir + (log ? ', log scale' : '');
  }

  // ---- spectra -------------------------------------------------------------------

  // defaultEps picks ε = 0.5 (the paper's default) when offered, else the
  // middle one.
  function defaultEps(eps) {
    const i = eps.indexOf(0.5);
    return i >= 0 ? i : Math.floor(eps.length / 2);
  }

  // spectra draws one panel per layer of a trial (the /api/spectra JSON):
  // singular values of the base and tuned weight by index on a log axis,
  // the tuned weight's intruder directions at the chosen ε (opts.eps, an
  // index into epsilons; a picker changes it and calls opts.onChange)
  // marked in red, and below, each top direction's max |cos| to the base
  // directions with the ε line.
  function spectra(el, data, opts) {
    opts = Object.assign({}, opts || {});
    const box = root(el, 'spectra');
    const layers = (data && Array.isArray(data.layers)) ? data.layers : [];
    if (!layers.length) return message(box, 'No spectra for this trial: spectra are recorded for finished trials of methods that merge into the weights.');
    const eps = (data.epsilons || []).map(Number);
    const ei = Number.isInteger(opts.eps) && opts.eps >= 0 && opts.eps < eps.length ? opts.eps : defaultEps(eps);
    opts.eps = ei;
    if (eps.length) {
      const ctl = h('div', { class: 'pv-controls' }, null, box);
      select(ctl, 'intruder threshold ε', eps.map((e, i) => [i, String(e)]), ei, (v) => {
        const next = Object.assign({}, opts, { eps: Number(v) });
        if (opts.onChange) opts.onChange(next);
        spectra(el, data, next);
      }).setAttribute('data-role', 'eps');
    }
    const grid = h('div', { class: 'pv-spectra-grid' }, null, box);
    let total = 0;
    for (const layer of layers) total += spectrumPanel(grid, layer, ei, eps[ei]);
    box.setAttribute('data-intruders', total);
    h('p', { class: 'pv-note' }, total + ' intruder direction(s) over ' + layers.length + ' layer(s) at ε = ' + fmt(eps[ei]) + '; grey: base, blue: tuned.', box);
    return box;
  }

  // spectrumPanel draws one layer and returns its intruder count.
  function spectrumPanel(parent, layer, ei, epsilon) {
    const base = (layer.sigma_base || []).map(num), tuned = (layer.sigma_tuned || []).map(num);
    const cos = (layer.max_cos || []).map(num);
    const intr = (layer.intruder || []).map((flags) => !!(flags && flags[ei]));
    const count = intr.filter(Boolean).length;
    const W = 330, H = 250, L = 52, R = 10, T = 22, mid = 170, B = 230;
    const n = Math.max(base.length, tuned.length, cos.length, 1);
    const svg = s('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, class: 'pv-spectrum',
      'data-layer': String(layer.layer), 'data-intruders': count }, parent);
    const title = String(layer.layer);
    s('text', { x: L, y: 14, 'font-weight': 'bold' }, svg, (title.length > 34 ? title.slice(0, 33) + '…' : title) + ' · ' + count + ' intruder' + (count === 1 ? '' : 's'));
    const xs = (i) => L + (n > 1 ? i / (n - 1) : 0.5) * (W - L - R);
    const pos = base.concat(tuned).filter((v) => Number.isFinite(v) && v > 0);
    if (!pos.length) {
      s('text', { x: L, y: 60 }, svg, 'no positive singular values');
    } else {
      // Log axis over the positive values (a zero singular value has no place on it).
      const lo = Math.log10(Math.min(...pos)), hi = Math.log10(Math.max(...pos));
      const pad = (hi - lo) * 0.05 || 0.5;
      const ys = (v) => mid - 8 - (Math.log10(v) - (lo - pad)) / (hi - lo + 2 * pad) * (mid - 8 - T);
      s('line', { x1: L, x2: L, y1: T, y2: mid - 8, stroke: '#888' }, svg);
      for (let e = Math.ceil(lo - pad); e <= Math.floor(hi + pad); e++) {
        s('text', { x: L - 4, y: ys(Math.pow(10, e)) + 3, 'text-anchor': 'end' }, svg, '1e' + e);
      }
      s('path', { d: logPath(base, xs, ys), fill: 'none', stroke: '#999', 'stroke-width': 1.5, class: 'pv-sigma-base' }, svg);
      s('path', { d: logPath(tuned, xs, ys), fill: 'none', stroke: '#4e79a7', 'stroke-width': 1.5, class: 'pv-sigma-tuned' }, svg);
      intr.forEach((on, i) => {
        if (!on) return;
        const v = tuned[i];
        const y = Number.isFinite(v) && v > 0 ? ys(v) : T;
        const c = s('circle', { cx: xs(i), cy: y, r: 4, fill: '#e15759', class: 'pv-intruder', 'data-index': i }, svg);
        tooltip(c, 'direction ' + (i + 1) + ': σ = ' + fmt(v) + ', max |cos| = ' + fmt(cos[i]) + ' < ε');
      });
    }
    // max |cos| strip: bars in [0, 1] with the ε line.
    const yc = (v) => B - v * (B - mid);
    s('line', { x1: L, x2: L, y1: mid, y2: B, stroke: '#888' }, svg);
    s('text', { x: L - 4, y: mid + 4, 'text-anchor': 'end' }, svg, '1');
    s('text', { x: L - 4, y: B + 3, 'text-anchor': 'end' }, svg, '0');
    s('text', { x: 2, y: (mid + B) / 2 + 3 }, svg, '|cos|');
    const bw = Math.max(2, (W - L - R) / n * 0.6);
    cos.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      s('rect', { x: xs(i) - bw / 2, y: yc(v), width: bw, height: B - yc(v), fill: intr[i] ? '#e15759' : '#9ab' }, svg);
    });
    if (Number.isFinite(epsilon)) {
      s('line', { x1: L, x2: W - R, y1: yc(epsilon), y2: yc(epsilon), stroke: '#e15759', 'stroke-dasharray': '4 3' }, svg);
    }
    s('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle' }, svg, 'singular direction (by σ)');
    return count;
  }

  // logPath joins the positive finite values of a series, breaking the
  // line where a value cannot go on a log axis.
  function logPath(vs, xs, ys) {
    let d = '', pen = false;
    vs.forEach((v, i) => {
      if (!(Number.isFinite(v) && v > 0)) { pen = false; return; }
      d += (pen ? 'L' : 'M') + xs(i) + ' ' + ys(v) + ' ';
      pen = true;
    });
    return d.trim();
  }

  // ---- comparing two sweeps ---------------------------------------------------------

  // T975 is Student's t 0.975 quantile by degrees of freedom (the two-sided
  // 95% interval), from analysis.TQuantile; between entries it is
  // interpolated linearly in 1/df, towards 1.959964 at infinity.
  const T975 = [[1, 12.706205], [2, 4.302653], [3, 3.182446], [4, 2.776445], [5, 2.570582],
    [6, 2.446912], [7, 2.364624], [8, 2.306004], [9, 2.262157], [10, 2.228139],
    [11, 2.200985], [12, 2.178813], [13, 2.160369], [14, 2.144787], [15, 2.131450],
    [16, 2.119905], [17, 2.109816], [18, 2.100922], [19, 2.093024], [20, 2.085963],
    [21, 2.079614], [22, 2.073873], [23, 2.068658], [24, 2.063899], [25, 2.059539],
    [26, 2.055529], [27, 2.051831], [28, 2.048407], [29, 2.045230], [30, 2.042272],
    [40, 2.021075], [50, 2.008559], [60, 2.000298], [80, 1.990063], [100, 1.983972],
    [120, 1.979930], [Infinity, 1.959964]];

  // t975 is the 0.975 quantile of Student's t with df degrees of freedom
  // (NaN for df < 1).
  function t975(df) {
    if (!(df >= 1)) return NaN;
    for (let i = 0; i < T975.length; i++) {
      const [d, t] = T975[i];
      if (df === d) return t;
      if (df < d) {
        const [d0, t0] = T975[i - 1];
        const u0 = 1 / d0, u1 = 1 / d, u = 1 / df;
        return t0 + (t - t0) * (u - u0) / (u1 - u0);
      }
    }
    return T975[T975.length - 1][1];
  }

  // mean of the finite values.
  function mean(vs) {
    const f = vs.filter(Number.isFinite);
    return f.length ? f.reduce((a, b) => a + b, 0) / f.length : NaN;
  }

  // stats is the mean and the 95% t-interval's half-width of the finite
  // values (n − 1 degrees of freedom; null half-width for n = 1).
  function stats(vs) {
    const f = vs.filter(Number.isFinite);
    const n = f.length;
    if (!n) return { n: 0, mean: null, half: null };
    const m = mean(f);
    if (n === 1) return { n, mean: m, half: null };
    const sd = Math.sqrt(f.reduce((a, v) => a + (v - m) * (v - m), 0) / (n - 1));
    return { n, mean: m, half: t975(n - 1) * sd / Math.sqrt(n) };
  }

  // configKey is a canonical text of a row's values over keys (missing as
  // null), for grouping and pairing.
  function configKey(r, keys) {
    return JSON.stringify(keys.map((k) => { const v = val(r, k); return isMissing(v) ? null : v; }));
  }

  // comparePairs pairs sweep a's and sweep b's configurations. The
  // configuration keys are the param columns but the seed; a key that
  // has a value in only one sweep is listed (onlyA, onlyB) and cannot
  // pair. Runs are grouped per sweep by all of the sweep's keys, and a
  // group of a pairs with each group of b that agrees on every key both
  // sweeps have. Each side gets the metric's mean and 95% t-interval over
  // its seeds (the runs finished ok with a finite value, as in the Pareto
  // view); diff is b's mean minus a's.
  function comparePairs(runs, metric, a, b) {
    const rows = rowsOf(runs);
    const params = (runs.columns || []).filter((c) => c.kind === 'param' && c.key !== 'seed' && c.key !== 'sweep').map((c) => c.key);
    const rowsA = rows.filter((r) => r.sweep === a), rowsB = rows.filter((r) => r.sweep === b);
    const has = (rs, k) => rs.some((r) => !isMissing(val(r, k)));
    const common = params.filter((k) => has(rowsA, k) && has(rowsB, k));
    const onlyA = params.filter((k) => has(rowsA, k) && !has(rowsB, k));
    const onlyB = params.filter((k) => !has(rowsA, k) && has(rowsB, k));
    const groupsA = groupRows(rowsA, common, onlyA, metric), groupsB = groupRows(rowsB, common, onlyB, metric);
    const pairs = [], pairedB = new Set();
    for (const ga of groupsA) {
      const match = groupsB.filter((gb) => gb.common === ga.common);
      for (const gb of match) {
        pairedB.add(gb);
        const diff = ga.stats.mean !== null && gb.stats.mean !== null ? gb.stats.mean - ga.stats.mean : null;
        pairs.push({ key: ga.common, values: ga.values, extraA: ga.extra, extraB: gb.extra, a: ga, b: gb, diff });
      }
    }
    const unpairedA = groupsA.filter((ga) => !groupsB.some((gb) => gb.common === ga.common));
    const unpairedB = groupsB.filter((gb) => !pairedB.has(gb));
    const varying = common.filter((k) => new Set(groupsA.concat(groupsB).map((g) => JSON.stringify(g.values[k]))).size > 1);
    return { common, onlyA, onlyB, varying, pairs, unpairedA, unpairedB };
  }

  // groupRows groups one sweep's runs by its configuration keys (common
  // and its own), with the metric's statistics over the seeds.
  function groupRows(rows, common, own, metric) {
    const m = new Map();
    for (const r of rows) {
      const k = configKey(r, common) + configKey(r, own);
      if (!m.has(k)) {
        const values = {}, extra = {};
        for (const c of common) values[c] = isMissing(val(r, c)) ? null : val(r, c);
        for (const c of own) extra[c] = isMissing(val(r, c)) ? null : val(r, c);
        m.set(k, { common: configKey(r, common), values, extra, rows: [] });
      }
      m.get(k).rows.push(r);
    }
    const out = [...m.values()];
    for (const g of out) {
      g.stats = stats(g.rows.filter((r) => r.status === 'ok').map((r) => num(val(r, metric))));
      g.failed = g.rows.filter((r) => r.status !== 'ok' && r.status !== 'running').length;
    }
    return out.sort((x, y) => (x.common < y.common ? -1 : x.common > y.common ? 1 : 0));
  }

  // describe writes a configuration as "k=v" over the keys that vary (all
  // of them in the tooltip).
  function describe(values, keys) {
    const parts = keys.map((k) => k + '=' + (values[k] === null ? '—' : values[k]));
    return parts.length ? parts.join(' ') : '(one configuration)';
  }

  // cell writes "mean ± half (n)" for one side of a pair.
  function statText(st) {
    if (!st.n) return 'no value';
    return fmt(st.mean) + (st.half !== null ? ' ± ' + fmt(st.half) : '') + ' (n=' + st.n + ')';
  }

  // compare draws the comparison of two sweeps (opts.a and opts.b, sweep
  // indices; opts.metric, a numeric metric): a table with one row per
  // paired configuration — the metric's mean ± 95% t-interval over seeds
  // in each sweep and the difference b − a, coloured by the metric's
  // direction — then the keys and the configurations only one sweep has.
  // Pickers for both sweeps and the metric re-render and call
  // opts.onChange(opts). opts.sweepNames names the sweeps.
  function compare(el, runs, opts) {
    opts = Object.assign({}, opts || {});
    const box = root(el, 'compare');
    const rows = rowsOf(runs);
    if (!rows.length) return message(box, 'No runs to compare yet: the selected sweeps have no trials.');
    const sweeps = [...new Set(rows.map((r) => r.sweep))].sort((p, q) => p - q);
    if (sweeps.length < 2) return message(box, 'Comparing needs two sweeps: serve two sweep folders (bench serve A B) and select both.');
    const cols = columnsOf(runs);
    const metrics = (runs.columns || []).filter((c) => c.kind === 'metric' && isNumeric(c));
    if (!metrics.length) return message(box, 'These runs have no numeric metric to compare.');
    const a = sweeps.includes(opts.a) ? opts.a : sweeps[0];
    const b = sweeps.includes(opts.b) && opts.b !== a ? opts.b : sweeps.find((x) => x !== a);
    const metric = cols.has(opts.metric) && metrics.includes(cols.get(opts.metric)) ? opts.metric
      : (metrics.find((c) => c.direction) || metrics[0]).key;
    Object.assign(opts, { a, b, metric });

    const ctl = h('div', { class: 'pv-controls' }, null, box);
    const redraw = (change) => {
      const next = Object.assign({}, opts, change);
      if (opts.onChange) opts.onChange(next);
      compare(el, runs, next);
    };
    const sweepChoices = sweeps.map((i) => [i, sweepName(opts, i)]);
    select(ctl, 'A', sweepChoices, a, (v) => redraw({ a: Number(v) })).setAttribute('data-role', 'a');
    select(ctl, 'B', sweepChoices, b, (v) => redraw({ b: Number(v) })).setAttribute('data-role', 'b');
    select(ctl, 'metric', metrics.map((c) => [c.key, labelOf(c, c.key)]), metric, (v) => redraw({ metric: v })).setAttribute('data-role', 'metric');

    const res = comparePairs(runs, metric, a, b);
    const col = cols.get(metric);
    const nameA = sweepName(opts, a), nameB = sweepName(opts, b);
    const table = h('table', { class: 'pv-compare-table', 'data-pairs': res.pairs.length, 'data-metric': metric }, null, box);
    const head = h('tr', {}, null, h('thead', {}, null, table));
    h('th', { class: 'pv-label' }, 'configuration', head);
    h('th', {}, 'A: ' + nameA, head);
    h('th', {}, 'B: ' + nameB, head);
    h('th', {}, 'B − A' + (col.direction ? ' (' + col.direction + ' is better)' : ''), head);
    const body = h('tbody', {}, null, table);
    if (!res.pairs.length) {
      h('td', { colspan: 4, class: 'pv-label' }, 'No configuration is in both sweeps.', h('tr', {}, null, body));
    }
    for (const p of res.pairs) {
      const tr = h('tr', { class: 'pv-pair', 'data-key': p.key, 'data-diff': p.diff === null ? '' : p.diff,
        'data-a': statAttr(p.a.stats), 'data-b': statAttr(p.b.stats) }, null, body);
      const extra = Object.keys(p.extraA).map((k) => 'A ' + k + '=' + p.extraA[k])
        .concat(Object.keys(p.extraB).map((k) => 'B ' + k + '=' + p.extraB[k]));
      const td = h('td', { class: 'pv-label', title: describe(p.values, res.common) + (extra.length ? ' · ' + extra.join(' ') : '') },
        describe(p.values, res.varying), tr);
      if (p.a.failed || p.b.failed) h('span', { class: 'pv-note' }, ' (' + (p.a.failed + p.b.failed) + ' failed)', td);
      h('td', {}, statText(p.a.stats), tr);
      h('td', {}, statText(p.b.stats), tr);
      const d = h('td', { class: diffClass(p.diff, col.direction) }, p.diff === null ? '—' : (p.diff > 0 ? '+' : '') + fmt(p.diff), tr);
      if (p.diff !== null) d.setAttribute('title', 'mean of B minus mean of A');
    }
    onlyIn(box, res, nameA, nameB);
    return table;
  }

  // statAttr is a side's statistics as "mean half n" for tests and tools.
  function statAttr(st) { return [st.mean, st.half, st.n].map((v) => (v === null ? '' : v)).join(' '); }

  // diffClass colours a difference by whether B is better than A.
  function diffClass(d, dir) {
    if (d === null || d === 0 || !dir) return '';
    return (dir === 'max') === (d > 0) ? 'better' : 'worse';
  }

  // onlyIn lists what only one sweep has: configuration keys, then the
  // configurations without a partner.
  function onlyIn(box, res, nameA, nameB) {
    const lists = [
      ['keys only in A (' + nameA + ')', res.onlyA, 'only-a-keys'],
      ['keys only in B (' + nameB + ')', res.onlyB, 'only-b-keys'],
      ['configurations only in A', res.unpairedA.map((g) => describe(g.values, res.varying)), 'only-a-configs'],
      ['configurations only in B', res.unpairedB.map((g) => describe(g.values, res.varying)), 'only-b-configs'],
    ];
    for (const [title, items, role] of lists) {
      if (!items.length) continue;
      const p = h('p', { class: 'pv-note', 'data-role': role, 'data-items': JSON.stringify(items) }, title + ': ', box);
      h('span', {}, items.join('; '), p);
    }
  }

  window.peftViews = { parcoords, pareto, spectra, compare, rowKey, _internal: { t975, stats, paretoFront, comparePairs, num } };
})();
