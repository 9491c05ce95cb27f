package targets

import (
	"slices"
	"testing"

	"peftbench/internal/options"
)

// TestMatch is the grammar's table: plain names and dotted suffixes,
// globs over the whole name, "re:" searched, all-linear, and bad patterns.
func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, layer string
		want           bool
	}{
		{"fc1", "fc1", true},
		{"fc1", "encoder.fc1", true},
		{"fc1", "encoder.fc10", false},
		{"fc1", "xfc1", false},
		{"attn.q", "blocks.0.attn.q", true},
		{"blocks.*.attn.q", "blocks.3.attn.q", true},
		{"blocks.*.q", "blocks.3.attn.q", false},
		{"blocks.**.q", "blocks.3.attn.q", true},
		{"fc?", "fc1", true},
		{"fc?", "fc12", false},
		{"fc[12]", "fc2", true},
		{"fc[!12]", "fc2", false},
		{"fc[!12]", "fc3", true},
		{"re:^fc[0-9]+$", "fc12", true},
		{"re:^fc[0-9]+$", "enc.fc12", false},
		{"re:mlp", "blocks.0.mlp.up", true},
		{AllLinear, "anything.at.all", true},
	}
	for _, c := range cases {
		got, err := Match(c.pattern, c.layer)
		if err != nil || got != c.want {
			t.Errorf("Match(%q, %q) = %v, %v; want %v", c.pattern, c.layer, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "re:(", "fc[1"} {
		if _, err := Match(bad, "fc1"); err == nil {
			t.Errorf("Match(%q) accepted a bad pattern", bad)
		}
	}
}

// TestAllLinearOutput checks that all-linear leaves out a layer marked
// Output (a NeoX-shaped list: embed_out) and nothing else, that naming the
// head still selects it, and that a builtin transformer's list (its head
// not marked) is selected whole. Planted bug caught: all-linear matching
// the output layer (HF PEFT leaves it out), or dropping unmarked heads.
func TestAllLinearOutput(t *testing.T) {
	neox := []options.LayerShape{
		{Name: "gpt_neox.layers.0.attention.query_key_value", Out: 96, In: 32, Bias: true},
		{Name: "gpt_neox.layers.0.attention.dense", Out: 32, In: 32, Bias: true},
		{Name: "gpt_neox.layers.0.mlp.dense_h_to_4h", Out: 128, In: 32, Bias: true},
		{Name: "gpt_neox.layers.0.mlp.dense_4h_to_h", Out: 32, In: 128, Bias: true},
		{Name: "embed_out", Out: 320, In: 32, Output: true},
	}
	builtin := []options.LayerShape{
		{Name: "blocks.0.attn.q", Out: 32, In: 32, Bias: true},
		{Name: "blocks.0.mlp.down", Out: 32, In: 64, Bias: true},
		{Name: "head", Out: 50, In: 32},
	}
	names := func(ls []options.LayerShape) []string {
		var s []string
		for _, l := range ls {
			s = append(s, l.Name)
		}
		return s
	}
	cases := []struct {
		patterns []string
		layers   []options.LayerShape
		want     []string
	}{
		{[]string{AllLinear}, neox, names(neox[:4])},
		{[]string{AllLinear, "embed_out"}, neox, names(neox)},
		{[]string{"re:."}, neox, names(neox)},
		{[]string{"dense"}, neox, names(neox[1:2])},
		{[]string{AllLinear}, builtin, names(builtin)},
	}
	for _, c := range cases {
		got, err := Targeted(c.patterns, c.layers)
		if err != nil || !slices.Equal(names(got), c.want) {
			t.Errorf("Targeted(%q) = %q, %v; want %q", c.patterns, names(got), err, c.want)
		}
	}
	if ok, _ := Selects(AllLinear, neox[4]); ok {
		t.Errorf("Selects(all-linear, embed_out marked Output) = true")
	}
	if ok, _ := Selects("embed_out", neox[4]); !ok {
		t.Errorf("Selects(embed_out, embed_out) = false")
	}
	if _, err := Targeted([]string{"re:("}, neox); err == nil {
		t.Errorf("Targeted accepted a bad pattern")
	}
}
