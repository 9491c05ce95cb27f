package sweeps

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"peftbench/internal/targets"
)

// defaultTrain is the trainer configuration a sweep starts from before its
// [defaults] apply.
func defaultTrain() TrainConfig {
	return TrainConfig{
		Steps:     1000,
		Batch:     32,
		LR:        1e-3,
		Optimizer: "adamw",
		Beta1:     0.9,
		Beta2:     0.999,
		Eps:       1e-8,
		Schedule:  "constant",
		Targets:   []string{AllLinear},
	}
}

var (
	optimizers = []string{"adamw", "sgd"}
	schedules  = []string{"constant", "cosine", "linear"}
)

// trainKeys are the keys of TrainConfig a sweep may set, in documentation
// order.
var trainKeys = []string{
	"steps", "batch", "lr", "optimizer", "momentum", "beta1", "beta2", "eps",
	"weight_decay", "schedule", "warmup", "grad_clip", "eval_every", "targets",
}

func isTrainKey(k string) bool { return slices.Contains(trainKeys, k) }

// checkTrain validates one trainer value and returns it normalised (int,
// float64, string or []string), or a message saying what is wrong.
func checkTrain(key string, v any) (any, string) {
	switch key {
	case "steps", "batch":
		n, msg := asInt(v)
		if msg != "" {
			return nil, msg
		}
		if n <= 0 {
			return nil, fmt.Sprintf("must be positive, got %d", n)
		}
		return int(n), ""
	case "warmup", "eval_every":
		n, msg := asInt(v)
		if msg != "" {
			return nil, msg
		}
		if n < 0 {
			return nil, fmt.Sprintf("must not be negative, got %d", n)
		}
		return int(n), ""
	case "lr", "eps":
		x, msg := asFloat(v)
		if msg != "" {
			return nil, msg
		}
		if !(x > 0) {
			return nil, fmt.Sprintf("must be positive, got %v", x)
		}
		return x, ""
	case "weight_decay", "grad_clip":
		x, msg := asFloat(v)
		if msg != "" {
			return nil, msg
		}
		if x < 0 {
			return nil, fmt.Sprintf("must not be negative, got %v", x)
		}
		return x, ""
	case "momentum", "beta1", "beta2":
		x, msg := asFloat(v)
		if msg != "" {
			return nil, msg
		}
		if x < 0 || x >= 1 {
			return nil, fmt.Sprintf("must be in [0, 1), got %v", x)
		}
		return x, ""
	case "optimizer", "schedule":
		s, ok := v.(string)
		if !ok {
			return nil, "want a string, got " + typeName(v)
		}
		valid := optimizers
		if key == "schedule" {
			valid = schedules
		}
		if !slices.Contains(valid, s) {
			return nil, fmt.Sprintf("unknown %s %q%s; valid: %s", key, s, didYouMean(s, valid), strings.Join(valid, ", "))
		}
		return s, ""
	case "targets":
		return checkTargets(v)
	}
	return nil, "not a trainer key"
}

func checkTargets(v any) (any, string) {
	var pats []string
	switch v := v.(type) {
	case string:
		pats = []string{v}
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, "want a list of strings, got an element of type " + typeName(e)
			}
			pats = append(pats, s)
		}
	default:
		return nil, "want a string or a list of strings, got " + typeName(v)
	}
	if len(pats) == 0 {
		return nil, "empty target list"
	}
	for _, p := range pats {
		if _, err := targets.Compile(p); err != nil {
			return nil, err.Error()
		}
	}
	return pats, ""
}

// setTrain stores a value checkTrain returned.
func setTrain(tc *TrainConfig, key string, v any) {
	switch key {
	case "steps":
		tc.Steps = v.(int)
	case "batch":
		tc.Batch = v.(int)
	case "warmup":
		tc.Warmup = v.(int)
	case "eval_every":
		tc.EvalEvery = v.(int)
	case "lr":
		tc.LR = v.(float64)
	case "eps":
		tc.Eps = v.(float64)
	case "weight_decay":
		tc.WeightDecay = v.(float64)
	case "grad_clip":
		tc.GradClip = v.(float64)
	case "momentum":
		tc.Momentum = v.(float64)
	case "beta1":
		tc.Beta1 = v.(float64)
	case "beta2":
		tc.Beta2 = v.(float64)
	case "optimizer":
		tc.Optimizer = v.(string)
	case "schedule":
		tc.Schedule = v.(string)
	case "targets":
		tc.Targets = v.([]string)
	}
}

// typeName names a decoded TOML value's type the way the TOML spec does.
func typeName(v any) string {
	switch v.(type) {
	case int64:
		return "integer"
	case float64:
		return "float"
	case string:
		return "string"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any, []map[string]any:
		return "table"
	case time.Time:
		return "datetime"
	}
	return fmt.Sprintf("%T", v)
}

func asInt(v any) (int64, string) {
	n, ok := v.(int64)
	if !ok {
		return 0, "want an integer, got " + typeName(v)
	}
	return n, ""
}

func asFloat(v any) (float64, string) {
	switch v := v.(type) {
	case int64:
		return float64(v), ""
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Sprintf("must be finite, got %v", v)
		}
		return v, ""
	}
	return 0, "want a number, got " + typeName(v)
}

// checkDuration parses "30m", "1h30m", … .
func checkDuration(v any) (time.Duration, string) {
	s, ok := v.(string)
	if !ok {
		return 0, "want a duration string such as \"30m\", got " + typeName(v)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Sprintf("bad duration %q (want e.g. \"90s\", \"30m\", \"2h\")", s)
	}
	if d < 0 {
		return 0, fmt.Sprintf("must not be negative, got %s", s)
	}
	return d, ""
}
