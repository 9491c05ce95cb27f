package results

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ChecksumsFile sits beside the Parquet files of a shard folder and of a
// sweep folder: the SHA-256 of each file's bytes, checked on every read
// (Parquet's page CRCs cover page data only, not page headers or the
// footer, so a flipped bit there can change a number silently). In a sweep
// folder it also records the shards the tables were compacted from, so a
// reader can tell a stale table (see TablesStale). Folders written before
// checksums existed have none and are read unchecked.
const ChecksumsFile = "checksums.json"

// ErrDamaged is wrapped by every error about a file whose bytes are not
// the ones written: a checksum mismatch or an undecodable file.
var ErrDamaged = errors.New("damaged")

// checksums is a checksums.json.
type checksums struct {
	// Files maps a file name in the folder to "sha256:<hex>" of its bytes.
	Files map[string]string `json:"files"`
	// Shards, in a sweep folder only, maps the trial ID of every shard the
	// tables were compacted from to its digest (see shardDigest).
	Shards map[string]string `json:"shards,omitempty"`
	// Checksum is the SHA-256 of this file written with Checksum empty,
	// so that a damaged checksums.json is told from a stale table.
	Checksum string `json:"checksum"`
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(h[:])
}

// encodeChecksums returns c, sealed with its own checksum, as
// checksums.json bytes; equal sums give equal bytes.
func encodeChecksums(c *checksums) []byte {
	sealed := *c
	sealed.Checksum = ""
	sealed.Checksum = sum(marshalChecksums(&sealed))
	return marshalChecksums(&sealed)
}

func marshalChecksums(c *checksums) []byte {
	data, _ := json.MarshalIndent(c, "", "  ") // maps of strings always encode
	return append(data, '\n')
}

// readChecksums reads dir/checksums.json. It returns nil, nil, nil when the
// folder has none.
func readChecksums(dir string) (*checksums, []byte, error) {
	path := filepath.Join(dir, ChecksumsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("results: %w", err)
	}
	c := new(checksums)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil || !bytes.Equal(encodeChecksums(c), data) || dec.More() {
		// Anything but the bytes this package writes is damage: a flipped
		// letter in a key must not make a file's checksum disappear.
		return nil, nil, fmt.Errorf("results: %s is %w (not the checksums this tool writes)", path, ErrDamaged)
	}
	return c, data, nil
}

// verify checks data, the bytes of path, against c (nil: unchecked).
func (c *checksums) verify(path string, data []byte) error {
	if c == nil {
		return nil
	}
	want, ok := c.Files[filepath.Base(path)]
	if !ok {
		return fmt.Errorf("results: %s is %w: %s lists no checksum for it", path, ErrDamaged, filepath.Join(filepath.Dir(path), ChecksumsFile))
	}
	if got := sum(data); got != want {
		return fmt.Errorf("results: %s is %w: its SHA-256 does not match the one in %s", path, ErrDamaged, filepath.Join(filepath.Dir(path), ChecksumsFile))
	}
	return nil
}

// readVerified reads the file at path and checks it against the
// checksums.json beside it, if there is one. A mismatch is read once more
// before it is reported, since a writer may have renamed a new file and
// its checksums between the two reads.
func readVerified(path string) ([]byte, error) {
	var err error
	for range 2 {
		var (
			c    *checksums
			data []byte
		)
		if c, _, err = readChecksums(filepath.Dir(path)); err != nil {
			continue
		}
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("results: %w", err)
		}
		if err = c.verify(path, data); err == nil {
			return data, nil
		}
	}
	return nil, err
}
