package tasks

import (
	"context"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"

	"peftbench/lm"
	"peftbench/nn"
)

// lmTask fine-tunes a Hugging Face causal-LM checkpoint (package lm) on
// local data files: continued pretraining (JSONL "text", .txt) or
// supervised fine-tuning (JSONL "prompt" + "completion", the loss on the
// completion's tokens only). Target = the eval file, retain = the retain
// file; there is no pretraining, the checkpoint is the base.
//
// Validation is the last quarter-of-target rows of the training rows,
// held out of TrainBatch (when the training file has at least four times
// as many rows; else the last rows of the eval file, taken out of the
// target set), so it shares no row with target or retain.
type lmTask struct{}

// DefaultAnswerRegex extracts a GSM8K-style final answer ("#### 42").
const DefaultAnswerRegex = `#### (-?[0-9.,]+)`

func init() { Register("lm", lmTask{}) }

// lmPathOptions are the options naming files, in the order they are
// checked; their content, not their path, enters the trial identity.
var lmPathOptions = []string{"model", "train", "eval", "retain"}

func (lmTask) Info() Info {
	return Info{
		Name: "lm",
		Description: "a Hugging Face causal-LM checkpoint folder (gpt2, gpt_neox, llama, qwen2) fine-tuned on local data files: " +
			"target = the eval file (target_metric = next-token accuracy, target_loss = mean token cross-entropy, perplexity = exp(target_loss)), " +
			"retain = the retain file (forgetting = KL(base ‖ tuned) of next-token distributions per retain token); " +
			"with gen_tokens > 0 also answer_accuracy, greedy generation on the eval file's prompts scored by answer_regex",
		Architecture: "the checkpoint's (config.json)",
		Metrics:      append(append([]string(nil), GenericMetrics...), "perplexity"),
		Options: []Option{
			stringOpt("model", "", nil, true, "checkpoint folder (config.json, model.safetensors or an index and shards, tokenizer.json); $VARS expanded"),
			stringOpt("train", "", nil, false, "training data: JSONL with \"text\", or \"prompt\" + \"completion\" (loss on the completion), or .txt (documents split at blank lines); $VARS expanded"),
			stringOpt("eval", "", nil, false, "target (evaluation) data, as train"),
			stringOpt("retain", "", nil, false, "retain data for forgetting (the pretraining-like distribution), as train"),
			intOpt("seq_len", 128, 2, 1<<17, false, "tokens per row; at most the model's max_position_embeddings"),
			boolOpt("packing", true, false, "concatenate documents (EOS between) and cut into seq_len rows; false: one document per row, truncated, right-padded"),
			intOpt("eval_size", 64, 1, 1<<20, false, "rows of each evaluation set (target, retain): the first ones of the file"),
			stringOpt("answer_regex", DefaultAnswerRegex, nil, false, "with gen_tokens: regular expression whose first group (else match) is the answer"),
			intOpt("gen_tokens", 0, 0, 4096, false, "greedy tokens generated per eval prompt for answer_accuracy; 0: no generation"),
		},
		BaseAccuracy: 0,
		Recipe:       1,
	}
}

// expandPath expands $VARS in an option's path, refusing unset variables.
func expandPath(o Options, key string) (string, error) {
	v := o.String(key)
	if v == "" {
		return "", optionError("lm", key, "required: a path")
	}
	var missing []string
	p := os.Expand(v, func(name string) string {
		s, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, "$"+name)
		}
		return s
	})
	if len(missing) > 0 {
		return "", optionError("lm", key, fmt.Sprintf("%q: environment variable %s is not set", v, strings.Join(missing, ", ")))
	}
	return p, nil
}

// Validate checks everything a trial needs without loading weights or
// tokenising: the folder (config.json, architecture, every weight shard,
// tokenizer.json fitting the embedding), seq_len against the model's
// positions, every data file parsing (file:line of a bad line), and
// answer_regex. Results are cached per file version.
func (lmTask) Validate(o Options) error {
	dir, err := expandPath(o, "model")
	if err != nil {
		return err
	}
	ck, err := openCheckpoint(dir)
	if err != nil {
		return optionError("lm", "model", err.Error())
	}
	if s := o.Int("seq_len"); s > ck.cfg.MaxPos {
		return optionError("lm", "seq_len", fmt.Sprintf("%d exceeds the model's %d positions (%s)", s, ck.cfg.MaxPos, ck.cfg.Path))
	}
	for _, key := range lmPathOptions[1:] {
		p, err := expandPath(o, key)
		if err != nil {
			return err
		}
		if _, err := readDocs(p); err != nil {
			return optionError("lm", key, err.Error())
		}
	}
	if _, err := regexp.Compile(o.String("answer_regex")); err != nil {
		return optionError("lm", "answer_regex", err.Error())
	}
	return nil
}

// Identity returns o with each path option replaced by "sha256:<hex>" of
// its content (the folder's: config.json, weight files, tokenizer.json),
// so that a trial's ID follows the data, not where it lies.
func (lmTask) Identity(o Options) (map[string]any, error) {
	id := map[string]any{}
	for k, v := range o {
		id[k] = v
	}
	for _, key := range lmPathOptions {
		p, err := expandPath(o, key)
		if err != nil {
			return nil, err
		}
		var d string
		if key == "model" {
			ck, err := openCheckpoint(p)
			if err == nil {
				d, err = ck.digest()
			}
			if err != nil {
				return nil, optionError("lm", key, err.Error())
			}
		} else {
			h, err := fileDigest(p)
			if err != nil {
				return nil, optionError("lm", key, err.Error())
			}
			d = "sha256:" + h
		}
		id[key] = d
	}
	return id, nil
}

func lmCheckpoint(o Options) *checkpoint {
	dir, err := expandPath(o, "model")
	if err != nil {
		return nil
	}
	ck, err := openCheckpoint(dir)
	if err != nil {
		return nil
	}
	return ck
}

// Layers lists the checkpoint's linear layers from config.json alone, in
// lm.Model.Linears' order; an untied head is the Output layer.
func (lmTask) Layers(o Options) []LayerShape {
	ck := lmCheckpoint(o)
	if ck == nil {
		return nil
	}
	return lmLayers(ck.cfg)
}

func lmLayers(c *lm.Config) []LayerShape {
	d, qd, kvd := c.Dim, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	var ls []LayerShape
	add := func(name string, out, in int, bias bool) {
		ls = append(ls, LayerShape{Name: name, Out: out, In: in, Bias: bias})
	}
	head := "lm_head"
	for i := range c.Layers {
		switch c.ModelType {
		case lm.GPT2:
			p := fmt.Sprintf("transformer.h.%d.", i)
			add(p+"attn.c_attn", 3*d, d, true)
			add(p+"attn.c_proj", d, d, true)
			add(p+"mlp.c_fc", c.FFN, d, true)
			add(p+"mlp.c_proj", d, c.FFN, true)
		case lm.NeoX:
			p := fmt.Sprintf("gpt_neox.layers.%d.", i)
			add(p+"attention.query_key_value", 3*d, d, c.QKVBias)
			add(p+"attention.dense", d, d, c.OBias)
			add(p+"mlp.dense_h_to_4h", c.FFN, d, c.MLPBias)
			add(p+"mlp.dense_4h_to_h", d, c.FFN, c.MLPBias)
		default:
			p := fmt.Sprintf("model.layers.%d.", i)
			add(p+"self_attn.q_proj", qd, d, c.QKVBias)
			add(p+"self_attn.k_proj", kvd, d, c.QKVBias)
			add(p+"self_attn.v_proj", kvd, d, c.QKVBias)
			add(p+"self_attn.o_proj", d, qd, c.OBias)
			add(p+"mlp.gate_proj", c.FFN, d, c.MLPBias)
			add(p+"mlp.up_proj", c.FFN, d, c.MLPBias)
			add(p+"mlp.down_proj", d, c.FFN, c.MLPBias)
		}
	}
	if c.ModelType == lm.NeoX {
		head = "embed_out"
	}
	if !c.Tied {
		ls = append(ls, LayerShape{Name: head, Out: c.Vocab, In: d, Output: true})
	}
	return ls
}

// Norms lists the checkpoint's norms from config.json alone, in
// lm.Model.Norms' order.
func (lmTask) Norms(o Options) []NormShape {
	ck := lmCheckpoint(o)
	if ck == nil {
		return nil
	}
	c := ck.cfg
	n1, n2, final, bias := "input_layernorm", "post_attention_layernorm", "model.norm", false
	prefix := "model.layers.%d."
	switch c.ModelType {
	case lm.GPT2:
		n1, n2, final, bias, prefix = "ln_1", "ln_2", "transformer.ln_f", true, "transformer.h.%d."
	case lm.NeoX:
		final, bias, prefix = "gpt_neox.final_layer_norm", true, "gpt_neox.layers.%d."
	}
	var ns []NormShape
	for i := range c.Layers {
		p := fmt.Sprintf(prefix, i)
		ns = append(ns, NormShape{Name: p + n1, Dim: c.Dim, Bias: bias}, NormShape{Name: p + n2, Dim: c.Dim, Bias: bias})
	}
	return append(ns, NormShape{Name: final, Dim: c.Dim, Bias: bias})
}

type lmInst struct {
	o     Options
	ck    *checkpoint
	seq   int
	train []seqRow
	tgt   []Batch
	val   []Batch
	ret   []Batch
	qa    []doc // the eval file's prompt+completion documents (generation)
	re    *regexp.Regexp
	gen   int
}

// evalBatchRows bounds an evaluation batch so that its logits (rows·seq ×
// vocab floats, twice for forgetting) stay near 64 MB.
func evalBatchRows(seq, vocab int) int {
	return max(1, min(16, (1<<24)/max(1, seq*vocab)))
}

func (t lmTask) New(o Options) (Instance, error) {
	if err := t.Validate(o); err != nil {
		return nil, err
	}
	dir, _ := expandPath(o, "model")
	ck, err := openCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	in := &lmInst{o: o, ck: ck, seq: o.Int("seq_len"), gen: o.Int("gen_tokens")}
	in.re = regexp.MustCompile(o.String("answer_regex"))
	pad := max(ck.tok.EOS(), 0)
	rowsOf := func(key string) ([]seqRow, []doc, error) {
		p, _ := expandPath(o, key)
		docs, err := readDocs(p)
		if err != nil {
			return nil, nil, err
		}
		ids, mask, err := tokenize(ck.tok, p, docs)
		if err != nil {
			return nil, nil, err
		}
		var rows []seqRow
		if o.Bool("packing") {
			rows = packRows(ids, mask, in.seq)
		} else {
			rows = docRows(ids, mask, in.seq, pad)
		}
		if len(rows) == 0 {
			return nil, nil, fmt.Errorf("tasks: lm: %s: no row of %d tokens (seq_len %d)", p, in.seq+1, in.seq)
		}
		return rows, docs, nil
	}
	train, _, err := rowsOf("train")
	if err != nil {
		return nil, err
	}
	eval, evalDocs, err := rowsOf("eval")
	if err != nil {
		return nil, err
	}
	retain, _, err := rowsOf("retain")
	if err != nil {
		return nil, err
	}
	n := o.Int("eval_size")
	tgt := eval[:min(n, len(eval))]
	k := validationSize(len(tgt))
	var val []seqRow
	switch {
	case len(train) >= 4*k:
		train, val = train[:len(train)-k], train[len(train)-k:]
	case len(eval) >= len(tgt)+k:
		val = eval[len(tgt) : len(tgt)+k]
	case len(tgt) >= 2:
		k = max(1, len(tgt)/4)
		tgt, val = tgt[:len(tgt)-k], tgt[len(tgt)-k:]
	default:
		return nil, fmt.Errorf("tasks: lm: too little data for a validation set: %d training rows, %d eval rows", len(train), len(eval))
	}
	in.train = train
	br := evalBatchRows(in.seq, ck.cfg.Vocab)
	batches := func(rows []seqRow) []Batch {
		return chunks(len(rows), br, func(lo, hi int) Batch { return rowsBatch(rows[lo:hi], in.seq) })
	}
	in.tgt, in.val, in.ret = batches(tgt), batches(val), batches(retain[:min(n, len(retain))])
	for _, d := range evalDocs {
		if d.QA && len(in.qa) < n {
			in.qa = append(in.qa, d)
		}
	}
	return in, nil
}

// Base loads the checkpoint (lm.Load; no pretraining, no cache) on each
// call: every call returns an independent model, and the instance holds
// no copy of the weights beside the trial's base and tuned models.
func (in *lmInst) Base(ctx context.Context, _ *Cache) (Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := lm.Load(in.ck.dir)
	if err != nil {
		return nil, err
	}
	return &hfModel{m}, nil
}

// TrainBatch draws size training rows uniformly (with replacement) by rng.
func (in *lmInst) TrainBatch(rng *nn.RNG, size int) Batch {
	rows := make([]seqRow, size)
	for i := range rows {
		rows[i] = in.train[rng.Intn(len(in.train))]
	}
	return rowsBatch(rows, in.seq)
}

func (in *lmInst) Target() []Batch     { return in.tgt }
func (in *lmInst) Retain() []Batch     { return in.ret }
func (in *lmInst) Validation() []Batch { return in.val }

// Extras reports perplexity = exp(target loss) and, with gen_tokens > 0,
// answer_accuracy.
func (in *lmInst) Extras(g *nn.Graph, tuned, base Model) map[string]float64 {
	loss, _ := Evaluate(g, tuned, in.tgt)
	ex := map[string]float64{"perplexity": math.Exp(loss)}
	if m, ok := tuned.(*hfModel); ok && in.gen > 0 && len(in.qa) > 0 {
		ex["answer_accuracy"] = in.answerAccuracy(g, m)
	}
	return ex
}

// answerAccuracy generates greedily from each eval prompt (at most
// gen_tokens, stopping at EOS) and scores the exact match of the
// answer_regex answer (commas removed) with the completion's, generating
// with lm.Model.Generate's key/value cache. A prompt longer than the
// positions keeps its last tokens.
func (in *lmInst) answerAccuracy(g *nn.Graph, m *hfModel) float64 {
	answer := func(s string) (string, bool) {
		sm := in.re.FindStringSubmatch(s)
		if sm == nil {
			return "", false
		}
		a := sm[0]
		if len(sm) > 1 {
			a = sm[1]
		}
		return strings.ReplaceAll(strings.TrimSpace(a), ",", ""), true
	}
	tok, eos, maxPos := in.ck.tok, in.ck.tok.EOS(), m.Cfg.MaxPos
	correct := 0
	for _, d := range in.qa {
		want, ok := answer(d.Text)
		if !ok {
			continue
		}
		ids, err := tok.Encode(d.Prompt, false)
		if err != nil || len(ids) == 0 {
			continue
		}
		ids = ids[max(0, len(ids)-(maxPos-1)):] // room for one generated token
		text, err := tok.Decode(m.Generate(g, ids, in.gen, eos))
		if err != nil {
			continue
		}
		if got, ok := answer(text); ok && got == want {
			correct++
		}
	}
	return float64(correct) / float64(len(in.qa))
}

// hfModel is a checkpoint as a task Model: Batch.IDs are N rows of Seq
// tokens, Batch.Labels the token each position predicts.
type hfModel struct{ *lm.Model }

func (m *hfModel) Logits(g *nn.Graph, b Batch) *nn.Tensor {
	return m.Model.Logits(g, b.IDs, b.N, b.Seq)
}

func (m *hfModel) Clone() Model { return &hfModel{m.Model.Clone()} }

// Loss is the mean cross-entropy of b's labels (Losser), through the
// chunked nn.LMCrossEntropy that lm.Model.Loss uses: the logits are
// never formed, unless an adapter sits on the head. The labels are
// already shifted (position t's target), so the head is applied here,
// not through lm.Model.Loss, which would shift them again.
func (m *hfModel) Loss(g *nn.Graph, b Batch) *nn.Tensor {
	h := m.Hidden(g, b.IDs, b.N, b.Seq)
	if m.Head.Adapter != nil {
		return g.CrossEntropy(m.Head.Forward(g, h), b.Labels)
	}
	return g.LMCrossEntropy(h, m.Head.Weight, b.Labels, 0)
}
