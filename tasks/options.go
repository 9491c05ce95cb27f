package tasks

import (
	"math"

	"peftbench/internal/options"
)

// Options are a task's resolved options (see internal/options): every
// declared option present, with its kind's Go type.
type Options = options.Options

// OptionError reports a bad task option; Key names it, so that a sweep
// file error can point at the line that set it.
type OptionError = options.OptionError

// optionError is an *OptionError of task.
func optionError(task, key, msg string) *OptionError {
	return &OptionError{Registry: "tasks", Name: task, Key: key, Msg: msg}
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
	out, err := options.Resolve("tasks", task, t.Info().Options, opts)
	if err != nil {
		return nil, err
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
