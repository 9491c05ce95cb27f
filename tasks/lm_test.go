package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"peftbench/lm"
	"peftbench/lmfolder"
	"peftbench/nn"
)

// lmOpts writes a tiny checkpoint of family into a temp dir and returns
// the lm task's options for it.
func lmOpts(t *testing.T, family string, spec lmfolder.Spec) map[string]any {
	t.Helper()
	o, err := writeTinyLM(t.TempDir(), family, spec)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func editJSON(t *testing.T, path string, f func(m map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, _ = json.Marshal(m)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLMBadInput: every bad input is refused when options resolve (what
// `bench plan` does), with the offending file (and line) named and the
// option key set. Planted bugs caught: Validate skipping a check (no
// error), or an error without the file.
func TestLMBadInput(t *testing.T) {
	cases := []struct {
		name   string
		spec   lmfolder.Spec
		break_ func(t *testing.T, o map[string]any)
		key    string
		want   []string // substrings of the error
	}{
		{"no config.json", lmfolder.Spec{}, func(t *testing.T, o map[string]any) {
			os.Remove(filepath.Join(o["model"].(string), "config.json"))
		}, "model", []string{"config.json"}},
		{"unknown architecture", lmfolder.Spec{}, func(t *testing.T, o map[string]any) {
			editJSON(t, filepath.Join(o["model"].(string), "config.json"), func(m map[string]any) {
				m["model_type"], m["architectures"] = "bert", []string{"BertForMaskedLM"}
			})
		}, "model", []string{"config.json", "bert"}},
		{"missing shard", lmfolder.Spec{Shards: 2}, func(t *testing.T, o map[string]any) {
			os.Remove(filepath.Join(o["model"].(string), "model-00002-of-00002.safetensors"))
		}, "model", []string{"model-00002-of-00002.safetensors"}},
		{"tokenizer larger than the embedding", lmfolder.Spec{}, func(t *testing.T, o map[string]any) {
			editJSON(t, filepath.Join(o["model"].(string), "config.json"), func(m map[string]any) { m["vocab_size"] = 100 })
		}, "model", []string{"tokenizer.json", "config.json", "100"}},
		{"JSONL line without the field", lmfolder.Spec{}, func(t *testing.T, o map[string]any) {
			p := o["eval"].(string)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, []byte("{\"txt\": \"x\"}\n")...), 0o644)
		}, "eval", []string{"eval.jsonl:", "\"text\""}},
		{".txt not UTF-8", lmfolder.Spec{}, func(t *testing.T, o map[string]any) {
			p := filepath.Join(filepath.Dir(o["train"].(string)), "bad.txt")
			os.WriteFile(p, []byte("one\n\ntwo \xff\n"), 0o644)
			o["retain"] = p
		}, "retain", []string{"bad.txt", "UTF-8"}},
		{"seq_len above the positions", lmfolder.Spec{Seq: 64}, func(t *testing.T, o map[string]any) {
			o["seq_len"] = 65
		}, "seq_len", []string{"config.json", "64"}},
		{"unset variable", lmfolder.Spec{}, func(t *testing.T, o map[string]any) {
			o["train"] = "$PEFTBENCH_SURELY_UNSET_VAR/train.jsonl"
		}, "train", []string{"$PEFTBENCH_SURELY_UNSET_VAR"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := lmOpts(t, "neox", c.spec)
			if _, err := ResolveOptions("lm", o); err != nil {
				t.Fatalf("before breaking: %v", err)
			}
			c.break_(t, o)
			_, err := ResolveOptions("lm", o)
			if err == nil {
				t.Fatal("accepted")
			}
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Key != c.key {
				t.Errorf("error %v: want an option error on %q", err, c.key)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestLMIdentity: the identity hashes content: the same folder and data
// copied elsewhere give the same identity (and $VARS resolve), one byte
// changed in the weights or a data file a different one. Planted bugs
// caught: hashing paths (copies differ), skipping a weight shard or a
// data file (the changed byte goes unnoticed), no digest cache (files
// reread for every trial).
func TestLMIdentity(t *testing.T) {
	o := lmOpts(t, "llama", lmfolder.Spec{Shards: 2})
	copyDir := func(src string) string {
		dst := t.TempDir()
		entries, _ := os.ReadDir(src)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
		}
		return dst
	}
	ident := func(o map[string]any) string {
		t.Helper()
		r, err := ResolveOptions("lm", o)
		if err != nil {
			t.Fatal(err)
		}
		id, err := Identity("lm", r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(id)
		return string(b)
	}
	base := ident(o)
	reads := digestReads.Load()
	for range 50 {
		if ident(o) != base {
			t.Fatal("identity changed between calls")
		}
	}
	if n := digestReads.Load() - reads; n != 0 {
		t.Errorf("50 more identities read %d files, want 0 (cached per path, size, mtime)", n)
	}
	if strings.Contains(base, o["model"].(string)) {
		t.Errorf("identity holds the path: %s", base)
	}
	moved := maps.Clone(o)
	moved["model"] = copyDir(o["model"].(string))
	data := copyDir(filepath.Dir(o["train"].(string)))
	t.Setenv("LMTEST_DATA", data)
	for _, k := range []string{"train", "eval", "retain"} {
		moved[k] = "$LMTEST_DATA/" + filepath.Base(o[k].(string))
	}
	if got := ident(moved); got != base {
		t.Errorf("copied folder and data: identity %s, want %s", got, base)
	}
	flip := func(path string) {
		b, _ := os.ReadFile(path)
		b[len(b)-2] ^= 1
		os.WriteFile(path, b, 0o644)
	}
	flip(filepath.Join(moved["model"].(string), "model-00002-of-00002.safetensors"))
	shard := ident(moved)
	if shard == base {
		t.Error("a byte changed in the second shard: identity unchanged")
	}
	p := filepath.Join(data, "retain.jsonl")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "\"}", "x\"}", 1)), 0o644)
	if got := ident(moved); got == shard {
		t.Error("a byte changed in retain.jsonl: identity unchanged")
	}
}

// TestLMRows: packing labels the next token everywhere but in prompts;
// one-document rows are truncated and right-padded with ignored labels.
// Planted bugs caught: labels not shifted, prompt tokens labelled,
// padding labelled.
func TestLMRows(t *testing.T) {
	ids := [][]int{{1, 2, 3}, {4, 5, 6, 7}}
	mask := [][]bool{{true, true, true}, {false, false, true, true}}
	I := lm.IgnoreIndex
	got := packRows(ids, mask, 3)
	want := []seqRow{{[]int{1, 2, 3}, []int{2, 3, I}}, {[]int{4, 5, 6}, []int{I, 6, 7}}}
	if len(got) != len(want) {
		t.Fatalf("packRows = %v, want %v", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i].ids, want[i].ids) || !slices.Equal(got[i].labels, want[i].labels) {
			t.Errorf("packRows row %d = %v, want %v", i, got[i], want[i])
		}
	}
	got = docRows(ids, mask, 5, 0)
	want = []seqRow{{[]int{1, 2, 3, 0, 0}, []int{2, 3, I, I, I}}, {[]int{4, 5, 6, 7, 0}, []int{I, 6, 7, I, I}}}
	for i := range want {
		if !slices.Equal(got[i].ids, want[i].ids) || !slices.Equal(got[i].labels, want[i].labels) {
			t.Errorf("docRows row %d = %v, want %v", i, got[i], want[i])
		}
	}
}

// TestLMLoss: the chunked training loss equals the cross-entropy of the
// full logits, and its gradient too (tied GPT-2 head and untied NeoX
// head). Planted bugs caught: labels shifted again (as lm.Model.Loss
// would), the untied head's weight mistaken for the embedding.
func TestLMLoss(t *testing.T) {
	for _, fam := range []string{"gpt2", "neox"} {
		t.Run(fam, func(t *testing.T) {
			o := lmOpts(t, fam, lmfolder.Spec{})
			o["packing"] = false
			in, err := New("lm", o)
			if err != nil {
				t.Fatal(err)
			}
			m, err := in.Base(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			b := in.TrainBatch(nn.NewRNG(1, "data"), 4)
			g := &nn.Graph{NoGrad: true}
			want := g.CrossEntropy(m.Logits(g, b), b.Labels).Data[0]
			got := m.(Losser).Loss(g, b).Data[0]
			if math.Abs(float64(got-want)) > 1e-5*math.Abs(float64(want)) {
				t.Errorf("Loss %v, CrossEntropy(Logits) %v", got, want)
			}
		})
	}
}

// TestLMLayers: Layers from config.json alone equal the loaded model's
// (lm.Model.LayerShapes), the untied head (NeoX) marked Output; Norms
// too. Planted bugs caught: a layer or bias missing, GQA's k/v widths
// wrong, the head not marked.
func TestLMLayers(t *testing.T) {
	for _, fam := range lmfolder.Families {
		t.Run(fam, func(t *testing.T) {
			o := lmOpts(t, fam, lmfolder.Spec{})
			shapes, err := Layers("lm", o)
			if err != nil {
				t.Fatal(err)
			}
			in, err := New("lm", o)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := in.Base(context.Background(), nil)
			if got := m.(*hfModel).LayerShapes(); !slices.Equal(got, shapes) {
				t.Errorf("Layers %v, model %v", shapes, got)
			}
			for _, s := range shapes {
				if s.Output != (s.Name == "embed_out") {
					t.Errorf("%s: Output %v", s.Name, s.Output)
				}
			}
			norms, _ := Norms("lm", o)
			var want []NormShape
			for _, n := range m.Norms() {
				want = append(want, NormShape{Name: n.Name, Dim: n.Dim(), Bias: n.Bias != nil})
			}
			if !slices.Equal(norms, want) {
				t.Errorf("Norms %v, model %v", norms, want)
			}
		})
	}
}

// TestLMAnswer: with gen_tokens, the eval file's prompts are generated
// from and answer_accuracy is reported in [0, 1]; with a regex whose
// answer is always "" every prompt scores. Planted bugs caught: qa
// prompts not collected, accuracy not reported, wrong denominator.
func TestLMAnswer(t *testing.T) {
	o := lmOpts(t, "gpt2", lmfolder.Spec{})
	o["eval"] = filepath.Join(filepath.Dir(o["train"].(string)), lmfolder.QAEvalFile)
	o["gen_tokens"], o["eval_size"] = 4, 3
	in, err := New("lm", o)
	if err != nil {
		t.Fatal(err)
	}
	li := in.(*lmInst)
	if len(li.qa) != 3 {
		t.Fatalf("%d qa prompts, want 3", len(li.qa))
	}
	m, _ := in.Base(context.Background(), nil)
	ex := li.Extras(&nn.Graph{NoGrad: true}, m, m)
	if a, ok := ex["answer_accuracy"]; !ok || a < 0 || a > 1 {
		t.Errorf("answer_accuracy = %v, %v", a, ok)
	}
	// A regex matching anything answers "" for both: every prompt counts.
	li.re = regexp.MustCompile(`()`)
	if a := li.answerAccuracy(&nn.Graph{NoGrad: true}, m.(*hfModel)); a != 1 {
		t.Errorf("empty answers: accuracy %v, want 1", a)
	}
}

// TestLMReadDocs: .txt splits at blank lines; JSONL takes "text" or
// "prompt" + "completion" and skips blank lines. Planted bugs caught: a
// .txt read as one document, a completion taken as text (its prompt lost).
func TestLMReadDocs(t *testing.T) {
	dir := t.TempDir()
	txt := filepath.Join(dir, "a.txt")
	os.WriteFile(txt, []byte("first para\nstill first\n\n\nsecond\r\n\r\nthird\n"), 0o644)
	docs, err := readDocs(txt)
	if err != nil {
		t.Fatal(err)
	}
	if want := []doc{{Text: "first para\nstill first"}, {Text: "second"}, {Text: "third"}}; !slices.Equal(docs, want) {
		t.Errorf(".txt docs %+v, want %+v", docs, want)
	}
	jl := filepath.Join(dir, "a.jsonl")
	os.WriteFile(jl, []byte("{\"text\": \"t\"}\n\n{\"prompt\": \"p\", \"completion\": \"c\"}\n"), 0o644)
	docs, err = readDocs(jl)
	if err != nil {
		t.Fatal(err)
	}
	if want := []doc{{Text: "t"}, {Prompt: "p", Text: "c", QA: true}}; !slices.Equal(docs, want) {
		t.Errorf("JSONL docs %+v, want %+v", docs, want)
	}
}

// TestLMCompletionLabels: on prompt + completion data without packing,
// each row's labelled tokens are exactly its completion's tokens and EOS.
// Planted bugs caught: prompt tokens labelled, the EOS or the completion's
// first token dropped.
func TestLMCompletionLabels(t *testing.T) {
	o := lmOpts(t, "llama", lmfolder.Spec{})
	qa := filepath.Join(filepath.Dir(o["train"].(string)), lmfolder.QAFile)
	o["train"], o["packing"], o["seq_len"] = qa, false, 128
	in, err := New("lm", o)
	if err != nil {
		t.Fatal(err)
	}
	li := in.(*lmInst)
	docs, _ := readDocs(qa)
	d := docs[0]
	want, _ := li.ck.tok.Encode(d.Text, false)
	want = append(want, li.ck.tok.EOS())
	r := li.train[0]
	var got []int
	for _, l := range r.labels {
		if l != lm.IgnoreIndex {
			got = append(got, l)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("labelled tokens %v, want the completion and EOS %v", got, want)
	}
	p, _ := li.ck.tok.Encode(d.Prompt, false)
	if !slices.Equal(r.ids[:len(p)], p) {
		t.Errorf("row starts %v, want the prompt %v", r.ids[:len(p)], p)
	}
}
