package targets

import "testing"

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
