package lmfolder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"peftbench/internal/atomicfile"
	"peftbench/nn"
)

// Data set file names WriteData writes.
const (
	TrainFile  = "train.jsonl"   // {"text": …}
	EvalFile   = "eval.jsonl"    // {"text": …}
	RetainFile = "retain.jsonl"  // {"text": …}
	QAFile     = "qa.jsonl"      // {"prompt": …, "completion": … "#### N"}
	QAEvalFile = "qa_eval.jsonl" // as QAFile, other problems
)

// Sizes of the arithmetic sets.
const (
	QATrain = 256
	QAEval  = 64
)

// WriteData writes a small demo data set into dir (created if needed),
// deterministic in seed: the embedded corpus cut into passages (sentences
// of prose, blocks of code) and shuffled, 60% to train.jsonl, 20% each to
// eval.jsonl and retain.jsonl; and templated arithmetic word problems with
// GSM8K-style answers ("… = 19 apples.\n#### 19") in qa.jsonl and
// qa_eval.jsonl. It returns the files written.
func WriteData(dir string, seed uint64) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lmfolder: %w", err)
	}
	texts := passages()
	perm := nn.NewRNG(seed, "lmfolder data split").Perm(len(texts))
	nTrain, nEval := len(texts)*6/10, len(texts)*2/10
	pick := func(p []int) []any {
		var out []any
		for _, i := range p {
			out = append(out, map[string]string{"text": texts[i]})
		}
		return out
	}
	r := nn.NewRNG(seed, "lmfolder data qa")
	sets := []struct {
		name string
		rows []any
	}{
		{TrainFile, pick(perm[:nTrain])},
		{EvalFile, pick(perm[nTrain : nTrain+nEval])},
		{RetainFile, pick(perm[nTrain+nEval:])},
		{QAFile, problems(r, QATrain)},
		{QAEvalFile, problems(r, QAEval)},
	}
	var files []string
	for _, s := range sets {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		for _, row := range s.rows {
			if err := enc.Encode(row); err != nil {
				return nil, fmt.Errorf("lmfolder: %s: %w", s.name, err)
			}
		}
		path := filepath.Join(dir, s.name)
		if err := atomicfile.WriteFile(path, b.Bytes()); err != nil {
			return nil, fmt.Errorf("lmfolder: %w", err)
		}
		files = append(files, path)
	}
	return files, nil
}

var sentenceEnd = regexp.MustCompile(`[.!?]"? `)

// passages cuts the corpus into sentences (prose lines) and blocks (code:
// runs of lines separated by blank lines or indented).
func passages() []string {
	var out []string
	var block []string
	flush := func() {
		if len(block) > 0 {
			out = append(out, strings.Join(block, "\n"))
			block = nil
		}
	}
	for _, line := range strings.Split(strings.TrimRight(corpus, "\n"), "\n") {
		code := line == "" || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") ||
			strings.HasPrefix(line, "}") || strings.HasSuffix(line, "{") || strings.HasSuffix(line, ":")
		if code {
			if line != "" {
				block = append(block, line)
			} else {
				flush()
			}
			continue
		}
		flush()
		for line != "" {
			loc := sentenceEnd.FindStringIndex(line)
			if loc == nil {
				out = append(out, line)
				break
			}
			out = append(out, line[:loc[1]-1])
			line = line[loc[1]:]
		}
	}
	flush()
	return out
}

var (
	qaNames = []string{"Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun"}
	qaItems = []string{"apples", "books", "coins", "pencils", "stamps", "marbles", "shells", "cards"}
)

// qa is a prompt/completion row.
type qa struct {
	Prompt     string `json:"prompt"`
	Completion string `json:"completion"`
}

// problems draws n arithmetic word problems: a prompt ending "Answer:" and
// a completion that works the sum and ends "#### N".
func problems(r *nn.RNG, n int) []any {
	out := make([]any, 0, n)
	for range n {
		name, item := qaNames[r.Intn(len(qaNames))], qaItems[r.Intn(len(qaItems))]
		a, b := 2+r.Intn(48), 2+r.Intn(48)
		var q, work string
		var ans int
		switch r.Intn(4) {
		case 0:
			ans = a + b
			q = fmt.Sprintf("%s has %d %s and gets %d more. How many %s does %s have now?", name, a, item, b, item, name)
			work = fmt.Sprintf("%s has %d + %d = %d %s.", name, a, b, ans, item)
		case 1:
			a += b
			ans = a - b
			q = fmt.Sprintf("%s has %d %s and gives away %d. How many %s are left?", name, a, item, b, item)
			work = fmt.Sprintf("%d - %d = %d %s are left.", a, b, ans, item)
		case 2:
			a, b = 2+a%11, 2+b%11
			ans = a * b
			q = fmt.Sprintf("%s fills %d boxes with %d %s each. How many %s is that?", name, a, b, item, item)
			work = fmt.Sprintf("%d boxes of %d is %d * %d = %d %s.", a, b, a, b, ans, item)
		default:
			a, b = 2+a%11, 2+b%11
			ans = a
			q = fmt.Sprintf("%s shares %d %s equally among %d friends. How many does each friend get?", name, a*b, item, b)
			work = fmt.Sprintf("Each friend gets %d / %d = %d %s.", a*b, b, ans, item)
		}
		out = append(out, qa{"Question: " + q + "\nAnswer:", fmt.Sprintf(" %s\n#### %d", work, ans)})
	}
	return out
}
