package safetensors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestWriteModel writes one tensor set as a single file and as 1…4 shards
// and reads each back with OpenModel: same names, values and dtypes, shards
// named as save_pretrained names them, none empty, tensors in contiguous
// runs, and an index whose total_size is the data bytes. Catches a shard
// split that drops or repeats a tensor, an empty shard, or a total_size
// counting file bytes (headers included).
func TestWriteModel(t *testing.T) {
	var ts []Tensor
	var want int64
	for i, dt := range []DType{F32, F16, BF16, F32, F16, F32} {
		n := 3 + 5*i
		d := make([]float32, n)
		for j := range d {
			d[j] = float32(j) - float32(i)/4
		}
		ts = append(ts, Tensor{Name: "layer." + string(rune('a'+i)) + ".weight", DType: dt, Shape: []int{n}, Data: d})
		want += int64(n * dt.Bits() / 8)
	}
	for _, shards := range []int{1, 2, 3, 6} {
		dir := t.TempDir()
		files, err := WriteModel(dir, ts, shards, map[string]string{"format": "pt"})
		if err != nil {
			t.Fatal(err)
		}
		if shards == 1 {
			if len(files) != 1 || filepath.Base(files[0]) != ModelFile {
				t.Fatalf("1 shard: files %v", files)
			}
		} else {
			if len(files) != shards+1 || filepath.Base(files[shards]) != IndexFile {
				t.Fatalf("%d shards: files %v", shards, files)
			}
			for s := 0; s < shards; s++ {
				if got, w := filepath.Base(files[s]), ShardName(s, shards); got != w {
					t.Errorf("shard %d: %s, want %s", s, got, w)
				}
			}
			data, err := os.ReadFile(files[shards])
			if err != nil {
				t.Fatal(err)
			}
			var idx struct {
				Metadata  map[string]int64
				WeightMap map[string]string `json:"weight_map"`
			}
			if err := json.Unmarshal(data, &idx); err != nil {
				t.Fatalf("index: %v\n%s", err, data)
			}
			if idx.Metadata["total_size"] != want {
				t.Errorf("%d shards: total_size %d, want %d", shards, idx.Metadata["total_size"], want)
			}
			// Contiguous runs: shard numbers never decrease in tensor order.
			last := ""
			for _, tt := range ts {
				s := idx.WeightMap[tt.Name]
				if s < last {
					t.Errorf("%d shards: %s in %s after %s", shards, tt.Name, s, last)
				}
				last = s
			}
		}
		m, err := OpenModel(dir)
		if err != nil {
			t.Fatalf("%d shards: %v", shards, err)
		}
		if len(m.Shards()) != shards {
			t.Errorf("%d shards: opened %d", shards, len(m.Shards()))
		}
		for _, tt := range ts {
			info, err := m.Info(tt.Name)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := m.Tensor(tt.Name)
			if err != nil {
				t.Fatal(err)
			}
			if info.DType != tt.DType || !reflect.DeepEqual(got, tt.Data) {
				t.Errorf("%d shards: %s: %s %v, want %s %v", shards, tt.Name, info.DType, got, tt.DType, tt.Data)
			}
		}
		m.Close()
	}
	if _, err := WriteModel(t.TempDir(), ts[:2], 3, nil); err == nil {
		t.Error("3 shards of 2 tensors: no error")
	}
}

// TestIndexJSON pins the index's bytes to Python's json.dumps(indent=2,
// sort_keys=True) layout, non-ASCII names escaped as \uXXXX.
func TestIndexJSON(t *testing.T) {
	got := string(indexJSON(42, map[string]string{"b": "s2", "a\u00e9\U0001F600": "s1"}))
	want := "{\n  \"metadata\": {\n    \"total_size\": 42\n  },\n  \"weight_map\": {\n    \"a\\u00e9\\ud83d\\ude00\": \"s1\",\n    \"b\": \"s2\"\n  }\n}\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
