package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"peftbench/internal/atomicfile"
)

// AnnotationsFile holds a sweep's tags and notes on its trials, in the
// sweep folder beside the tables. The user writes it (through bench serve);
// the runner never touches it, so a rerun keeps it, and exports carry it.
const AnnotationsFile = "annotations.json"

// Annotation is what a user attached to one trial.
type Annotation struct {
	Tags []string `json:"tags,omitempty"`
	Note string   `json:"note,omitempty"`
}

// Limits on what an annotation may hold.
const (
	MaxTagLen  = 64
	MaxTags    = 32
	MaxNoteLen = 4096
)

// annotationsFile is the file's layout.
type annotationsFile struct {
	Version int                   `json:"version"`
	Trials  map[string]Annotation `json:"trials"`
}

// CheckTag says why tag cannot be a tag: empty, longer than MaxTagLen,
// invalid UTF-8, surrounding space, a control character or a comma (the
// separator of tag lists in exports).
func CheckTag(tag string) error {
	switch {
	case tag == "":
		return errors.New("a tag cannot be empty")
	case len(tag) > MaxTagLen:
		return fmt.Errorf("tag %.20q...: longer than %d bytes", tag, MaxTagLen)
	case !utf8.ValidString(tag):
		return fmt.Errorf("tag %q: not UTF-8", tag)
	case strings.TrimSpace(tag) != tag:
		return fmt.Errorf("tag %q: leading or trailing space", tag)
	case strings.ContainsRune(tag, ','):
		return fmt.Errorf("tag %q: contains a comma", tag)
	case strings.IndexFunc(tag, unicode.IsControl) >= 0:
		return fmt.Errorf("tag %q: contains a control character", tag)
	}
	return nil
}

// Check says why a is not a valid annotation.
func (a Annotation) Check() error {
	if len(a.Tags) > MaxTags {
		return fmt.Errorf("%d tags, at most %d", len(a.Tags), MaxTags)
	}
	for _, t := range a.Tags {
		if err := CheckTag(t); err != nil {
			return err
		}
	}
	if len(a.Note) > MaxNoteLen {
		return fmt.Errorf("note of %d bytes, at most %d", len(a.Note), MaxNoteLen)
	}
	if !utf8.ValidString(a.Note) {
		return errors.New("note: not UTF-8")
	}
	return nil
}

// ReadAnnotations reads a sweep's annotations; none is an empty map.
func ReadAnnotations(sweepDir string) (map[string]Annotation, error) {
	path := filepath.Join(sweepDir, AnnotationsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Annotation{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	var f annotationsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("results: %s: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("results: %s: version %d, this build reads 1", path, f.Version)
	}
	for id, a := range f.Trials {
		if err := checkID(id); err != nil {
			return nil, fmt.Errorf("results: %s: %w", path, err)
		}
		if err := a.Check(); err != nil {
			return nil, fmt.Errorf("results: %s: trial %s: %w", path, id, err)
		}
	}
	if f.Trials == nil {
		f.Trials = map[string]Annotation{}
	}
	return f.Trials, nil
}

// annotateMu serializes UpdateAnnotation's read-modify-write in a process.
var annotateMu sync.Mutex

// UpdateAnnotation applies edit to one trial's annotation and rewrites the
// file atomically; tags are deduplicated and sorted, and an annotation left
// empty is dropped. It returns the annotation as stored.
func UpdateAnnotation(sweepDir, trialID string, edit func(*Annotation)) (Annotation, error) {
	if err := checkID(trialID); err != nil {
		return Annotation{}, err
	}
	annotateMu.Lock()
	defer annotateMu.Unlock()
	all, err := ReadAnnotations(sweepDir)
	if err != nil {
		return Annotation{}, err
	}
	a := all[trialID]
	a.Tags = slices.Clone(a.Tags)
	edit(&a)
	slices.Sort(a.Tags)
	a.Tags = slices.Compact(a.Tags)
	if len(a.Tags) == 0 {
		a.Tags = nil
	}
	if err := a.Check(); err != nil {
		return Annotation{}, fmt.Errorf("results: trial %s: %w", trialID, err)
	}
	if a.Tags == nil && a.Note == "" {
		delete(all, trialID)
	} else {
		all[trialID] = a
	}
	data, err := json.MarshalIndent(annotationsFile{Version: 1, Trials: all}, "", "  ")
	if err != nil {
		return Annotation{}, err
	}
	if err := atomicfile.WriteFile(filepath.Join(sweepDir, AnnotationsFile), append(data, '\n')); err != nil {
		return Annotation{}, fmt.Errorf("results: %w", err)
	}
	return a, nil
}

// Annotate appends the user's annotations to a flat table as two string
// columns, "tags" (comma-joined; CheckTag refuses commas in a tag) and
// "note", null where a trial has none. A table whose sweep has no
// annotations is left as it is.
func (t *FlatTable) Annotate(ann map[string]Annotation) {
	if len(ann) == 0 {
		return
	}
	id := slices.IndexFunc(t.Columns, func(c FlatColumn) bool { return c.Name == "trial_id" })
	if id < 0 {
		return
	}
	t.Columns = append(t.Columns, FlatColumn{Name: "tags", Type: TypeString}, FlatColumn{Name: "note", Type: TypeString})
	for i, row := range t.Rows {
		var tags, note any
		if s, ok := row[id].(string); ok {
			if a, ok := ann[s]; ok {
				if len(a.Tags) > 0 {
					tags = strings.Join(a.Tags, ",")
				}
				if a.Note != "" {
					note = a.Note
				}
			}
		}
		t.Rows[i] = append(row, tags, note)
	}
}
