package tokenizer

import "sync"

// gpt2Matcher is the ByteLevel pre-tokenizer's split, compiled once.
var gpt2Matcher = sync.OnceValue(func() matcher {
	if fast := knownPattern(gpt2Pattern); fast != nil {
		return fast
	}
	m, err := compileRegex(gpt2Pattern)
	if err != nil {
		panic(err)
	}
	return m
})

// knownPattern is a hand-written scanner for a pre-tokenizer regex this
// package knows, nil for others (which run on regexp2).
func knownPattern(pattern string) matcher { return nil }
