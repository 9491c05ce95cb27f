package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"peftbench/results"
	"peftbench/train"
)

// TestLMTrialAdapterSpectra is issue 24's acceptance 3 end to end: a
// LoRA-family trial of the lm task (bench run, [analysis] spectra) writes
// its adapter as a Hugging Face PEFT folder (train.PEFTAdapterDir), and
// `bench spectra --base <checkpoint> --adapter <that folder>` counts the
// trial's own intruder dimensions (trials.parquet, taken from the trial's
// weights file), per ε. GPT-2 (Conv1D: fan_in_fan_out) and Llama, a plain
// and a residual method (PiSSA: the frozen initial factors folded in at
// rank 2r, as HF PEFT's save_pretrained converts them).
//
// Planted bugs confirmed to fail it: savePEFT passing s·r as the scale
// (counts 0 against the trial's); PEFTFactors dropping PiSSA's initial
// factors (the pissa trials' counts differ).
func TestLMTrialAdapterSpectra(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: trains lm trials")
	}
	for _, family := range []string{"gpt2", "llama"} {
		t.Run(family, func(t *testing.T) {
			dir := t.TempDir()
			model, data := filepath.Join(dir, "model"), filepath.Join(dir, "data")
			var out, errb bytes.Buffer
			if err := runMakeLM([]string{"--family", family, "--out", model, "--dtype", "f32", "--seed", "5",
				"--data", "--data-dir", data}, &out, &errb); err != nil {
				t.Fatalf("make-lm: %v\n%s", err, errb.String())
			}
			sweep := filepath.Join(dir, "adapter.toml")
			if err := os.WriteFile(sweep, []byte(fmt.Sprintf(trialAdapterSweep, model, data, data, data)), 0o644); err != nil {
				t.Fatal(err)
			}
			res := filepath.Join(dir, "results")
			out.Reset()
			errb.Reset()
			if err := runRun([]string{sweep, "--out", res, "--workers", "1", "--cache", filepath.Join(dir, "cache")}, &out, &errb); err != nil {
				t.Fatalf("bench run: %v\n%s", err, errb.String())
			}
			rows, err := results.ReadTrials(filepath.Join(res, "adapter", results.TrialsFile))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 2 {
				t.Fatalf("%d trials, want 2", len(rows))
			}
			for _, row := range rows {
				adir := filepath.Join(res, "adapter", results.TrialsDir, row.TrialID, train.PEFTAdapterDir)
				var cfg map[string]any
				buf, err := os.ReadFile(filepath.Join(adir, "adapter_config.json"))
				if err != nil {
					t.Fatalf("%s: the trial wrote no PEFT adapter folder: %v", row.Method, err)
				}
				if err := json.Unmarshal(buf, &cfg); err != nil {
					t.Fatal(err)
				}
				if cfg["peft_type"] != "LORA" || cfg["base_model_name_or_path"] != model || cfg["fan_in_fan_out"] != (family == "gpt2") {
					t.Errorf("%s: adapter_config.json %v", row.Method, cfg)
				}
				rep, err := spectra(spectraOptions{Base: model, Adapter: adir, Eps: []float64{0.3, 0.5}, TopK: 10})
				if err != nil {
					t.Fatalf("%s: bench spectra --adapter: %v", row.Method, err)
				}
				if len(row.Intruders) != 2 {
					t.Fatalf("%s: trial intruders %v, want 2 thresholds", row.Method, row.Intruders)
				}
				t.Logf("%s %s: %d layers; intruders at ε 0.3, 0.5: trial %d, %d; bench spectra --adapter %d, %d",
					family, row.Method, len(rep.Layers), row.Intruders[0].Count, row.Intruders[1].Count, rep.Total[0], rep.Total[1])
				if row.Intruders[0].Count == 0 {
					t.Errorf("%s: the trial has no intruder at ε = 0.3: the comparison would be vacuous", row.Method)
				}
				for i, ic := range row.Intruders {
					if int64(rep.Total[i]) != ic.Count {
						t.Errorf("%s: ε = %g: bench spectra --adapter counts %d intruders, the trial %d", row.Method, ic.Epsilon, rep.Total[i], ic.Count)
					}
				}
			}
		})
	}
}

const trialAdapterSweep = `name = "adapter"
seeds = 1

[grid]
method = ["lora", "pissa"]
rank = [4]
task = ["lm"]

[defaults]
steps = 12
batch = 4
lr = 2e-2
grad_clip = 1.0
alpha = "2r"
targets = ["all-linear"]

[task.lm]
model = %q
train = "%s/train.jsonl"
eval = "%s/eval.jsonl"
retain = "%s/retain.jsonl"
seq_len = 32
eval_size = 8

[analysis]
spectra = true
epsilons = [0.3, 0.5]
`
