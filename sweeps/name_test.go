package sweeps

import (
	"errors"
	"strings"
	"testing"
)

// TestNameLength: a sweep name longer than MaxNameLen bytes is refused at
// its position, whether the file's name key or its file name gave it.
func TestNameLength(t *testing.T) {
	const body = `
seeds = [0]
[grid]
method = ["lora"]
rank = [4]
task = ["mlp"]
`
	long := strings.Repeat("n", MaxNameLen+1)
	for _, c := range []struct {
		file, src, want string
	}{
		{"x.toml", `name = "` + long + `"` + body, "x.toml:1:8: name: sweep name"},
		{long + ".toml", body, long + ".toml:1:1: name: sweep name"},
	} {
		_, err := Parse(c.file, []byte(c.src), fakeCatalog{})
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "101 bytes, longer than 100") {
			t.Errorf("%.20s…: err = %v, want a located error containing %q", c.file, err, c.want)
		}
	}
	if p, err := Parse("x.toml", []byte(`name = "`+long[:MaxNameLen]+`"`+body), fakeCatalog{}); err != nil || p.Name != long[:MaxNameLen] {
		t.Errorf("a name of %d bytes: %v", MaxNameLen, err)
	}
}
