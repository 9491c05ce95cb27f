package tasks

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"peftbench/internal/suggest"
)

// Options are a task's resolved options: every declared option present,
// with its kind's Go type (int, float64, string, bool). ResolveOptions
// builds them; the getters panic on a missing key or a wrong type, which is
// a programming error after resolution.
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
		panic(fmt.Sprintf("tasks: option %q is %T (%v), want %T", key, o[key], o[key], v))
	}
	return v
}

// OptionError reports a bad task option; Key names it, so that a sweep
// file error can point at the line that set it.
type OptionError struct {
	Task, Key, Msg string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("tasks: %s: option %s: %s", e.Task, e.Key, e.Msg)
}

// ResolveOptions validates opts for the named task (keys, types, ranges,
// choices) and returns them with defaults filled in. Integers may be given
// as any Go integer type or as an integral float64 (JSON); floats as any
// number. Resolving resolved options returns them unchanged.
func ResolveOptions(task string, opts map[string]any) (Options, error) {
	t, err := Lookup(task)
	if err != nil {
		return nil, err
	}
	decl := t.Info().Options
	var names []string
	for _, op := range decl {
		names = append(names, op.Name)
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(names, k) {
			msg := "unknown option"
			msg += suggest.DidYouMean(k, names)
			return nil, &OptionError{task, k, fmt.Sprintf("%s; %s takes %s", msg, task, strings.Join(names, ", "))}
		}
	}
	out := Options{}
	for _, op := range decl {
		raw, ok := opts[op.Name]
		if !ok {
			raw = op.Default
		}
		v, err := convert(op, raw)
		if err != nil {
			return nil, &OptionError{task, op.Name, err.Error()}
		}
		out[op.Name] = v
	}
	if v, ok := t.(Validator); ok {
		if err := v.Validate(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Validator is implemented by tasks whose options constrain one another
// (a width its attention heads must divide): ResolveOptions calls Validate
// on the resolved options, so that a combination that could not build is
// refused when a sweep loads, not by a panic when its base is built.
// Validate returns an *OptionError naming the key to change.
type Validator interface {
	Validate(o Options) error
}

func convert(op Option, raw any) (any, error) {
	switch op.Kind {
	case "int":
		n, ok := asInt(raw)
		if !ok {
			return nil, fmt.Errorf("%v (%T) is not an integer", raw, raw)
		}
		return n, checkRange(op, float64(n))
	case "float":
		f, ok := asFloat(raw)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v (%T) is not a finite number", raw, raw)
		}
		return f, checkRange(op, f)
	case "string":
		s, ok := raw.(string)
		if !ok {
			return nil, fmt.Errorf("%v (%T) is not a string", raw, raw)
		}
		if len(op.Choices) > 0 && !slices.Contains(op.Choices, s) {
			return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(op.Choices, ", "))
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
		return int(v), true
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

func checkRange(op Option, v float64) error {
	if op.Min != nil && v < *op.Min {
		return fmt.Errorf("%v is below the minimum %v", v, *op.Min)
	}
	if op.Max != nil && v > *op.Max {
		return fmt.Errorf("%v is above the maximum %v", v, *op.Max)
	}
	return nil
}

func fptr(v float64) *float64 { return &v }

func intOpt(name string, def, lo, hi int, base bool, doc string) Option {
	return Option{Name: name, Kind: "int", Default: def, Min: fptr(float64(lo)), Max: fptr(float64(hi)), Base: base, Doc: doc}
}

func floatOpt(name string, def, lo, hi float64, base bool, doc string) Option {
	return Option{Name: name, Kind: "float", Default: def, Min: fptr(lo), Max: fptr(hi), Base: base, Doc: doc}
}

func stringOpt(name, def string, choices []string, base bool, doc string) Option {
	return Option{Name: name, Kind: "string", Default: def, Choices: choices, Base: base, Doc: doc}
}

func boolOpt(name string, def, base bool, doc string) Option {
	return Option{Name: name, Kind: "bool", Default: def, Base: base, Doc: doc}
}

// baseSeedOption is every task's base_seed.
var baseSeedOption = intOpt("base_seed", 0, 0, math.MaxInt32, true,
	"seed of the base model's pretraining (initialisation and data); trials with different seeds share the base unless this differs")

// stageOptions are the continual-learning options of tasks that chain stages.
func stageOptions() []Option {
	return []Option{
		intOpt("stages", 1, 1, 8, false, "number of fine-tuning stages T1 → T2 → … (continual learning); 1 is plain fine-tuning"),
		boolOpt("merge", true, false, "with stages > 1: merge the adapter into the base weights after each stage (true) or keep one adapter across stages"),
	}
}

// baseOptions returns the options of o that change the base model.
func baseOptions(info Info, o Options) map[string]any {
	m := map[string]any{}
	for _, op := range info.Options {
		if op.Base {
			m[op.Name] = o[op.Name]
		}
	}
	return m
}
