package train_test

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"peftbench/methods"
	"peftbench/safetensors"
	"peftbench/train"
)

// TestEfficiencySummaries checks the efficiency summaries of a few trials:
// all present (tokens_per_s on text tasks only), optimizer_state_bytes
// from the optimiser's state (AdamW two float32 moments per trainable
// element, SGD with momentum one, plain SGD none), adapter_bytes the size
// of the adapter file, which holds exactly the trainable tensors under
// HF PEFT's names.
func TestEfficiencySummaries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     func() train.Config
		perElem float64 // optimizer_state_bytes per trainable element
		text    bool
		tensors []string // the adapter file's tensors
	}{
		{"lora adamw", func() train.Config { return teacherShift("lora", map[string]any{"rank": 4}) }, 8, false,
			[]string{"fc1.lora_A.weight", "fc1.lora_B.weight", "fc2.lora_A.weight", "fc2.lora_B.weight", "head.lora_A.weight", "head.lora_B.weight"}},
		{"lora sgd momentum", func() train.Config {
			c := teacherShift("lora", map[string]any{"rank": 4})
			c.Optimizer, c.Momentum, c.Layers = "sgd", 0.9, []string{"fc2"}
			return c
		}, 4, false, []string{"fc2.lora_A.weight", "fc2.lora_B.weight"}},
		{"lora sgd", func() train.Config {
			c := teacherShift("lora", map[string]any{"rank": 4})
			c.Optimizer, c.Layers = "sgd", []string{"fc2"}
			return c
		}, 0, false, []string{"fc2.lora_A.weight", "fc2.lora_B.weight"}},
		{"full", func() train.Config {
			c := teacherShift("full", nil)
			c.Layers = []string{"head"}
			return c
		}, 8, false, []string{"head.weight", "head.bias"}},
		{"ia3 transformer", func() train.Config {
			c := modArith("ia3", nil)
			c.Layers = []string{"blocks.0.attn.k", "blocks.0.mlp.down"}
			return c
		}, 8, true, []string{"blocks.0.attn.k.ia3_l", "blocks.0.mlp.down.ia3_l"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, dir, err := run(t, tc.cfg())
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range train.EfficiencySummaries {
				if k == "tokens_per_s" {
					continue // below
				}
				if v, ok := rec.summary[k]; !ok || v < 0 || math.IsNaN(v) {
					t.Errorf("%s = %v (reported %v)", k, v, ok)
				}
			}
			for _, k := range []string{"examples_per_s", "ms_per_step", "forward_ms_unmerged", "forward_ms_merged", "peak_mem_bytes", "train_seconds", "adapter_bytes"} {
				if !(rec.summary[k] > 0) {
					t.Errorf("%s = %v, want > 0", k, rec.summary[k])
				}
			}
			if _, ok := rec.summary["tokens_per_s"]; ok != tc.text {
				t.Errorf("tokens_per_s reported: %v, want %v (text task)", ok, tc.text)
			}
			trainable := rec.summary["trainable_params"]
			if got, want := rec.summary["optimizer_state_bytes"], tc.perElem*trainable; got != want {
				t.Errorf("optimizer_state_bytes = %v, want %v·%v = %v", got, tc.perElem, trainable, want)
			}

			if rec.artifacts["adapter"] != train.AdapterFile {
				t.Fatalf("artifacts %v lack adapter", rec.artifacts)
			}
			path := filepath.Join(dir, train.AdapterFile)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.summary["adapter_bytes"]; got != float64(fi.Size()) {
				t.Errorf("adapter_bytes = %v, the file has %d", got, fi.Size())
			}
			f, err := safetensors.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var names []string
			n := 0
			for _, name := range f.Names() {
				info, _ := f.Info(name)
				n += info.NumElements()
				names = append(names, strings.TrimPrefix(name, "base_model.model."))
			}
			sort.Strings(names)
			want := slices.Clone(tc.tensors)
			sort.Strings(want)
			if !slices.Equal(names, want) {
				t.Errorf("adapter tensors %v, want %v under base_model.model.", names, want)
			}
			if float64(n) != trainable {
				t.Errorf("adapter file holds %d elements, trainable_params = %v", n, trainable)
			}
		})
	}
}

// TestMergeError: for every registered method (they all merge) the merged
// model's logits on the forward batch stay within 1e-5 of the adapter's,
// on the reference MLP and, for methods that merge a bias or a norm, and
// LoRA, on the transformer too. A merge that forgets the bias (IA3, RoAd)
// or a norm (LN tuning) fails it.
func TestMergeError(t *testing.T) {
	names := methods.Names()
	sort.Strings(names)
	type trial struct {
		name string
		cfg  train.Config
	}
	var trials []trial
	for _, name := range names {
		opts := map[string]any{}
		info, _ := methods.Lookup(name)
		if k := info.Info().RankOptionName(); k != "" {
			opts[k] = 4
			if k == "n_frequency" {
				opts[k] = 64
			}
		}
		if !methods.TunesNorms(name) {
			cfg := teacherShift(name, opts)
			cfg.Layers = []string{"fc1", "fc2"} // as TestEveryMethod
			if lr := info.Info().LR; lr > 0 {
				cfg.LR = lr
			}
			trials = append(trials, trial{name + "/mlp", cfg})
		}
		if methods.TunesNorms(name) || name == "lora" || name == "ia3" || name == "road" {
			cfg := modArith(name, opts)
			cfg.Layers = []string{"blocks.0.attn.q", "blocks.0.attn.v", "blocks.0.mlp.up"}
			trials = append(trials, trial{name + "/transformer", cfg})
		}
	}
	for _, tc := range trials {
		t.Run(tc.name, func(t *testing.T) {
			rec, _, err := run(t, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if e, ok := rec.summary["merge_error"]; !ok || !(e <= 1e-5) {
				t.Errorf("merge_error = %v (reported %v), want ≤ 1e-5", e, ok)
			}
		})
	}
}

// TestPeakMem: a tiny MLP trial's peak is its own — far below the
// process's memory, the same with another trial running beside it — and
// counts what it should: at least its models and optimiser state, and
// AdamW's state exactly over plain SGD's none.
func TestPeakMem(t *testing.T) {
	cfg := teacherShift("lora", map[string]any{"rank": 4})
	alone, _, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	peak := alone.summary["peak_mem_bytes"]
	if peak >= 100<<20 {
		t.Errorf("peak_mem_bytes = %v, want < 100 MB for a tiny MLP", peak)
	}
	// Two copies of the base MLP (base and tuned) with LoRA's factors,
	// gradients and moments: a floor the peak must clear.
	base := 4.0 * (64*16 + 64 + 64*64 + 64 + 5*64 + 5)
	if floor := 2*base + 4*4*alone.summary["trainable_params"]; peak < floor {
		t.Errorf("peak_mem_bytes = %v, below the models' and optimiser's %v", peak, floor)
	}

	// Beside a bigger trial, in the same process.
	var wg sync.WaitGroup
	var other *recorder
	var otherErr error
	wg.Go(func() {
		big := modArith("full", nil)
		other, _, otherErr = run(t, big)
	})
	beside, _, err := run(t, cfg)
	wg.Wait()
	if err != nil || otherErr != nil {
		t.Fatal(err, otherErr)
	}
	if got := beside.summary["peak_mem_bytes"]; got != peak {
		t.Errorf("peak_mem_bytes = %v beside another trial (%v), %v alone", got, other.summary["peak_mem_bytes"], peak)
	}

	sgd := cfg
	sgd.Optimizer = "sgd"
	plain, _, err := run(t, sgd)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := peak-plain.summary["peak_mem_bytes"], alone.summary["optimizer_state_bytes"]; got != want {
		t.Errorf("peak with AdamW − peak with SGD = %v, want AdamW's state %v", got, want)
	}
}
