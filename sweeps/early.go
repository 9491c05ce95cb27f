package sweeps

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// EarlyStopping is a sweep's [early_stopping] table: successive halving
// (ASHA's synchronous form) over rungs on eval_every points. The trials of
// a group (Group: equal but for searched or swept hyperparameters) run to
// rung 0; once all have, the best ⌈n/Eta⌉ of the n by the metric at that
// step go on to the next rung, rerun from step 0, and the others end there
// as stopped. Rung k is step MinSteps·Eta^k; the top rung is the trial's
// full steps.
type EarlyStopping struct {
	Kind string `json:"kind"` // "asha"
	Eta  int    `json:"eta"`  // promotion ratio, ≥ 2; default 3
	// MinSteps is rung 0, a multiple of each trial's eval_every; 0 means
	// each trial's eval_every.
	MinSteps int `json:"min_steps"`
	// Split and Metric name the step metric compared (default "val",
	// "accuracy"); Direction is "max" or "min" (default "min" for a
	// metric named loss, else "max").
	Split     string `json:"split"`
	Metric    string `json:"metric"`
	Direction string `json:"direction"`
}

var (
	earlyKeys  = []string{"kind", "eta", "min_steps", "split", "metric", "direction"}
	earlyKinds = []string{"asha"}
)

// Rungs returns the steps at which trial t's promotions are decided, its
// full steps last.
func (e *EarlyStopping) Rungs(t Trial) []int {
	r := e.MinSteps
	if r <= 0 {
		r = t.Train.EvalEvery
	}
	var rungs []int
	for r > 0 && r < t.Train.Steps {
		rungs = append(rungs, r)
		if r > math.MaxInt/max(e.Eta, 2) {
			break
		}
		r *= max(e.Eta, 2)
	}
	return append(rungs, t.Train.Steps)
}

// Group is the key of trial t's group: the trials it competes with share
// method, rank, task, seed, steps, eval_every and intruder mitigation, and
// differ only in other hyperparameters (searched or swept).
func (e *EarlyStopping) Group(t Trial) string {
	m := ""
	if t.MitigateIntruders != nil {
		m = canonical(t.MitigateIntruders)
	}
	return fmt.Sprintf("%s\x00%d\x00%s\x00%d\x00%d\x00%d\x00%s", t.Method, t.Rank, t.Task, t.Seed, t.Train.Steps, t.Train.EvalEvery, m)
}

// Better reports whether metric value a ranks above b; NaN ranks last.
func (e *EarlyStopping) Better(a, b float64) bool {
	switch {
	case math.IsNaN(a):
		return false
	case math.IsNaN(b):
		return true
	case e.Direction == "min":
		return a < b
	}
	return a > b
}

// earlyStopping reads [early_stopping]; nil without it.
func (d *decoder) earlyStopping(raw map[string]any, ex Executor) *EarlyStopping {
	t, ok := d.table(raw, "early_stopping")
	if !ok {
		return nil
	}
	d.unknownKeys(t, "early_stopping", earlyKeys)
	e := &EarlyStopping{Eta: 3, Split: "val", Metric: "accuracy"}
	if v, ok := t["kind"]; !ok {
		d.es.atKey("early_stopping", "missing key \"kind\" (valid: %s)", strings.Join(earlyKinds, ", "))
	} else if s, ok := d.str("early_stopping.kind", v); ok {
		if !slices.Contains(earlyKinds, s) {
			d.es.atVal("early_stopping.kind", "unknown early stopping %q%s; valid: %s", s, didYouMean(s, earlyKinds), strings.Join(earlyKinds, ", "))
		}
		e.Kind = s
	}
	if v, ok := t["eta"]; ok {
		e.Eta, _ = d.int("early_stopping.eta", v, 2)
	}
	if v, ok := t["min_steps"]; ok {
		e.MinSteps, _ = d.int("early_stopping.min_steps", v, 1)
	}
	for _, k := range []struct {
		key string
		dst *string
	}{{"split", &e.Split}, {"metric", &e.Metric}} {
		if v, ok := t[k.key]; ok {
			if s, ok := d.str(join("early_stopping", k.key), v); ok {
				if s == "" {
					d.es.atVal(join("early_stopping", k.key), "empty %s", k.key)
				}
				*k.dst = s
			}
		}
	}
	e.Direction = "max"
	if e.Metric == "loss" || strings.HasSuffix(e.Metric, "_loss") {
		e.Direction = "min"
	}
	if v, ok := t["direction"]; ok {
		if s, ok := d.str("early_stopping.direction", v); ok {
			if s != "max" && s != "min" {
				d.es.atVal("early_stopping.direction", "want \"max\" or \"min\", got %q", s)
			}
			e.Direction = s
		}
	}
	if ex.Kind != "" && ex.Kind != "local" {
		d.es.atKey("early_stopping", "not supported with [executor] kind = %q yet: promotions are decided in the process that runs the trials; use the local executor", ex.Kind)
	}
	return e
}

// checkRungs checks every trial's rungs against [early_stopping]: eval_every
// set, min_steps a multiple of it.
func (d *decoder) checkRungs(e *EarlyStopping, trials []Trial) {
	if e == nil {
		return
	}
	single := 0
	for _, t := range trials {
		ev := t.Train.EvalEvery
		switch {
		case ev <= 0:
			d.es.atKey("early_stopping", "needs eval_every > 0 (its rungs are eval_every points); %s on %s has eval_every = %d", t.Method, t.Task, ev)
		case e.MinSteps > 0 && e.MinSteps%ev != 0:
			d.es.atVal("early_stopping.min_steps", "min_steps %d is not a multiple of eval_every %d (%s on %s)", e.MinSteps, ev, t.Method, t.Task)
		case len(e.Rungs(t)) == 1:
			single++
		}
	}
	if single > 0 {
		d.warn("early_stopping", "%d trials have a single rung (min_steps ≥ steps): nothing stops them early", single)
	}
}
