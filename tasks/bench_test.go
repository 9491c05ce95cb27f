package tasks

import (
	"context"
	"testing"
)

// BenchmarkPretrain times pretraining each task's default base model
// (a fresh cache per iteration, so each pretrains).
func BenchmarkPretrain(b *testing.B) {
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			in, err := New(name, testOptions[name])
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				c, _ := NewCache(b.TempDir())
				if _, err := in.Base(context.Background(), c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
