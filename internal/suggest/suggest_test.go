package suggest

import (
	"slices"
	"testing"
)

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"lora", "lora", 0}, {"", "abc", 3},
		{"lroa", "lora", 1},    // transposition
		{"dorra", "dora", 1},   // deletion
		{"cosin", "cosine", 1}, // insertion
		{"adamm", "adamw", 1},  // substitution
		{"kitten", "sitting", 3},
		{"αβ", "βα", 1}, // runes, not bytes
	} {
		if got := Distance(c.a, c.b); got != c.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
		if got := Distance(c.b, c.a); got != c.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.b, c.a, got, c.d)
		}
	}
}

func TestNearest(t *testing.T) {
	names := []string{"full", "lora", "rslora", "dora", "loraplus", "lora-fa"}
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"lroa", []string{"lora", "dora"}},
		{"LORA", []string{"lora", "dora", "rslora"}},
		{"ful", []string{"full"}},
		{"transformer", nil},
	} {
		if got := Nearest(c.in, names); !slices.Equal(got, c.want) {
			t.Errorf("Nearest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got, want := DidYouMean("ful", names), ` (did you mean "full"?)`; got != want {
		t.Errorf("DidYouMean = %q, want %q", got, want)
	}
	if got := DidYouMean("transformer", names); got != "" {
		t.Errorf("DidYouMean of a far name = %q, want empty", got)
	}
}
