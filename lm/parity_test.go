package lm

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"peftbench/nn"
)

// python is the interpreter of the independent references (Debian's, with
// torch); never a virtualenv's.
const python = "/usr/bin/python3"

var (
	parityOnce sync.Once
	parityDir  string
	parityErr  error
	paritySkip string
)

// parityFolders runs testdata/parity.py once per test binary and returns
// the folder holding its cases; it skips t when python or torch is missing.
func parityFolders(t *testing.T) string {
	t.Helper()
	parityOnce.Do(func() {
		if _, err := os.Stat(python); err != nil {
			paritySkip = python + " not found: the Python parity reference cannot run"
			return
		}
		dir, err := os.MkdirTemp("", "lm-parity-")
		if err != nil {
			parityErr = err
			return
		}
		parityDir = dir
		cmd := exec.Command(python, filepath.Join("testdata", "parity.py"), dir)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			paritySkip = "torch is not importable by " + python + ": " + string(out)
			return
		}
		if err != nil {
			parityErr = fmt.Errorf("parity.py: %v\n%s", err, out)
		}
	})
	if paritySkip != "" {
		t.Skip(paritySkip)
	}
	if parityErr != nil {
		t.Fatal(parityErr)
	}
	return parityDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if parityDir != "" {
		os.RemoveAll(parityDir)
	}
	os.Exit(code)
}

// parityCases are the folders parity.py writes: every family, GQA 4/2
// (llama, qwen2), tied heads (gpt2, llama-tied-sharded) and untied ones,
// partial rotary 0.25 and 0.5 (neox), parallel and sequential residuals,
// Qwen's q/k/v biases, rope_theta 1e5, 2e4, 5e5 and 1e6, Llama 3's
// rope_scaling (frequencies in all three of its bands), an explicit
// head_dim ≠ hidden/heads, both config spellings, both GPT-2 key prefixes,
// buffers to skip (GPT-2 masks, NeoX bool mask and inv_freq), F16 (neox),
// BF16 (qwen2) and a sharded folder.
var parityCases = []string{"gpt2", "gpt2-bare", "neox", "neox-sequential", "llama", "llama-tied-sharded", "llama3-scaled", "qwen2"}

// TestLogitsMatchPython is the first half of acceptance 1: the logits of
// each tiny checkpoint equal those of parity.py's own forward, to 1e-5
// relative (max |Δ| / max |logit|; measured 3e-7 to 1.1e-6), and Loss
// equals its shifted, −100-ignoring cross-entropy to 1e-5.
//
// Planted bugs, each confirmed to fail this test (relative logit error
// measured, the cases that caught it):
//   - RoPE interleaved (pairs 2i, 2i+1) instead of rotate_half: neox 0.33,
//     neox-sequential 0.54, llama 1.0, llama-tied-sharded 0.62, qwen2 0.56;
//   - NeoX activation tanh-GELU instead of erf-GELU: neox 2.6e-4,
//     neox-sequential 2.2e-4;
//   - NeoX q|k|v as three blocks instead of per head: neox 0.82,
//     neox-sequential 1.2;
//   - GQA kv head h%nKV instead of h/nRep: llama 1.4, llama-tied-sharded
//     1.2, qwen2 1.0 (and nn's TestGroupedAttentionHeadMap);
//   - GPT-2 Conv1D weights read as [out, in] without the transpose: gpt2
//     1.2, gpt2-bare 1.6;
//   - Loss without the shift (position t scored against label t): every
//     case's loss differs (3.44 against 6.12 for gpt2).
func TestLogitsMatchPython(t *testing.T) {
	dir := parityFolders(t)
	for _, name := range parityCases {
		t.Run(name, func(t *testing.T) {
			d := filepath.Join(dir, name)
			m, err := Load(d)
			if err != nil {
				t.Fatal(err)
			}
			var in struct {
				Batch, Seq  int
				IDs, Labels []int
				Loss        float64
			}
			data, err := os.ReadFile(filepath.Join(d, "ids.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &in); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(d, "logits.f32"))
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, len(raw)/4)
			for i := range want {
				want[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			g := &nn.Graph{NoGrad: true}
			got := m.Logits(g, in.IDs, in.Batch, in.Seq)
			if len(got.Data) != len(want) {
				t.Fatalf("%d logits, python has %d", len(got.Data), len(want))
			}
			var diff, scale float64
			for i := range want {
				diff = math.Max(diff, math.Abs(float64(got.Data[i]-want[i])))
				scale = math.Max(scale, math.Abs(float64(want[i])))
			}
			rel := diff / scale
			t.Logf("%s (%s, %d layers, vocab %d): max |Δ| %.3g, max |logit| %.3g, relative %.3g", name, m.Cfg.ModelType, m.Cfg.Layers, m.Cfg.Vocab, diff, scale, rel)
			if rel > 1e-5 {
				t.Errorf("logits differ from parity.py's: relative %.3g > 1e-5", rel)
			}
			// The loss: shifted labels, −100 ignored, one mean over the batch.
			loss := m.Loss(g, in.IDs, in.Labels, in.Batch, in.Seq).Data[0]
			if d := math.Abs(float64(loss) - in.Loss); d > 1e-5*in.Loss {
				t.Errorf("Loss %.7g, parity.py %.7g", loss, in.Loss)
			}
		})
	}
}
