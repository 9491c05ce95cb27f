// Package options is the one grammar of method and task options: their
// declarations (Option), their resolution against a declaration (Resolve:
// keys, kinds, ranges, choices, defaults, "did you mean"), the resolved
// values with typed getters (Options), the error that names the bad key
// (OptionError), and the shape of a linear layer that options are checked
// against (LayerShape). The methods and tasks registries both resolve
// through it; sweeps only passes the values it read on.
package options

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"peftbench/internal/suggest"
)

// RankKey is the option that holds a method's rank. Resolve resolves it
// first, and a float option may then be given as a multiple of it: "2r",
// "0.5r", "2*r" or "r".
const RankKey = "rank"

// Option declares one configurable option of a method or a task. Its JSON
// form is what `bench methods --json` and `bench tasks --json` print.
type Option struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"` // "int", "float", "string" or "bool"
	Default any      `json:"default"`
	Min     *float64 `json:"min,omitempty"`
	Max     *float64 `json:"max,omitempty"`
	// MaxOpen makes Max exclusive (dropout < 1).
	MaxOpen bool     `json:"max_open,omitempty"`
	Choices []string `json:"choices,omitempty"`
	Doc     string   `json:"doc"`
	// Base marks a task option that changes the base model (its
	// architecture or pretraining); they, and only they, enter the base
	// cache key, so trials that differ in fine-tuning options share a base.
	Base bool `json:"base,omitempty"`
	// FromRank marks an option whose default is derived from the rank
	// (AdaLoRA's init_rank 0 means ⌈1.5·rank⌉): an error about its value,
	// when no key set it, is an error about the rank.
	FromRank bool `json:"-"`
}

// Options are resolved options: every declared option present, with its
// kind's Go type (int, float64, string, bool). Resolve builds them; the
// getters panic on a missing key or a wrong type, which is a programming
// error after resolution.
type Options map[string]any

// Int returns the int option key.
func (o Options) Int(key string) int { return get[int](o, key) }

// Float returns the float option key.
func (o Options) Float(key string) float64 { return get[float64](o, key) }

// String returns the string option key.
func (o Options) String(key string) string { return get[string](o, key) }

// Bool returns the bool option key.
func (o Options) Bool(key string) bool { return get[bool](o, key) }

func get[T any](o Options, key string) T {
	v, ok := o[key].(T)
	if !ok {
		panic(fmt.Sprintf("options: option %q is %T (%v), want %T", key, o[key], o[key], v))
	}
	return v
}

// OptionError reports a bad option; Key names it, so that a sweep file
// error can point at the line that set it.
type OptionError struct {
	Registry string // "methods" or "tasks"; may be empty
	Name     string // the method or task; may be empty
	Key, Msg string
}

func (e *OptionError) Error() string {
	s := "option " + e.Key + ": " + e.Msg
	if e.Name != "" {
		s = e.Name + ": " + s
	}
	if e.Registry != "" {
		s = e.Registry + ": " + s
	}
	return s
}

// Unknown returns an *OptionError for the first key of opts (in sorted
// order) that decl does not declare, or nil.
func Unknown(registry, name string, decl []Option, opts map[string]any) error {
	names := make([]string, len(decl))
	for i, op := range decl {
		names[i] = op.Name
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(names, k) {
			msg := "unknown option" + suggest.DidYouMean(k, names)
			return &OptionError{registry, name, k, fmt.Sprintf("%s; %s takes %s", msg, name, strings.Join(names, ", "))}
		}
	}
	return nil
}

// Resolve validates opts against decl (keys, kinds, ranges, choices) and
// returns every declared option, given or default, converted to its kind.
// Integers may be any Go integer type or an integral float64 (JSON); floats
// any number, or, when decl has a RankKey option, a multiple of the rank
// (see PerRank). Errors are *OptionError with registry and name. Resolving
// resolved options returns them unchanged.
func Resolve(registry, name string, decl []Option, opts map[string]any) (Options, error) {
	if err := Unknown(registry, name, decl, opts); err != nil {
		return nil, err
	}
	out := Options{}
	rank, hasRank := 0, false
	// the rank first: other options may be multiples of it.
	if i := slices.IndexFunc(decl, func(op Option) bool { return op.Name == RankKey && op.Kind == "int" }); i >= 0 {
		v, err := Value(decl[i], opts, 0)
		if err != nil {
			return nil, &OptionError{registry, name, RankKey, err.Error()}
		}
		rank, hasRank = v.(int), true
		out[RankKey] = rank
	}
	for _, op := range decl {
		if _, done := out[op.Name]; done {
			continue
		}
		r := -1
		if hasRank {
			r = rank
		}
		v, err := Value(op, opts, r)
		if err != nil {
			return nil, &OptionError{registry, name, op.Name, err.Error()}
		}
		out[op.Name] = v
	}
	return out, nil
}

// Value converts opts[op.Name] (or op's default) to op's kind and checks
// its range and choices. rank ≥ 0 is the resolved rank that "2r"-style
// floats multiply (0 when it is not known); rank < 0 means the options
// have no rank.
func Value(op Option, opts map[string]any, rank int) (any, error) {
	raw, ok := opts[op.Name]
	if !ok {
		raw = op.Default
	}
	switch op.Kind {
	case "int":
		n, ok := asInt(raw)
		if !ok {
			return nil, fmt.Errorf("%v (%T) is not an integer", raw, raw)
		}
		return n, checkRange(op, float64(n))
	case "float":
		f, ok := asFloat(raw)
		if s, isStr := raw.(string); isStr && rank >= 0 {
			k, ok := PerRank(s)
			if !ok || rank == 0 {
				return nil, fmt.Errorf("%q is not a number or a multiple of the rank such as \"2r\"", s)
			}
			f = k * float64(rank)
		} else if !ok {
			return nil, fmt.Errorf("%v (%T) is not a number", raw, raw)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v is not a finite number", f)
		}
		return f, checkRange(op, f)
	case "string":
		s, ok := raw.(string)
		if !ok {
			return nil, fmt.Errorf("%v (%T) is not a string", raw, raw)
		}
		if len(op.Choices) > 0 && !slices.Contains(op.Choices, s) {
			return nil, fmt.Errorf("unknown value %q; want one of %s%s", s, strings.Join(op.Choices, ", "), suggest.DidYouMean(s, op.Choices))
		}
		return s, nil
	case "bool":
		b, ok := raw.(bool)
		if !ok {
			return nil, fmt.Errorf("%v (%T) is not a bool", raw, raw)
		}
		return b, nil
	}
	return nil, fmt.Errorf("declared with unknown kind %q", op.Kind)
}

// PerRank parses a multiple of the rank: "2r", "0.5r", "2*r", "2 * r" or
// "r" (1). The factor must be a finite number ≥ 0.
func PerRank(s string) (float64, bool) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "r")
	if !ok {
		return 0, false
	}
	num = strings.TrimSpace(num)
	if num == "" {
		return 1, true
	}
	num, _ = strings.CutSuffix(num, "*")
	num = strings.TrimSpace(num)
	k, err := strconv.ParseFloat(num, 64)
	if err != nil || k < 0 || math.IsInf(k, 0) || math.IsNaN(k) {
		return 0, false
	}
	return k + 0, true // -0 → 0
}

// CheckRange checks v against op's Min and Max (MaxOpen: v < Max).
func CheckRange(op Option, v float64) error { return checkRange(op, v) }

func checkRange(op Option, v float64) error {
	if op.Min != nil && v < *op.Min {
		return fmt.Errorf("%v is below the minimum %v", v, *op.Min)
	}
	if op.Max != nil {
		if op.MaxOpen && v >= *op.Max {
			return fmt.Errorf("%v must be below %v", v, *op.Max)
		}
		if v > *op.Max {
			return fmt.Errorf("%v is above the maximum %v", v, *op.Max)
		}
	}
	return nil
}

func asInt(raw any) (int, bool) {
	switch v := raw.(type) {
	case int:
		return v, true
	case int8:
		return int(v), true
	case int16:
		return int(v), true
	case int32:
		return int(v), true
	case int64:
		return int(v), true
	case uint:
		return int(v), v <= math.MaxInt64
	case uint32:
		return int(v), true
	case uint64:
		return int(v), v <= math.MaxInt64
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int(v), true
		}
	}
	return 0, false
}

func asFloat(raw any) (float64, bool) {
	switch v := raw.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	}
	if n, ok := asInt(raw); ok {
		return float64(n), true
	}
	return 0, false
}

// LayerShape is a linear layer that options are checked against: its
// dotted name and the shape (Out×In) of its weight. methods.LayerShape,
// tasks.LayerShape and sweeps.Layer are this type.
type LayerShape struct {
	Name    string
	Out, In int
	Bias    bool // the layer has a bias (full fine-tuning trains it)
	// Output marks the model's output projection (a language model's
	// lm_head / embed_out), which HF PEFT's "all-linear" leaves out.
	Output bool
}

// NormShape is a norm layer (LayerNorm or RMSNorm) that options are checked
// against: its dotted name, its width and whether it has a bias (β, which a
// LayerNorm has and an RMSNorm has not). methods.NormShape and
// tasks.NormShape are this type.
type NormShape struct {
	Name string
	Dim  int
	Bias bool
}
