package tasks

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math"
	"testing"

	"peftbench/nn"
)

// setCases are the option sets whose data TestSetsUnchanged pins: every
// task's defaults, the nightly sweep's options (experiments/nightly.toml),
// continual stages, a finite training pool and a held-out modarith split.
var setCases = []struct {
	task string
	opts map[string]any
	// sets is setsChecksum of the instance, as computed before the
	// validation split existed.
	sets string
}{
	{"teacher-shift", nil, "0f74690d7cb52161273ad51f"},
	{"teacher-shift", map[string]any{"hidden": 32, "classes": 8, "pretrain_steps": 300, "eval_size": 1024}, "6e51a57d635c9690e3aa360a"},
	{"teacher-shift", map[string]any{"stages": 3, "eval_size": 256}, "e91196bf0e8840dd9d023433"},
	{"teacher-shift", map[string]any{"n_train": 500, "eval_size": 256}, "0b2d5988cc090cc25e3627e4"},
	{"safety-guard", nil, "1a96840c96cac9e270ff8580"},
	{"safety-guard", map[string]any{"hidden": 32, "classes": 7, "pretrain_steps": 300, "eval_size": 1024}, "626e9371b00d26e99d9c8827"},
	{"modarith", nil, "75de8910246d53aa345dc92a"},
	{"modarith", map[string]any{"dim": 32, "pretrain_steps": 1500}, "75de8910246d53aa345dc92a"},
	{"modarith", map[string]any{"train_frac": 0.5}, "b8a46d3cc444d5034ea6b778"},
	{"text-code", nil, "4e8e6db0810f8a14d1aa7354"},
	{"text-code", map[string]any{"dim": 32, "blocks": 1, "seq": 32, "pretrain_steps": 300, "eval_size": 64}, "86715e45d079c59d370f1160"},
	{"text-code", map[string]any{"code_frac": 0.7}, "f7a8e79215e55425bbb59fbf"},
	{"mnist-split", nil, "f739612d792fc65766e44ca9"},
	{"mnist-split", map[string]any{"hidden": 32, "protocol": "class-il"}, "f60cd40399832879354b521b"},
	{"mnist-permuted", map[string]any{"hidden": 32}, "c353681fc4a22dd8d454d699"},
	{"mnist-permuted", map[string]any{"stages": 2}, "5bc26fe68a800346dcff7e4b"},
}

// TestSetsUnchanged pins the training batches, target and retain sets of
// every task to their checksums before the validation split existed: CI
// compares the nightly sweep with a committed baseline bit for bit, so a
// validation set must come from draws of its own, never from the streams
// (or pools) these sets use.
func TestSetsUnchanged(t *testing.T) {
	for _, tc := range setCases {
		name := fmt.Sprintf("%s %v", tc.task, tc.opts)
		t.Run(name, func(t *testing.T) {
			in, err := New(tc.task, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := setsChecksum(in)
			if got != tc.sets {
				t.Errorf("training batches, target and retain sets changed: checksum %s, want %s", got, tc.sets)
			}
		})
	}
}

// setsChecksum hashes an instance's target and retain sets and its first
// training batches (stream "data" of seed 1, 4 batches of 32), stage by
// stage for a continual task.
func setsChecksum(in Instance) string {
	h := sha256.New()
	writeBatches(h, "target", in.Target())
	writeBatches(h, "retain", in.Retain())
	rng := nn.NewRNG(1, "data")
	for range 4 {
		writeBatches(h, "train", []Batch{in.TrainBatch(rng, 32)})
	}
	if st, ok := in.(Staged); ok {
		for _, s := range st.Stages() {
			writeBatches(h, s.Name+" target", s.Target)
			rng := nn.NewRNG(1, "data")
			for range 4 {
				writeBatches(h, s.Name+" train", []Batch{s.TrainBatch(rng, 32)})
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func writeBatches(h hash.Hash, name string, bs []Batch) {
	fmt.Fprintf(h, "%s %d\n", name, len(bs))
	var buf [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	for _, b := range bs {
		put(uint64(b.N))
		put(uint64(b.Seq))
		if b.X != nil {
			put(uint64(len(b.X.Data)))
			for _, v := range b.X.Data {
				put(uint64(math.Float32bits(v)))
			}
		}
		for _, ids := range [][]int{b.IDs, b.Labels, b.Classes} {
			put(uint64(len(ids)))
			for _, v := range ids {
				put(uint64(int64(v)))
			}
		}
	}
}
