package runner_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"peftbench/methods"
)

// anyPython returns a Python 3 interpreter (PEFTBENCH_PYTHON, else
// /usr/bin/python3, else python3 on PATH) or skips the test. The option
// table of the reference trainer needs neither torch nor peft.
func anyPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{os.Getenv("PEFTBENCH_PYTHON"), "/usr/bin/python3", "python3"} {
		if py == "" {
			continue
		}
		if p, err := exec.LookPath(py); err == nil {
			return p
		}
	}
	t.Skip("no Python 3 to check trainers/pytorch/train.py with; set PEFTBENCH_PYTHON")
	return ""
}

// peftProbe imports train.py (torch and peft are imported only inside its
// functions) and answers, as JSON on stdout, its option table and
// peft_config_args for every request read as JSON from stdin.
const peftProbe = `
import json, sys
sys.path.insert(0, sys.argv[1])
import train
out = {"table": train.peft_table(), "results": []}
for q in json.load(sys.stdin):
    try:
        cls, kwargs, own = train.peft_config_args(q["method"], q["options"], q["steps"])
        out["results"].append({"config": cls, "kwargs": kwargs, "trainer": own})
    except train.Fail as e:
        out["results"].append({"error": str(e)})
json.dump(out, sys.stdout)
`

type peftQuery struct {
	Method  string         `json:"method"`
	Options map[string]any `json:"options"`
	Steps   int            `json:"steps"`
}

type peftAnswer struct {
	Config  *string        `json:"config"`
	Kwargs  map[string]any `json:"kwargs"`
	Trainer map[string]any `json:"trainer"`
	Error   string         `json:"error"`
}

type peftTable map[string]struct {
	Config  *string           `json:"config"`
	Refused string            `json:"refused"`
	Options map[string]string `json:"options"`
}

func askPEFT(t *testing.T, qs []peftQuery) (peftTable, []peftAnswer) {
	t.Helper()
	py := anyPython(t)
	dir, err := filepath.Abs(filepath.Join("..", "trainers", "pytorch"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(qs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", peftProbe, dir)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s train.py probe: %v\n%s", py, err, stderr.String())
	}
	var got struct {
		Table   peftTable    `json:"table"`
		Results []peftAnswer `json:"results"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("probe output: %v\n%s", err, out)
	}
	if len(got.Results) != len(qs) {
		t.Fatalf("probe answered %d of %d queries", len(got.Results), len(qs))
	}
	return got.Table, got.Results
}

// defaults returns a method's resolved options at its default rank, as a
// trial's export carries them.
func defaults(t *testing.T, info methods.Info) map[string]any {
	t.Helper()
	o, err := methods.ResolveOptions(info.Name, 0, nil)
	if err != nil {
		t.Fatalf("%s: %v", info.Name, err)
	}
	return map[string]any(o)
}

// TestPEFTOptionTable holds the reference trainer's HF PEFT option table
// (trainers/pytorch/train.py PEFT_METHODS) to the method registry: every
// option of every method is listed (a config field, the trainer's own, or
// not mapped in a method the peft backend refuses), the table lists nothing
// the registry does not have, every method maps its resolved defaults
// (or is refused with its reason), and an option outside the table is an
// error, never a silent default.
func TestPEFTOptionTable(t *testing.T) {
	infos := methods.Infos()
	var qs []peftQuery
	for _, info := range infos {
		o := defaults(t, info)
		qs = append(qs, peftQuery{Method: info.Name, Options: o, Steps: 100})
		bogus := map[string]any{"not_an_option": 1}
		for k, v := range o {
			bogus[k] = v
		}
		qs = append(qs, peftQuery{Method: info.Name, Options: bogus, Steps: 100})
	}
	table, res := askPEFT(t, qs)

	registered := map[string]bool{}
	for i, info := range infos {
		registered[info.Name] = true
		entry, ok := table[info.Name]
		if !ok {
			t.Errorf("method %s is not in train.py's PEFT_METHODS", info.Name)
			continue
		}
		var want []string
		for _, o := range info.Options {
			want = append(want, o.Name)
			rule, ok := entry.Options[o.Name]
			switch {
			case !ok:
				t.Errorf("method %s option %s is not mapped in train.py's PEFT_METHODS", info.Name, o.Name)
			case rule == "not mapped" && entry.Refused == "":
				t.Errorf("method %s option %s is marked not mapped, but the peft backend runs the method", info.Name, o.Name)
			}
		}
		for name := range entry.Options {
			if !slices.Contains(want, name) {
				t.Errorf("train.py maps option %s of method %s, which the method does not have", name, info.Name)
			}
		}

		ok1, bad := res[2*i], res[2*i+1]
		switch {
		case entry.Refused != "":
			if !strings.Contains(ok1.Error, entry.Refused) {
				t.Errorf("method %s: error %q, want the refusal %q", info.Name, ok1.Error, entry.Refused)
			}
		case ok1.Error != "":
			t.Errorf("method %s with its default options: %s", info.Name, ok1.Error)
		case !strings.Contains(bad.Error, "not_an_option"):
			t.Errorf("method %s with an unknown option: %+v, want an error naming it", info.Name, bad)
		}
	}
	for name := range table {
		if !registered[name] {
			t.Errorf("train.py's PEFT_METHODS has method %s, which is not registered", name)
		}
	}
}

// TestPEFTOptionValues checks the values the table produces: the renames
// (LoRA+ lr_ratio, VeRA d_initial and projection_seed, dropout and alpha
// fields, LoRA init choices) and AdaLoRA's resolved init rank and schedule,
// whose fractions of the run become steps rounded as methods/adalora.go
// rounds (math.Round: halves away from zero, not Python's round).
func TestPEFTOptionValues(t *testing.T) {
	opts := func(method string, set map[string]any) map[string]any {
		info, err := methods.Lookup(method)
		if err != nil {
			t.Fatal(err)
		}
		o := defaults(t, info.Info())
		for k, v := range set {
			o[k] = v
		}
		return o
	}
	type check struct {
		q       peftQuery
		kwargs  map[string]any // expected config fields (a subset)
		trainer map[string]any // expected trainer options (all)
	}
	checks := []check{
		{peftQuery{"loraplus", opts("loraplus", map[string]any{"lr_ratio": 4.0, "alpha": 16.0, "dropout": 0.1}), 10},
			map[string]any{"r": 8.0, "lora_alpha": 16.0, "lora_dropout": 0.1, "init_lora_weights": true}, map[string]any{"lr_ratio": 4.0}},
		{peftQuery{"vera", opts("vera", map[string]any{"d_initial": 0.3, "projection_seed": 7.0, "dropout": 0.05}), 10},
			map[string]any{"r": 256.0, "d_initial": 0.3, "projection_prng_key": 7.0, "vera_dropout": 0.05}, map[string]any{}},
		{peftQuery{"lora", opts("lora", map[string]any{"init": "gaussian"}), 10}, map[string]any{"init_lora_weights": "gaussian"}, map[string]any{}},
		{peftQuery{"rslora", opts("rslora", map[string]any{"init": "pissa"}), 10}, map[string]any{"init_lora_weights": "pissa", "use_rslora": true}, map[string]any{}},
		{peftQuery{"dora", opts("dora", nil), 10}, map[string]any{"init_lora_weights": true, "use_dora": true}, map[string]any{}},
		{peftQuery{"pissa", opts("pissa", nil), 10}, map[string]any{"init_lora_weights": "pissa"}, map[string]any{}},
		{peftQuery{"olora", opts("olora", nil), 10}, map[string]any{"init_lora_weights": "olora"}, map[string]any{}},
		{peftQuery{"lora-fa", opts("lora-fa", map[string]any{"precondition": false}), 10}, map[string]any{"r": 8.0}, map[string]any{"precondition": false}},
		{peftQuery{"full", opts("full", nil), 10}, map[string]any{}, map[string]any{}},
	}
	// AdaLoRA: init_rank 0 → ⌈1.5·r⌉; tinit, tfinal fractions → steps.
	// Ties first (0.1·5 = 0.5 → 1 and 0.25·10 = 2.5 → 3, where Python's
	// round gives 0 and 2), then random fractions and run lengths.
	type ada struct {
		rank, initRank int
		tinit, tfinal  float64
		steps          int
	}
	cases := []ada{{8, 0, 0.1, 0.3, 5}, {5, 0, 0.25, 0.35, 10}, {7, 0, 0.5, 0.1, 3}, {8, 20, 0.1, 0.2, 500}, {1, 0, 0, 0, 1}}
	rng := rand.New(rand.NewPCG(15, 15))
	for range 200 {
		r := 1 + rng.IntN(64)
		init := 0
		if rng.IntN(3) == 0 {
			init = r + rng.IntN(16)
		}
		ti := float64(rng.IntN(1000)) / 2000 // multiples of 0.0005: many exact halves
		tf := float64(rng.IntN(1000)) / 2000
		cases = append(cases, ada{r, init, ti, tf, 1 + rng.IntN(5000)})
	}
	for _, c := range cases {
		r0 := c.initRank
		if r0 == 0 {
			r0 = int(math.Ceil(1.5 * float64(c.rank)))
		}
		o := opts("adalora", map[string]any{"rank": float64(c.rank), "init_rank": float64(c.initRank), "tinit": c.tinit, "tfinal": c.tfinal,
			"delta_t": 3.0, "beta1": 0.8, "beta2": 0.9, "orth_reg": 0.25, "alpha": 32.0, "dropout": 0.1})
		checks = append(checks, check{peftQuery{"adalora", o, c.steps}, map[string]any{
			"target_r": float64(c.rank), "init_r": float64(r0),
			"tinit": math.Round(c.tinit * float64(c.steps)), "tfinal": math.Round(c.tfinal * float64(c.steps)),
			"total_step": float64(c.steps), "deltaT": 3.0, "beta1": 0.8, "beta2": 0.9, "orth_reg_weight": 0.25,
			"lora_alpha": 32.0, "lora_dropout": 0.1, "init_lora_weights": true,
		}, map[string]any{}})
	}
	qs := make([]peftQuery, len(checks))
	for i, c := range checks {
		qs[i] = c.q
	}
	_, res := askPEFT(t, qs)
	for i, c := range checks {
		got := res[i]
		if got.Error != "" {
			t.Errorf("%s %v: %s", c.q.Method, c.q.Options, got.Error)
			continue
		}
		var bad []string
		for k, want := range c.kwargs {
			if v, ok := got.Kwargs[k]; !ok || v != want {
				bad = append(bad, k)
			}
		}
		if _, ok := got.Kwargs["r"]; ok && c.q.Method == "adalora" {
			bad = append(bad, "r (HF AdaLoRA ignores r: init_r is the initial rank)")
		}
		if len(got.Trainer) != len(c.trainer) {
			bad = append(bad, "trainer options")
		}
		for k, want := range c.trainer {
			if got.Trainer[k] != want {
				bad = append(bad, "trainer "+k)
			}
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			t.Errorf("%s over %d steps, options %v:\n got config %v kwargs %v trainer %v\nwant kwargs ⊇ %v trainer %v\n(wrong: %s)",
				c.q.Method, c.q.Steps, c.q.Options, deref(got.Config), got.Kwargs, got.Trainer, c.kwargs, c.trainer, strings.Join(bad, ", "))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

// peftHooksProbe checks the peft backend's own pieces on a stand-in for a
// peft-wrapped layer (no peft needed): LoRA-FA's preconditioner against
// (1/s²)·g_B·(A·Aᵀ + 1e-8·I)⁻¹ computed by a solve, and AdaLoRA's
// orthogonality penalty against its formula. Prints the worst relative
// errors.
const peftHooksProbe = `
import sys, torch
sys.path.insert(0, sys.argv[1])
import train
torch.manual_seed(0)
class Layer(torch.nn.Module):
    def __init__(self, i, o, r, s):
        super().__init__()
        self.lora_A = torch.nn.ModuleDict({"default": torch.nn.Linear(i, r, bias=False)})
        self.lora_B = torch.nn.ModuleDict({"default": torch.nn.Linear(r, o, bias=False)})
        self.scaling = {"default": s}
model = torch.nn.Sequential(Layer(12, 7, 3, 2.0), Layer(7, 5, 4, 0.5))
p = train.PEFT.__new__(train.PEFT)
p.torch, p.model = torch, model
p.lorafa, p.adalora = {"precondition": True}, None
want = []
for m in model:
    a, b = m.lora_A["default"].weight, m.lora_B["default"].weight
    b.grad = torch.randn_like(b)
    a64 = a.detach().double()
    gram = a64 @ a64.t() + 1e-8 * torch.eye(a64.shape[0], dtype=torch.float64)
    s = m.scaling["default"]
    want.append(torch.linalg.solve(gram, b.grad.double().t()).t() / (s * s))
p.before_step()
fa = max(((m.lora_B["default"].weight.grad.double() - w).norm() / w.norm()).item() for m, w in zip(model, want))
p.lorafa, p.adalora = None, {"orth_reg_weight": 0.3}
terms = []
for m in model:
    a, b = m.lora_A["default"].weight.double(), m.lora_B["default"].weight.double()
    terms.append((a @ a.t() - torch.eye(a.shape[0], dtype=torch.float64)).pow(2).sum().sqrt())
    terms.append((b.t() @ b - torch.eye(b.shape[1], dtype=torch.float64)).pow(2).sum().sqrt())
want = 0.3 * sum(terms) / len(terms)
got = p.regularizer()
reg = abs(got.item() - want.item()) / want.item()
got.backward()
grads = all(m.lora_A["default"].weight.grad is not None for m in model)
print(fa, reg, grads)
`

// TestPEFTHooks runs the peft backend's LoRA-FA preconditioner and AdaLoRA
// regulariser (needs torch, not peft).
func TestPEFTHooks(t *testing.T) {
	py := torchPython(t)
	dir, err := filepath.Abs(filepath.Join("..", "trainers", "pytorch"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", peftHooksProbe, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var fa, reg float64
	var grads string
	if _, err := fmt.Sscan(string(out), &fa, &reg, &grads); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	if fa > 1e-6 {
		t.Errorf("LoRA-FA preconditioned gradient: relative error %.3g, want ≤ 1e-6", fa)
	}
	if reg > 1e-5 {
		t.Errorf("AdaLoRA orthogonality penalty: relative error %.3g, want ≤ 1e-5", reg)
	}
	if grads != "True" {
		t.Errorf("the penalty did not reach lora_A's gradient")
	}
}
