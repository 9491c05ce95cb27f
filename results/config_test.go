package results

import (
	"slices"
	"testing"
)

func TestConfigPairs(t *testing.T) {
	got, err := ConfigPairs(`{"sweep":"s","trial_id":"x","index":3,"seed":1,"method":"lora","task":"t","rank":8,"method_options":{"alpha":16,"rank":8},"train":{"lr":0.001,"targets":["fc1"]}}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"method_options.alpha=16", "train.lr=0.001", `train.targets=["fc1"]`}
	if !slices.Equal(got, want) {
		t.Errorf("ConfigPairs = %q, want %q", got, want)
	}
	if _, err := ConfigPairs("{"); err == nil {
		t.Error("ConfigPairs of bad JSON: no error")
	}
}
