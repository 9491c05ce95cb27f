package tasks

import (
	"errors"
	"testing"
)

// TestValidateAtLoad: option combinations that cannot build are refused by
// ResolveOptions (what a sweep calls when it loads), with an *OptionError
// naming the key, rather than by a panic when the base model is built.
func TestValidateAtLoad(t *testing.T) {
	for _, tc := range []struct {
		task string
		opts map[string]any
		key  string
	}{
		{"modarith", map[string]any{"dim": 30}, "dim"},
		{"modarith", map[string]any{"dim": 9}, "dim"},
		{"text-code", map[string]any{"dim": 30, "heads": 4}, "heads"},
		{"safety-guard", map[string]any{"dim": 16, "trigger_size": 20}, "trigger_size"},
	} {
		_, err := ResolveOptions(tc.task, tc.opts)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Name != tc.task || oe.Key != tc.key {
			t.Errorf("ResolveOptions(%s, %v) = %v, want an *OptionError on %s", tc.task, tc.opts, err, tc.key)
			continue
		}
		if _, err := Layers(tc.task, tc.opts); err == nil {
			t.Errorf("Layers(%s, %v) accepted the options", tc.task, tc.opts)
		}
	}
	// Valid combinations still resolve.
	if _, err := ResolveOptions("modarith", map[string]any{"dim": 32}); err != nil {
		t.Errorf("modarith dim 32: %v", err)
	}
	if _, err := ResolveOptions("text-code", map[string]any{"dim": 32, "heads": 4}); err != nil {
		t.Errorf("text-code dim 32 heads 4: %v", err)
	}
}
