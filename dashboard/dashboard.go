// Package dashboard serves results folders as a live web app: a run table
// over one or more sweeps (every config key and metric a column), per-step
// curves that grow while a sweep writes its folder in another process, and
// tags and notes stored in the folder's annotations sidecar. It only reads
// the folders (but for annotations.json) and holds no state a restart
// loses. `bench serve` runs it. The HTTP API (all JSON; sweep s is the
// s-th folder given to New): GET /api/sweeps, /api/runs?s=…, /api/steps?s=&id=,
// /api/spectra?s=&id=, /api/version, and POST /api/annotate; the page is
// assets/ (embedded in the binary, no CDN, no build step; views.js holds
// the parallel coordinates, Pareto, spectra and sweep-comparison views).
package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"peftbench/results"
)

//go:embed assets
var assets embed.FS

// Server serves sweep folders; sweep i is the i-th folder given to New.
type Server struct {
	folders []*folder
}

// New returns a server of the sweep folders dirs. A folder must exist;
// it may be empty (a sweep about to start) and fill while served.
func New(dirs []string) (*Server, error) {
	if len(dirs) == 0 {
		return nil, errors.New("dashboard: no results folder to serve")
	}
	s := &Server{}
	for i, d := range dirs {
		f := newFolder(i, d)
		if _, err := f.scan(); err != nil {
			return nil, err
		}
		s.folders = append(s.folders, f)
	}
	return s, nil
}

// securityHeaders are set on every response: no script but the page's own
// files (no inline script, no eval), nothing framed, no type sniffing.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
	"X-Frame-Options":        "DENY",
}

// ServeHTTP routes a request. Paths are matched exactly on the raw
// request target: anything with a dot-dot, a backslash or an encoded
// slash, dot, backslash or percent sign is refused with 404 before any
// decoding, so no form of traversal reaches a handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range securityHeaders {
		w.Header().Set(k, v)
	}
	raw := r.URL.EscapedPath()
	if strings.HasPrefix(r.RequestURI, "/") { // origin form: the target as sent
		raw, _, _ = strings.Cut(r.RequestURI, "?")
	}
	if suspicious(raw) || suspicious(r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	path := r.URL.Path
	switch {
	case path == "/" || path == "/index.html":
		s.asset(w, r, "index.html")
	case strings.HasPrefix(path, "/assets/"):
		s.asset(w, r, strings.TrimPrefix(path, "/assets/"))
	case path == "/api/sweeps":
		s.get(w, r, s.apiSweeps)
	case path == "/api/runs":
		s.get(w, r, s.apiRuns)
	case path == "/api/steps":
		s.get(w, r, s.apiSteps)
	case path == "/api/spectra":
		s.get(w, r, s.apiSpectra)
	case path == "/api/version":
		s.get(w, r, s.apiVersion)
	case path == "/api/annotate":
		s.annotate(w, r)
	default:
		http.NotFound(w, r)
	}
}

// suspicious reports a path holding a traversal in any spelling: "..",
// a backslash, "//", or a percent-encoded '.', '/', '\' or '%' (the last
// catches double encoding).
func suspicious(p string) bool {
	l := strings.ToLower(p)
	for _, bad := range []string{"..", `\`, "//", "%2e", "%2f", "%5c", "%25", "%00", "\x00"} {
		if strings.Contains(l, bad) {
			return true
		}
	}
	return false
}

// assetName is the grammar of an embedded file's name: no folders.
func assetName(name string) bool {
	if name == "" || name[0] == '.' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

var assetTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

func (s *Server) asset(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	typ, ok := assetTypes[filepath.Ext(name)]
	if !assetName(name) || !ok {
		http.NotFound(w, r)
		return
	}
	data, err := fs.ReadFile(assets, "assets/"+name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method == http.MethodGet {
		w.Write(data)
	}
}

// httpError is an error with its HTTP status.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// get serves a GET API call: its value as JSON, or its error as JSON
// {"error": …} with the error's status.
func (s *Server) get(w http.ResponseWriter, r *http.Request, h func(url.Values) (any, error)) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
		return
	}
	v, err := h(r.URL.Query())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var he *httpError
	switch {
	case errors.As(err, &he):
		code = he.code
	case errors.Is(err, errNotFound):
		code = http.StatusNotFound
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		code, data = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(data)
	w.Write([]byte("\n"))
}

// sweepArg returns the folder named by the query parameter s.
func (s *Server) sweepArg(q url.Values) (*folder, error) {
	i, err := strconv.Atoi(q.Get("s"))
	if err != nil || i < 0 || i >= len(s.folders) {
		return nil, badRequest("s=%q: want a sweep index in [0, %d)", q.Get("s"), len(s.folders))
	}
	return s.folders[i], nil
}

type sweepJSON struct {
	Index   int            `json:"index"`
	Name    string         `json:"name"`
	Dir     string         `json:"dir"`
	Total   int            `json:"total"`
	Counts  map[string]int `json:"counts"`
	Running int            `json:"running"`
	Version string         `json:"version"`
}

func (s *Server) apiSweeps(url.Values) (any, error) {
	out := []sweepJSON{}
	for _, f := range s.folders {
		snap, err := f.snapshot()
		if err != nil {
			return nil, err
		}
		out = append(out, sweepJSON{f.index, snap.name, f.dir, snap.total, snap.counts, snap.running, snap.version})
	}
	return out, nil
}

type runsJSON struct {
	Columns []Column `json:"columns"`
	Rows    []Row    `json:"rows"`
}

// apiRuns merges the run tables of the sweeps asked for (all when none):
// the union of their columns, in first-seen order.
func (s *Server) apiRuns(q url.Values) (any, error) {
	var fs []*folder
	if len(q["s"]) == 0 {
		fs = s.folders
	}
	for _, v := range q["s"] {
		f, err := s.sweepArg(url.Values{"s": {v}})
		if err != nil {
			return nil, err
		}
		if !slices.Contains(fs, f) {
			fs = append(fs, f)
		}
	}
	out := runsJSON{Columns: []Column{}, Rows: []Row{}}
	at := map[string]int{}
	for _, f := range fs {
		snap, err := f.snapshot()
		if err != nil {
			return nil, err
		}
		for _, c := range snap.columns {
			if i, ok := at[c.Key]; ok {
				if out.Columns[i].Type != c.Type {
					out.Columns[i].Type = "string"
				}
				continue
			}
			at[c.Key] = len(out.Columns)
			out.Columns = append(out.Columns, c)
		}
		out.Rows = append(out.Rows, snap.rows...)
	}
	return out, nil
}

type stepJSON struct {
	Step   int64  `json:"step"`
	Split  string `json:"split"`
	Metric string `json:"metric"`
	Value  any    `json:"value"`
}

// trialArg reads a trial's query arguments: its sweep s and its ID.
func (s *Server) trialArg(q url.Values) (*folder, string, error) {
	f, err := s.sweepArg(q)
	if err != nil {
		return nil, "", err
	}
	id := q.Get("id")
	if checkTrialID(id) != nil {
		return nil, "", badRequest("id=%q: not a trial ID", id)
	}
	return f, id, nil
}

func (s *Server) apiSteps(q url.Values) (any, error) {
	f, id, err := s.trialArg(q)
	if err != nil {
		return nil, err
	}
	rows, attempt, source, err := f.steps(id)
	if err != nil {
		return nil, err
	}
	steps := make([]stepJSON, len(rows))
	for i, r := range rows {
		steps[i] = stepJSON{r.Step, r.Split, r.Metric, jsonFloat(r.Value)}
	}
	return map[string]any{"id": id, "attempt": attempt, "source": source, "steps": steps}, nil
}

type layerJSON struct {
	Layer      string   `json:"layer"`
	SigmaBase  []any    `json:"sigma_base"`
	SigmaTuned []any    `json:"sigma_tuned"`
	MaxCos     []any    `json:"max_cos"`
	Intruder   [][]bool `json:"intruder"`
}

func (s *Server) apiSpectra(q url.Values) (any, error) {
	f, id, err := s.trialArg(q)
	if err != nil {
		return nil, err
	}
	rows, eps, err := f.spectra(id)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(rows, func(a, b results.SpectrumRow) int {
		if a.Layer != b.Layer {
			return 0 // layers keep their order in the file
		}
		return int(a.Index - b.Index)
	})
	layers := []*layerJSON{}
	at := map[string]*layerJSON{}
	for _, r := range rows {
		l := at[r.Layer]
		if l == nil {
			l = &layerJSON{Layer: r.Layer, SigmaBase: []any{}, SigmaTuned: []any{}, MaxCos: []any{}, Intruder: [][]bool{}}
			at[r.Layer] = l
			layers = append(layers, l)
		}
		l.SigmaBase = append(l.SigmaBase, jsonFloat(r.SigmaBase))
		l.SigmaTuned = append(l.SigmaTuned, jsonFloat(r.SigmaTuned))
		l.MaxCos = append(l.MaxCos, jsonFloat(r.MaxCos))
		in := r.Intruder
		if in == nil {
			in = []bool{}
		}
		l.Intruder = append(l.Intruder, in)
	}
	return map[string]any{"id": id, "layers": layers, "epsilons": eps}, nil
}

// Version is a stamp over every served folder's version: it changes when
// any file the dashboard reads changes, or a folder's writer dies.
func (s *Server) Version() (string, error) {
	h := sha256.New()
	for _, f := range s.folders {
		sc, err := f.scan()
		if err != nil {
			return "", err
		}
		io.WriteString(h, sc.version+"\n")
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

func (s *Server) apiVersion(url.Values) (any, error) {
	v, err := s.Version()
	if err != nil {
		return nil, err
	}
	return map[string]string{"version": v}, nil
}

// annotateRequest is POST /api/annotate's body. Tags, when present,
// replace the trial's tags; Note, when present, its note.
type annotateRequest struct {
	S    *int      `json:"s"`
	ID   string    `json:"id"`
	Tags *[]string `json:"tags"`
	Note *string   `json:"note"`
}

// maxAnnotateBody bounds an annotate request.
const maxAnnotateBody = 64 << 10

// annotate serves POST /api/annotate: only a same-origin JSON POST (its
// Content-Type application/json, its Origin, when sent, this server's own
// host), so that no other site's page can write to the folder through the
// browser of someone running the dashboard.
func (s *Server) annotate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST only"})
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "Content-Type must be application/json"})
		return
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host || (u.Scheme != "http" && u.Scheme != "https") {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request refused"})
			return
		}
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-site request refused"})
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAnnotateBody))
	dec.DisallowUnknownFields()
	var req annotateRequest
	if err := dec.Decode(&req); err != nil {
		writeError(w, badRequest("annotate: %v", err))
		return
	}
	if req.S == nil {
		writeError(w, badRequest("annotate: no sweep index s"))
		return
	}
	f, err := s.sweepArg(url.Values{"s": {strconv.Itoa(*req.S)}})
	if err != nil {
		writeError(w, err)
		return
	}
	if checkTrialID(req.ID) != nil {
		writeError(w, badRequest("annotate: id %q: not a trial ID", req.ID))
		return
	}
	snap, err := f.snapshot()
	if err != nil {
		writeError(w, err)
		return
	}
	if !snap.ids[req.ID] {
		writeError(w, &httpError{http.StatusNotFound, fmt.Sprintf("annotate: no trial %s in sweep %d", req.ID, f.index)})
		return
	}
	if req.Tags != nil {
		for _, t := range *req.Tags {
			if err := results.CheckTag(t); err != nil {
				writeError(w, badRequest("%v", err))
				return
			}
		}
	}
	a, err := results.UpdateAnnotation(f.dir, req.ID, func(a *results.Annotation) {
		if req.Tags != nil {
			a.Tags = slices.Clone(*req.Tags)
		}
		if req.Note != nil {
			a.Note = *req.Note
		}
	})
	if err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	if a.Tags == nil {
		a.Tags = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": a.Tags, "note": a.Note})
}

// checkTrialID accepts the IDs a results folder can hold: a short name of
// letters, digits, '-' and '_'.
func checkTrialID(id string) error {
	if id == "" || len(id) > 128 {
		return errors.New("bad id")
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return errors.New("bad id")
		}
	}
	return nil
}

// LoopbackOnly wraps h so that it answers only requests whose Host is a
// loopback name or address: a page on another site cannot reach a
// loopback server through a DNS name rebound to 127.0.0.1.
func LoopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if ip := net.ParseIP(host); !(host == "localhost" || ip != nil && ip.IsLoopback()) {
			http.Error(w, "dashboard: this server answers only on a loopback host name", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}
