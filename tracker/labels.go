package tracker

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"peftbench/configs"
)

// Group is one configuration across seeds of a sweep.
type Group struct {
	Key   string // configs.Key: task, method, rank and the settings but the seed
	Label string // "lora r=8 teacher-shift lr=1e-3": what tells it apart
	// Trials are indexes into the sweep's Trials, in plan order.
	Trials []int
}

// Groups returns s's configurations across seeds, in the order first
// seen, and for each trial the index of its group. A trial whose config
// does not parse is grouped by task, method and rank (configs.Group).
func (s *Sweep) Groups() (groups []*Group, of []int) {
	of = make([]int, len(s.Trials))
	idx := map[string]int{}
	var cs []*configs.Config
	for i := range s.Trials {
		t := &s.Trials[i]
		key, pairs, _ := configs.Key(t)
		g, ok := idx[key]
		if !ok {
			g = len(groups)
			idx[key] = g
			groups = append(groups, &Group{Key: key})
			cs = append(cs, &configs.Config{Task: t.Task, Method: t.Method, Rank: t.Rank, Pairs: pairs})
		}
		groups[g].Trials = append(groups[g].Trials, i)
		of[i] = g
	}
	configs.SetSettings(cs, configs.SlotRank)
	for g, c := range cs {
		l := c.Method
		if c.Rank > 0 {
			l += fmt.Sprintf(" r=%d", c.Rank)
		}
		l += " " + c.Task
		for _, p := range c.Settings {
			l += " " + strings.Replace(configs.ShortPair(p), "α=", "alpha=", 1)
		}
		groups[g].Label = l
	}
	return groups, of
}

// TrialLabel is trial i's readable name: its group's label and its seed.
func (s *Sweep) TrialLabel(g *Group, i int) string {
	return fmt.Sprintf("%s seed=%d", g.Label, s.Trials[i].Seed)
}

// safeName makes a label a file name: ASCII letters, digits and . _ = + -
// kept, a space as _, anything else as -, at most 120 bytes.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '_', r == '=', r == '+', r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('_')
		default:
			b.WriteByte('-')
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	if len(out) > 120 {
		out = out[:120]
	}
	if out == "" {
		out = "run"
	}
	return out
}

// hashHex is the first n hex digits of the SHA-256 of parts, joined by
// NUL: a stable ID.
func hashHex(n int, parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])[:n]
}
