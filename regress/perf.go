package regress

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"peftbench/analysis"
)

// PerfSample is one figure of `bench perf --json`.
type PerfSample struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// ReadPerf reads the output of one or more `bench perf --json` runs: a JSON
// array of {"name", "value", "unit"} objects, an array of such arrays, or
// several arrays one after another (as `bench perf --json >> file` leaves
// them). Each occurrence of a name is one sample of it.
func ReadPerf(r io.Reader) ([]PerfSample, error) {
	dec := json.NewDecoder(r)
	var out []PerfSample
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("regress: perf JSON: %w", err)
		}
		s, err := decodePerf(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	if len(out) == 0 {
		return nil, errors.New("regress: perf JSON: no figures")
	}
	return out, nil
}

// ReadPerfFile reads the perf figures in the file at path (see ReadPerf).
func ReadPerfFile(path string) ([]PerfSample, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("regress: %w", err)
	}
	s, err := ReadPerf(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return s, nil
}

func decodePerf(raw json.RawMessage) ([]PerfSample, error) {
	var nested []json.RawMessage
	if err := json.Unmarshal(raw, &nested); err != nil {
		var one PerfSample
		if err := decodeSample(raw, &one); err != nil {
			return nil, err
		}
		return []PerfSample{one}, nil
	}
	var out []PerfSample
	for _, el := range nested {
		if bytes.HasPrefix(bytes.TrimSpace(el), []byte("[")) {
			s, err := decodePerf(el)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
			continue
		}
		var one PerfSample
		if err := decodeSample(el, &one); err != nil {
			return nil, err
		}
		out = append(out, one)
	}
	return out, nil
}

func decodeSample(raw json.RawMessage, s *PerfSample) error {
	if err := json.Unmarshal(raw, s); err != nil {
		return fmt.Errorf("regress: perf JSON: want {\"name\", \"value\", \"unit\"}: %w", err)
	}
	if s.Name == "" {
		return fmt.Errorf("regress: perf JSON: figure without a name: %s", raw)
	}
	return nil
}

// ComparePerf compares bench perf figures of a current run with a
// baseline's: every name's samples (one per run) with the Mann–Whitney
// test and minimum effect of CompareTrials. The unit decides the direction
// (rates higher, times and bytes lower); a figure of unknown unit that
// changes significantly is a warning. A figure missing from the current
// run is a regression. Samples from different machines do not compare:
// run both on one machine, interleaved.
func ComparePerf(base, cur []PerfSample, opt Options) (*Report, error) {
	opt = opt.withDefaults()
	rep := &Report{Kind: "perf", Alpha: opt.Alpha, MinEffect: opt.MinEffect}
	type fig struct {
		unit      string
		base, cur []float64
	}
	figs := map[string]*fig{}
	var order []string
	add := func(ss []PerfSample, current bool) error {
		for _, s := range ss {
			f := figs[s.Name]
			if f == nil {
				f = &fig{unit: s.Unit}
				figs[s.Name] = f
				order = append(order, s.Name)
			}
			if f.unit != s.Unit {
				return fmt.Errorf("regress: perf figure %s has units %q and %q", s.Name, f.unit, s.Unit)
			}
			if current {
				f.cur = append(f.cur, s.Value)
			} else {
				f.base = append(f.base, s.Value)
			}
		}
		return nil
	}
	if err := add(base, false); err != nil {
		return nil, err
	}
	if err := add(cur, true); err != nil {
		return nil, err
	}
	// Baseline figures first, in their order; then new ones.
	slices.SortStableFunc(order, func(a, b string) int {
		ab, bb := len(figs[a].base) > 0, len(figs[b].base) > 0
		switch {
		case ab == bb:
			return 0
		case ab:
			return -1
		}
		return 1
	})
	for _, name := range order {
		f := figs[name]
		hib, known := unitHigherIsBetter(f.unit)
		r := Row{Name: name, Metric: f.unit, Unit: f.unit, HigherIsBetter: hib, Base: f.base, Cur: f.cur}
		judge(&r, analysis.CompareOptions{HigherIsBetter: hib, Alpha: opt.Alpha, MinEffect: opt.MinEffect}, known)
		if !known {
			r.Warnings = append(r.Warnings, fmt.Sprintf("unit %q: direction unknown", f.unit))
		}
		rep.Rows = append(rep.Rows, r)
	}
	rep.Warnings = append(rep.Warnings, fewSeedsWarning(rep.Rows, opt.Alpha)...)
	return rep, nil
}
