package plots

import (
	"fmt"
	"html/template"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"

	"peftbench/configs"
	"peftbench/results"
)

// The report's Pareto view: the reader picks any two numeric columns of
// the registry (configs.Numeric, the intruder counts, the other extra
// metrics) and the page draws one point per configuration (mean over
// seeds), coloured and shaped by method as in the figures, with the Pareto
// front by each column's direction. A filter box narrows the results
// tables and the points to the configurations whose method, task or
// settings contain every word typed. All of it is inline: the data as
// JSON, the drawing as JavaScript writing SVG, no network.
//
// The page's state is mirrored in the URL's fragment
// (#task=teacher-shift&x=trainable_params&y=target_metric&filter=lora),
// and a fragment given on load is applied through the selectors' and the
// filter box's own change events, so a view can be linked, and the
// browser test drives the page through it.

// paretoView is what the template needs: the selectors' options and the
// data.
type paretoView struct {
	Columns []paretoColumn
	Tasks   []string
	X, Y    string // the axes shown first
	Data    paretoData
}

type paretoData struct {
	Columns []paretoColumn `json:"columns"`
	Tasks   []paretoTask   `json:"tasks"`
}

type paretoColumn struct {
	Name   string `json:"name"`
	Label  string `json:"label"`
	Higher bool   `json:"higher"`
	Known  bool   `json:"known"` // direction known: a front can be drawn
}

type paretoTask struct {
	Name   string        `json:"name"`
	Points []paretoPoint `json:"points"`
}

// paretoPoint is one configuration: its means over seeds by column name
// (null where no seed reports the column).
type paretoPoint struct {
	Label  string              `json:"label"`
	Method string              `json:"method"`
	Color  string              `json:"color"`
	Shape  string              `json:"shape"` // circle, square, triangle or diamond
	Seeds  int                 `json:"seeds"`
	Filter string              `json:"filter"`
	V      map[string]*float64 `json:"v"`
}

// paretoColumns lists the numeric columns the view offers for the trials:
// the registry's, the intruder counts per ε, then any other extra metric
// (direction unknown), each only when some ok trial reports it.
func paretoColumns(d *Data) []configs.Column {
	cands := configs.Numeric()
	var eps []float64
	var extra []string
	for i := range d.Trials {
		t := &d.Trials[i]
		if t.Status != results.StatusOK {
			continue
		}
		for _, c := range t.Intruders {
			if !slices.Contains(eps, c.Epsilon) {
				eps = append(eps, c.Epsilon)
			}
		}
		for k := range t.Extra {
			if !slices.Contains(extra, k) {
				extra = append(extra, k)
			}
		}
	}
	slices.Sort(eps)
	for _, e := range eps {
		cands = append(cands, configs.Intruders(e))
	}
	sort.Strings(extra)
	for _, k := range extra {
		if c, _ := configs.Lookup(k); !slices.ContainsFunc(cands, func(o configs.Column) bool { return o.Name == c.Name }) {
			cands = append(cands, c)
		}
	}
	var out []configs.Column
	for _, c := range cands {
		if slices.ContainsFunc(d.Trials, func(t results.TrialRow) bool {
			v := c.Value(&t)
			return t.Status == results.StatusOK && !math.IsNaN(v) && !math.IsInf(v, 0)
		}) {
			out = append(out, c)
		}
	}
	return out
}

// paretoOf builds the view of d; nil when fewer than two columns have data.
func paretoOf(d *Data) *paretoView {
	cols := paretoColumns(d)
	if len(cols) < 2 {
		return nil
	}
	v := &paretoView{X: cols[0].Name, Y: cols[1].Name}
	for _, c := range cols {
		pc := paretoColumn{Name: c.Name, Label: c.Label, Higher: c.Higher, Known: c.Known}
		v.Columns = append(v.Columns, pc)
		v.Data.Columns = append(v.Data.Columns, pc)
	}
	has := func(name string) bool {
		return slices.ContainsFunc(cols, func(c configs.Column) bool { return c.Name == name })
	}
	if has(TrainableParams.Name) && has(TargetMetric.Name) {
		v.X, v.Y = TrainableParams.Name, TargetMetric.Name
	}
	for _, task := range d.Tasks() {
		pt := paretoTask{Name: task}
		for _, c := range d.Cells(task) {
			s := MethodStyle(c.Method)
			p := paretoPoint{Label: c.Label(), Method: c.Method, Seeds: len(c.Trials), Filter: filterText(c),
				Color: fmt.Sprintf("#%02x%02x%02x", s.Color.R, s.Color.G, s.Color.B), Shape: shapeOf(s),
				V: map[string]*float64{}}
			for _, col := range cols {
				p.V[col.Name] = seedMean(c, col)
			}
			pt.Points = append(pt.Points, p)
		}
		v.Tasks = append(v.Tasks, task)
		v.Data.Tasks = append(v.Data.Tasks, pt)
	}
	return v
}

// seedMean is the mean of col over the configuration's seeds that report
// it; nil when none does.
func seedMean(c *Cell, col configs.Column) *float64 {
	sum, n := 0.0, 0
	for _, t := range c.Trials {
		if x := col.Value(t); !math.IsNaN(x) && !math.IsInf(x, 0) {
			sum += x
			n++
		}
	}
	if n == 0 {
		return nil
	}
	m := sum / float64(n)
	return &m
}

// filterText is what the filter box matches a configuration against, in
// the Pareto view and the results tables alike: task, method, rank and
// every setting, lower case.
func filterText(c *Cell) string {
	parts := []string{c.Task, c.Label()}
	if c.Ranked() {
		parts = append(parts, fmt.Sprintf("rank=%d", c.Rank))
	}
	parts = append(parts, c.Pairs...)
	return strings.ToLower(strings.Join(parts, " "))
}

// shapeOf maps a method's marker to the SVG shapes the page draws.
func shapeOf(s Style) string {
	switch reflect.TypeOf(s.Glyph).Name() {
	case "SquareGlyph", "BoxGlyph":
		return "square"
	case "TriangleGlyph", "PyramidGlyph":
		return "triangle"
	case "CrossGlyph", "PlusGlyph":
		return "diamond"
	}
	return "circle"
}

func init() {
	template.Must(reportTemplate.New("pareto").Parse(paretoHTML))
}

// paretoHTML is the view: the filter box, the selectors, the SVG the
// script draws into, and the script. The script marks its state on the
// SVG (data-x, data-y, data-xscale, data-xdomain, data-area, data-count)
// for tests and for anyone reading the DOM.
const paretoHTML = `<h2 id="explore">Pareto view</h2>
<p class="controls"><label>Filter <input id="filter" type="search" size="30" placeholder="method, task or setting (lora r=8 lr=…)"></label> <span id="filter-count"></span></p>
{{if .}}<p class="controls">{{if gt (len .Tasks) 1}}<label>task <select id="pareto-task">{{range .Tasks}}<option value="{{.}}">{{.}}</option>{{end}}</select></label> {{else}}<select id="pareto-task" hidden>{{range .Tasks}}<option value="{{.}}">{{.}}</option>{{end}}</select>{{end}}
<label>x <select id="pareto-x">{{range .Columns}}<option value="{{.Name}}"{{if eq .Name $.X}} selected{{end}}>{{.Label}}</option>{{end}}</select></label>
<label>y <select id="pareto-y">{{range .Columns}}<option value="{{.Name}}"{{if eq .Name $.Y}} selected{{end}}>{{.Label}}</option>{{end}}</select></label></p>
<svg id="pareto-svg" width="660" height="430" viewBox="0 0 660 430" role="img" aria-label="Pareto view"></svg>
<div id="pareto-legend" class="legend"></div>
<p id="pareto-note" class="note"></p>
<script type="application/json" id="pareto-data">{{.Data}}</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("pareto-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var W = 660, H = 430, L = 72, R = 16, T = 14, B = 52;
  var sx = document.getElementById("pareto-x"), sy = document.getElementById("pareto-y");
  var st = document.getElementById("pareto-task"), filt = document.getElementById("filter");
  var svg = document.getElementById("pareto-svg"), note = document.getElementById("pareto-note");
  var legend = document.getElementById("pareto-legend");
  var cols = {};
  data.columns.forEach(function (c) { cols[c.name] = c; });

  function words() {
    return filt.value.toLowerCase().split(" ").filter(function (w) { return w !== ""; });
  }
  function matches(text, ws) {
    for (var i = 0; i < ws.length; i++) {
      if (text.indexOf(ws[i]) < 0) return false;
    }
    return true;
  }
  function filterTables() {
    var ws = words(), rows = document.querySelectorAll("tr[data-filter]"), shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var ok = matches(rows[i].getAttribute("data-filter"), ws);
      rows[i].style.display = ok ? "" : "none";
      if (ok) shown++;
    }
    document.getElementById("filter-count").textContent = ws.length ? shown + " of " + rows.length + " table rows match" : "";
  }
  function fmt(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return +(v / 1e9).toPrecision(3) + "B";
    if (a >= 1e6) return +(v / 1e6).toPrecision(3) + "M";
    if (a >= 1e4) return +(v / 1e3).toPrecision(3) + "k";
    if (a !== 0 && a < 1e-3) return v.toExponential(1);
    return String(+v.toPrecision(3));
  }
  // scale maps values to pixels over [p0, p1]: log10 when every value is
  // positive and they span two decades or more, else linear; 5% margins.
  function scale(vals, p0, p1) {
    var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
    var log = lo > 0 && hi / lo >= 100;
    var t = log ? function (v) { return Math.log(v) / Math.LN10; } : function (v) { return v; };
    var d0 = t(lo), d1 = t(hi), pad = (d1 - d0) * 0.05;
    if (pad === 0) pad = Math.abs(d0) * 0.05 || 0.5;
    d0 -= pad; d1 += pad;
    var s = function (v) { return p0 + (t(v) - d0) / (d1 - d0) * (p1 - p0); };
    s.log = log; s.d0 = d0; s.d1 = d1; s.ticks = [];
    if (log) {
      for (var e = Math.ceil(d0); e <= Math.floor(d1); e++) s.ticks.push(Math.pow(10, e));
      if (s.ticks.length < 2) {
        s.ticks = [];
        for (var e2 = Math.floor(d0); e2 <= Math.ceil(d1); e2++) {
          [1, 2, 5].forEach(function (m) { var v = m * Math.pow(10, e2); if (t(v) >= d0 && t(v) <= d1) s.ticks.push(v); });
        }
      }
    } else {
      var raw = (d1 - d0) / 5, mag = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10)), step = mag;
      [2, 5, 10].forEach(function (m) { if (raw / step > 1.5) step = m * mag; });
      for (var v = Math.ceil(d0 / step) * step; v <= d1 + 1e-12 * Math.abs(d1); v += step) s.ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return s;
  }
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function shape(p, g) {
    var a = { fill: p.color, stroke: "#222", "stroke-width": "0" };
    if (p.shape === "square") { a.x = -4; a.y = -4; a.width = 8; a.height = 8; return el("rect", a, g); }
    if (p.shape === "triangle") { a.d = "M0,-5L4.5,3.5L-4.5,3.5Z"; return el("path", a, g); }
    if (p.shape === "diamond") { a.d = "M0,-5L5,0L0,5L-5,0Z"; return el("path", a, g); }
    a.r = 4.2; return el("circle", a, g);
  }
  // front returns the points no other point dominates: at least as good
  // in both columns and better in one, by each column's direction.
  function front(pts, cx, cy) {
    function ge(a, b, c) { return c.higher ? a >= b : a <= b; }
    return pts.filter(function (p) {
      return !pts.some(function (q) {
        return q !== p && ge(q.x, p.x, cx) && ge(q.y, p.y, cy) && (q.x !== p.x || q.y !== p.y);
      });
    });
  }
  function draw() {
    var task = data.tasks.filter(function (t) { return t.name === st.value; })[0] || data.tasks[0];
    var cx = cols[sx.value], cy = cols[sy.value], ws = words();
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    legend.textContent = "";
    var pts = [], missing = 0, hidden = 0;
    (task ? task.points : []).forEach(function (p) {
      if (!matches(p.filter, ws)) { hidden++; return; }
      var x = p.v[cx.name], y = p.v[cy.name];
      if (x === null || y === null || x === undefined || y === undefined) { missing++; return; }
      pts.push({ p: p, x: x, y: y });
    });
    svg.setAttribute("data-task", task ? task.name : "");
    svg.setAttribute("data-x", cx.name);
    svg.setAttribute("data-y", cy.name);
    svg.setAttribute("data-count", pts.length);
    svg.setAttribute("data-area", [L, T, W - R, H - B].join(","));
    var msg = [];
    if (hidden) msg.push(hidden + " configurations filtered out");
    if (missing) msg.push(missing + " without both columns");
    if (pts.length === 0) {
      svg.setAttribute("data-front", 0);
      note.textContent = "No configuration to draw" + (msg.length ? " (" + msg.join("; ") + ")." : ".");
      return;
    }
    var fx = scale(pts.map(function (q) { return q.x; }), L, W - R);
    var fy = scale(pts.map(function (q) { return q.y; }), H - B, T);
    svg.setAttribute("data-xscale", fx.log ? "log" : "linear");
    svg.setAttribute("data-yscale", fy.log ? "log" : "linear");
    svg.setAttribute("data-xdomain", fx.d0 + "," + fx.d1);
    svg.setAttribute("data-ydomain", fy.d0 + "," + fy.d1);
    var axes = el("g", { "class": "axes", "font-size": "11", fill: "#333" }, svg);
    el("rect", { x: L, y: T, width: W - R - L, height: H - B - T, fill: "none", stroke: "#bbb" }, axes);
    fx.ticks.forEach(function (v) {
      var x = fx(v);
      el("line", { x1: x, x2: x, y1: T, y2: H - B, stroke: "#eee" }, axes);
      el("text", { x: x, y: H - B + 15, "text-anchor": "middle" }, axes).textContent = fmt(v);
    });
    fy.ticks.forEach(function (v) {
      var y = fy(v);
      el("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: "#eee" }, axes);
      el("text", { x: L - 5, y: y + 4, "text-anchor": "end" }, axes).textContent = fmt(v);
    });
    function axisLabel(c, s) {
      var dir = c.known ? (c.higher ? " (↑ better)" : " (↓ better)") : "";
      return c.label + (s.log ? ", log scale" : "") + dir;
    }
    el("text", { x: (L + W - R) / 2, y: H - 12, "text-anchor": "middle" }, axes).textContent = axisLabel(cx, fx);
    el("text", { x: 14, y: (T + H - B) / 2, "text-anchor": "middle", transform: "rotate(-90 14 " + (T + H - B) / 2 + ")" }, axes).textContent = axisLabel(cy, fy);
    var fr = (cx.known && cy.known && cx.name !== cy.name) ? front(pts, cx, cy) : [];
    fr.sort(function (a, b) { return a.x - b.x; });
    if (fr.length > 1) {
      el("polyline", { "class": "front", fill: "none", stroke: "#777", "stroke-dasharray": "4 3",
        points: fr.map(function (q) { return fx(q.x) + "," + fy(q.y); }).join(" ") }, svg);
    }
    svg.setAttribute("data-front", fr.length);
    var seen = {};
    pts.forEach(function (q) {
      var onFront = fr.indexOf(q) >= 0;
      var g = el("g", { "class": onFront ? "pt front" : "pt", transform: "translate(" + fx(q.x) + "," + fy(q.y) + ")",
        "data-label": q.p.label, "data-vx": q.x, "data-vy": q.y }, svg);
      el("title", {}, g).textContent = q.p.label + " (" + q.p.seeds + " seeds): " + cx.label + " " + fmt(q.x) + ", " + cy.label + " " + fmt(q.y) + (onFront ? "; on the Pareto front" : "");
      var s = shape(q.p, g);
      if (onFront) s.setAttribute("stroke-width", "1.6");
      if (!seen[q.p.method]) {
        seen[q.p.method] = true;
        var item = document.createElement("span");
        var sw = el("svg", { width: 12, height: 12, viewBox: "-6 -6 12 12" }, item);
        shape(q.p, sw);
        item.appendChild(document.createTextNode(" " + q.p.method));
        legend.appendChild(item);
      }
    });
    if (!cx.known || !cy.known) msg.push("no Pareto front: the direction of " + (cx.known ? cy.label : cx.label) + " is unknown");
    else if (cx.name === cy.name) msg.push("no Pareto front: both axes show one column");
    else msg.push(fr.length + " of " + pts.length + " configurations on the Pareto front (outlined, joined by the dashed line)");
    note.textContent = "One point per configuration, the mean over its seeds; " + msg.join("; ") + ".";
  }
  function sync() {
    var h = "task=" + encodeURIComponent(st.value) + "&x=" + encodeURIComponent(sx.value) + "&y=" + encodeURIComponent(sy.value);
    if (filt.value) h += "&filter=" + encodeURIComponent(filt.value);
    if (window.history && history.replaceState) history.replaceState(null, "", "#" + h);
  }
  // fromHash applies a fragment such as #x=forgetting&y=target_metric&filter=lora
  // through the controls' own events, as a reader's clicks would.
  function fromHash() {
    var h = location.hash.replace("#", "");
    if (!h) return;
    h.split("&").forEach(function (kv) {
      var i = kv.indexOf("="), k = kv.slice(0, i), v = decodeURIComponent(kv.slice(i + 1));
      var c = { task: st, x: sx, y: sy, filter: filt }[k];
      if (!c) return;
      c.value = v;
      c.dispatchEvent(new Event(c === filt ? "input" : "change", { bubbles: true }));
    });
  }
  [sx, sy, st].forEach(function (s) { s.addEventListener("change", function () { draw(); sync(); }); });
  filt.addEventListener("input", function () { filterTables(); draw(); sync(); });
  // The tables come after the view: start once the document is parsed.
  document.addEventListener("DOMContentLoaded", function () { draw(); fromHash(); });
})();
</script>
{{else}}<p>Fewer than two numeric columns have data: no Pareto view.</p>
<script>
document.getElementById("filter").addEventListener("input", function (ev) {
  var ws = ev.target.value.toLowerCase().split(" ").filter(function (w) { return w !== ""; });
  var rows = document.querySelectorAll("tr[data-filter]");
  for (var i = 0; i < rows.length; i++) {
    var t = rows[i].getAttribute("data-filter");
    rows[i].style.display = ws.every(function (w) { return t.indexOf(w) >= 0; }) ? "" : "none";
  }
});
</script>{{end}}
`
