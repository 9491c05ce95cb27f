package tokenizer

import (
	"math/rand/v2"
	"strings"
)

// chunk is one text of the test corpus, encoded with or without the
// post-processor's special tokens.
type chunk struct {
	Text    string `json:"text"`
	Special bool   `json:"special"`
}

// fragments are the corpus's building blocks: several scripts (Latin with
// accents, precomposed and decomposed; Cyrillic, Greek, CJK, Arabic,
// Hebrew, Devanagari, Thai), emoji (ZWJ sequences, skin tones, flags,
// variation selectors), whitespace runs, tabs, CRLF, trailing spaces,
// digits and long numbers, contractions in several cases, code, and
// special tokens of the four tokenizers written into the text.
var fragments = []string{
	"The quick brown fox jumps over the lazy dog.",
	"Voilà l'été: où est le café? Ça coûte 3,50 €.",
	"Größenwahn über Straßenbahnhöfe — naïve Ärzte, Übermut.",
	"¿Dónde está el niño? ¡Qué mañana tan española!",
	"Tiếng Việt có nhiều dấu: Nguyễn, phở, đường.",
	"Cafe\u0301 re\u0301sume\u0301 (decomposed accents) and n\u0303.",
	"Съешь же ещё этих мягких французских булок, да выпей чаю.",
	"Москва — столица России; ЁЛКА и ёлка.",
	"Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Αλφάβητο ΑΒΓΔ.",
	"我能吞下玻璃而不伤身体。今天天气很好，我们去公园吧！",
	"日本語のテキスト、カタカナとひらがな。東京タワー",
	"한국어 문장입니다. 안녕하세요, 세계!",
	"العربية لغة جميلة، وهي مكتوبة من اليمين إلى اليسار.",
	"עברית: שלום עולם, מה שלומך?",
	"हिन्दी में लिखा गया वाक्य। नमस्ते दुनिया!",
	"ภาษาไทยไม่มีช่องว่างระหว่างคำ",
	"emoji: 😀😃😄 👍🏽 👋🏿 🇫🇷🇯🇵 ❤️ ✨",
	"family 👨‍👩‍👧‍👦 and coder 👩🏽‍💻 and 🏳️‍🌈 flag",
	"mixed😀text🎉without🚀spaces",
	"    four leading spaces",
	"trailing spaces   ",
	"tabs\tbetween\t\twords\t",
	"windows\r\nline\r\nendings\r\n",
	"multiple\n\n\nblank lines\n \n",
	"non\u00a0breaking\u00a0space and\u3000ideographic space",
	"  \t \n  mixed whitespace run  \t\t  ",
	"1234567890123456789012345678901234567890",
	"pi = 3.14159265358979, e = 2.718281828, 1,000,000.00",
	"dates 2024-02-29T13:45:00Z and phone +1 (555) 123-4567",
	"Ⅻ ½ ² ٣٤٥ ४५६ digits in other scripts",
	"it's don't we're they've I'm you'll he'd",
	"IT'S DON'T WE'RE THEY'VE I'M YOU'LL HE'D",
	"It'S Don'T We'Re They'Ve I'M You'Ll He'D",
	"'s 't 're 've 'm 'll 'd ''quoted'' 'single'",
	"func main() {\n\tfmt.Println(\"hello, 世界\")\n}\n",
	"def f(x):\n    return x**2 if x >= 0 else -x  # comment\n",
	"if (a !== b && c <= d) { return a->b::c; } // ops",
	"<div class=\"x\">&amp; &lt;tag&gt;</div>",
	"SELECT * FROM t WHERE id IN (1, 2, 3);",
	"snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
	"URL: https://example.com/path?q=1&r=two#frag",
	"<|endoftext|>",
	"before<|endoftext|>after",
	"<s>",
	"</s>",
	" <s> spaced </s> ",
	"<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
	"<|begin_of_text|>text<|end_of_text|>",
	"<think>reasoning</think>",
	"<unk> and < s > and <|notatoken|>",
	"...!!!???---___***",
	"\"quotes\" «guillemets» „Anführung“ 'single' “curly”",
	"a",
	"Z",
	" ",
}

// separators join fragments.
var separators = []string{" ", "", "\n", "  ", "\t", "\r\n", ". ", ", ", "\n\n", "   "}

// testCorpus is the deterministic mixed corpus (well over 100 kB): edge
// cases first, then random joins of fragments, then a few long texts.
func testCorpus() []chunk {
	var cs []chunk
	for i, f := range fragments {
		cs = append(cs, chunk{f, i%2 == 0}, chunk{" " + f, i%2 == 1})
	}
	for _, s := range []string{"", " ", "  ", "\n", "\t", "\r\n", "<s>", "<s>x", "x<s>", "<|endoftext|><|endoftext|>"} {
		cs = append(cs, chunk{s, true}, chunk{s, false})
	}
	r := rand.New(rand.NewPCG(24, 2024))
	size := 0
	for size < 110_000 {
		n := 2 + r.IntN(10)
		var b strings.Builder
		for j := 0; j < n; j++ {
			if j > 0 {
				b.WriteString(separators[r.IntN(len(separators))])
			}
			b.WriteString(fragments[r.IntN(len(fragments))])
		}
		cs = append(cs, chunk{b.String(), r.IntN(2) == 0})
		size += b.Len()
	}
	for k := 0; k < 4; k++ {
		var b strings.Builder
		for b.Len() < 4000 {
			b.WriteString(fragments[r.IntN(len(fragments))])
			b.WriteString(separators[r.IntN(3)])
		}
		cs = append(cs, chunk{b.String(), k%2 == 0})
	}
	return cs
}
