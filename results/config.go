package results

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// identityKeys are the config keys that name a trial rather than set it
// up.
var identityKeys = []string{"sweep", "trial_id", "index", "seed", "method", "task", "rank"}

// ConfigPairs flattens a trial's canonical config JSON, without the keys
// that name the trial (sweep, id, index, seed, method, task, rank), into
// sorted "path=value" pairs such as "train.lr=0.001". Trials of one task,
// method and rank with equal pairs are seeds of one configuration.
func ConfigPairs(config string) ([]string, error) {
	if config == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(config), &m); err != nil {
		return nil, fmt.Errorf("results: config: %w", err)
	}
	for _, k := range identityKeys {
		delete(m, k)
	}
	if mo, ok := m["method_options"].(map[string]any); ok {
		delete(mo, "rank") // the trial's rank again
	}
	var pairs []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if obj, ok := v.(map[string]any); ok {
			for _, k := range slices.Sorted(maps.Keys(obj)) {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, obj[k])
			}
			return
		}
		b, _ := json.Marshal(v) // a value decoded from JSON encodes again
		pairs = append(pairs, prefix+"="+string(b))
	}
	walk("", m)
	return pairs, nil
}
