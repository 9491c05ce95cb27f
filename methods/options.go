package methods

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"peftbench/internal/suggest"
	"peftbench/nn"
)

// Options are a method's resolved options: every declared option present,
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
		panic(fmt.Sprintf("methods: option %q is %T (%v), want %T", key, o[key], o[key], v))
	}
	return v
}

// OptionError reports a bad option; Key names it, so that a sweep file
// error can point at the line that set it.
type OptionError struct {
	Method, Key, Msg string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("methods: %s: option %s: %s", e.Method, e.Key, e.Msg)
}

// ResolveOptions validates opts for a method (keys, types, ranges, choices)
// and returns them with defaults filled in. rank > 0 sets the rank option
// (it must then agree with opts["rank"] if that is given); rank 0 keeps
// opts' rank or the method's default. Methods without a rank accept only
// rank 0. alpha may be given as a multiple of the rank: "2r", "0.5r", "r".
// Resolving resolved options returns them unchanged.
func ResolveOptions(method string, rank int, opts map[string]any) (Options, error) {
	m, err := Lookup(method)
	if err != nil {
		return nil, err
	}
	info := m.Info()
	bad := func(key, format string, args ...any) error {
		return &OptionError{Method: method, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	decl := map[string]Option{}
	var names []string
	for _, op := range info.Options {
		decl[op.Name] = op
		names = append(names, op.Name)
	}
	for k := range opts {
		if _, ok := decl[k]; !ok {
			msg := "unknown option"
			msg += suggest.DidYouMean(k, names)
			return nil, bad(k, "%s; %s takes %s", msg, method, strings.Join(names, ", "))
		}
	}
	if rank < 0 {
		return nil, bad("rank", "%d, want > 0", rank)
	}
	if !info.HasRank && rank != 0 {
		return nil, bad("rank", "%s has no rank, have %d", method, rank)
	}
	out := Options{}
	// rank first: alpha may refer to it.
	if _, ok := decl["rank"]; ok {
		v, err := resolveValue(decl["rank"], opts, 0)
		if err != nil {
			return nil, bad("rank", "%v", err)
		}
		r := v.(int)
		if _, given := opts["rank"]; given && rank > 0 && r != rank {
			return nil, bad("rank", "options say %d but the rank axis says %d", r, rank)
		}
		if rank > 0 {
			r = rank
			if err := checkRange(decl["rank"], float64(r)); err != nil {
				return nil, bad("rank", "%v", err)
			}
		}
		out["rank"] = r
	}
	for _, op := range info.Options {
		if op.Name == "rank" {
			continue
		}
		r := 0
		if v, ok := out["rank"]; ok {
			r = v.(int)
		}
		v, err := resolveValue(op, opts, r)
		if err != nil {
			return nil, bad(op.Name, "%v", err)
		}
		out[op.Name] = v
	}
	return out, nil
}

// resolveValue converts opts[op.Name] (or the default) to op's kind and
// checks its range and choices. rank resolves "2r"-style floats.
func resolveValue(op Option, opts map[string]any, rank int) (any, error) {
	raw, ok := opts[op.Name]
	if !ok {
		raw = op.Default
	}
	switch op.Kind {
	case "int":
		var n int
		switch v := raw.(type) {
		case int:
			n = v
		case int64:
			n = int(v)
		case float64:
			if v != math.Trunc(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("want an integer, have %v", v)
			}
			n = int(v)
		default:
			return nil, fmt.Errorf("want an integer, have %T %v", raw, raw)
		}
		return n, checkRange(op, float64(n))
	case "float":
		var f float64
		switch v := raw.(type) {
		case float64:
			f = v
		case float32:
			f = float64(v)
		case int:
			f = float64(v)
		case int64:
			f = float64(v)
		case string:
			k, ok := perRank(v)
			if !ok || rank == 0 {
				return nil, fmt.Errorf("want a number or a multiple of the rank like \"2r\", have %q", v)
			}
			f = k * float64(rank)
		default:
			return nil, fmt.Errorf("want a number, have %T %v", raw, raw)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("want a finite number, have %v", f)
		}
		return f, checkRange(op, f)
	case "string":
		s, ok := raw.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, have %T %v", raw, raw)
		}
		if len(op.Choices) > 0 && !slices.Contains(op.Choices, s) {
			msg := fmt.Sprintf("unknown value %q; want one of %s", s, strings.Join(op.Choices, ", "))
			msg += suggest.DidYouMean(s, op.Choices)
			return nil, fmt.Errorf("%s", msg)
		}
		return s, nil
	case "bool":
		b, ok := raw.(bool)
		if !ok {
			return nil, fmt.Errorf("want true or false, have %T %v", raw, raw)
		}
		return b, nil
	}
	return nil, fmt.Errorf("declared with unknown kind %q", op.Kind)
}

// perRank parses "2r", "0.5r" or "r" as a multiple of the rank.
func perRank(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	num, ok := strings.CutSuffix(s, "r")
	if !ok {
		return 0, false
	}
	num = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(num), "*"))
	if num == "" {
		return 1, true
	}
	k, err := strconv.ParseFloat(num, 64)
	if err != nil || k < 0 || math.IsInf(k, 0) || math.IsNaN(k) {
		return 0, false
	}
	return k, true
}

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

// layerChecker is implemented by methods whose layer constraints differ
// from "rank ≤ min(out, in)".
type layerChecker interface {
	CheckLayers(o Options, layers []LayerShape) error
}

// CheckLayers checks resolved options against the shapes of the targeted
// layers, at sweep-load time: by default a rank above min(out, in) of any
// layer is an error.
func CheckLayers(method string, o Options, layers []LayerShape) error {
	m, err := Lookup(method)
	if err != nil {
		return err
	}
	if len(layers) == 0 {
		return fmt.Errorf("methods: %s: no targeted layers", method)
	}
	if c, ok := m.(layerChecker); ok {
		return c.CheckLayers(o, layers)
	}
	info := m.Info()
	if !info.HasRank || info.RankAboveMin {
		return nil
	}
	return checkRankFits(method, "rank", o.Int("rank"), layers)
}

func checkRankFits(method, key string, r int, layers []LayerShape) error {
	for _, l := range layers {
		if r > min(l.Out, l.In) {
			return &OptionError{Method: method, Key: key,
				Msg: fmt.Sprintf("%d exceeds min(out, in) = %d of layer %s (%d×%d)", r, min(l.Out, l.In), l.Name, l.Out, l.In)}
		}
	}
	return nil
}

// Attach resolves opts for method, checks them against layers and attaches
// the method to every layer. It is the one call a trainer needs.
func Attach(method string, layers []*nn.Linear, opts map[string]any, rng *nn.RNG) (Attachment, error) {
	m, err := Lookup(method)
	if err != nil {
		return nil, err
	}
	o, err := ResolveOptions(method, 0, opts)
	if err != nil {
		return nil, err
	}
	if err := CheckLayers(method, o, Shapes(layers)); err != nil {
		return nil, err
	}
	for _, l := range layers {
		if l.Adapter != nil {
			return nil, fmt.Errorf("methods: %s: layer %s already has an adapter", method, l.Name)
		}
	}
	return m.Attach(layers, o, rng)
}

// TrainableParams returns method's formula count for layers.
func TrainableParams(method string, layers []LayerShape, opts map[string]any) (int64, error) {
	m, err := Lookup(method)
	if err != nil {
		return 0, err
	}
	o, err := ResolveOptions(method, 0, opts)
	if err != nil {
		return 0, err
	}
	return m.TrainableParams(layers, o), nil
}

// Option constructors keep the method files short.

func fptr(v float64) *float64 { return &v }

func intOpt(name string, def, lo int, doc string) Option {
	return Option{Name: name, Kind: "int", Default: def, Min: fptr(float64(lo)), Doc: doc}
}

func floatOpt(name string, def float64, lo, hi *float64, doc string) Option {
	return Option{Name: name, Kind: "float", Default: def, Min: lo, Max: hi, Doc: doc}
}

func stringOpt(name, def string, choices []string, doc string) Option {
	return Option{Name: name, Kind: "string", Default: def, Choices: choices, Doc: doc}
}

func boolOpt(name string, def bool, doc string) Option {
	return Option{Name: name, Kind: "bool", Default: def, Doc: doc}
}

// loraOptions are the options every LoRA-family method shares: rank,
// alpha, dropout and init (choices in order, the first is the default).
func loraOptions(rank int, alpha float64, inits ...string) []Option {
	return []Option{
		intOpt("rank", rank, 1, "adapter rank r"),
		floatOpt("alpha", alpha, fptr(0), nil, "scaling numerator α; a number or a multiple of the rank (\"2r\")"),
		{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
		stringOpt("init", inits[0], inits, "initialisation of the adapter factors"),
	}
}
