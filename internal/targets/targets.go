// Package targets is the one grammar of target patterns, the layer names a
// sweep's targets (and options that name layers, such as IA3's
// feedforward_modules) select. It follows HF PEFT's target_modules, made
// explicit.
//
// all-linear leaves out a layer marked options.LayerShape.Output (a
// language model's untied lm_head / embed_out), as HF PEFT's all-linear
// leaves out the model's output layer; Selects and Targeted apply that
// rule, Match (names only) cannot. The builtin tasks' own "head" layers
// are not marked Output: all-linear keeps selecting them, so their
// trials, trial IDs and the nightly baseline stay as they were (a
// decision, docs/architecture.md). Naming an output layer (a plain name,
// a glob, re:) still selects it, as naming lm_head does in HF PEFT.
package targets

import (
	"fmt"
	"regexp"
	"strings"

	"peftbench/internal/options"
)

// AllLinear is the pattern that selects every linear layer a task lists
// but an output layer, after HF PEFT's "all-linear".
const AllLinear = "all-linear"

// Selects reports whether a target pattern selects a layer: Match on its
// name, except that all-linear leaves out a layer marked Output.
func Selects(pattern string, l options.LayerShape) (bool, error) {
	re, err := Compile(pattern)
	if err != nil {
		return false, err
	}
	return selects(pattern, re, l), nil
}

func selects(pattern string, re *regexp.Regexp, l options.LayerShape) bool {
	if pattern == AllLinear && l.Output {
		return false
	}
	return re.MatchString(l.Name)
}

// Targeted returns the layers, in order, that any of the patterns selects
// (Selects).
func Targeted(patterns []string, layers []options.LayerShape) ([]options.LayerShape, error) {
	res := make([]*regexp.Regexp, len(patterns))
	for i, p := range patterns {
		re, err := Compile(p)
		if err != nil {
			return nil, err
		}
		res[i] = re
	}
	var out []options.LayerShape
	for _, l := range layers {
		for i, re := range res {
			if selects(patterns[i], re, l) {
				out = append(out, l)
				break
			}
		}
	}
	return out, nil
}

// Match reports whether a target pattern selects a layer name.
// Patterns follow HF PEFT's target_modules, made explicit:
//
//	"fc1"          a plain name: the layer named fc1 or any layer whose
//	               dotted name ends in ".fc1"
//	"blocks.*.q"   a glob over the whole dotted name: * matches within one
//	               dotted segment, ** across segments, ? one character,
//	               [abc] a class
//	"re:^fc[12]$"  a Go regular expression, matched anywhere in the name
//	               (anchor it for a full match)
//	"all-linear"   every layer (but an output layer: see Selects, which
//	               has the layer's shape; Match has only its name)
func Match(pattern, layer string) (bool, error) {
	re, err := Compile(pattern)
	if err != nil {
		return false, err
	}
	return re.MatchString(layer), nil
}

// Compile turns a target pattern into a regular expression.
func Compile(p string) (*regexp.Regexp, error) {
	switch {
	case p == "":
		return nil, fmt.Errorf("empty target pattern")
	case p == AllLinear:
		return regexp.MustCompile(""), nil
	case strings.HasPrefix(p, "re:"):
		re, err := regexp.Compile(p[len("re:"):])
		if err != nil {
			return nil, fmt.Errorf("bad regular expression %q: %v", p[len("re:"):], err)
		}
		return re, nil
	case strings.ContainsAny(p, "*?["):
		var b strings.Builder
		b.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch c := p[i]; c {
			case '*':
				if i+1 < len(p) && p[i+1] == '*' {
					b.WriteString(".*")
					i++
				} else {
					b.WriteString(`[^.]*`)
				}
			case '?':
				b.WriteString(`[^.]`)
			case '[':
				j := strings.IndexByte(p[i:], ']')
				if j < 0 {
					return nil, fmt.Errorf("bad glob %q: unclosed [", p)
				}
				class := p[i+1 : i+j]
				if strings.HasPrefix(class, "!") {
					class = "^" + class[1:]
				}
				b.WriteString("[" + class + "]")
				i += j
			default:
				b.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		b.WriteString("$")
		re, err := regexp.Compile(b.String())
		if err != nil {
			return nil, fmt.Errorf("bad glob %q: %v", p, err)
		}
		return re, nil
	default:
		q := regexp.QuoteMeta(p)
		return regexp.MustCompile(`(^|\.)` + q + `$`), nil
	}
}
