package backup

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// excluder decides which paths are left out: patterns without a slash
// match a name anywhere; patterns with one match the whole path, where **
// stands for any number of folders. CACHEDIR.TAG marks cache folders.
type excluder struct {
	byName []string
	byPath [][]string
	caches bool
}

func newExcluder(patterns []string, caches bool) (*excluder, error) {
	e := &excluder{caches: caches}
	for _, p := range patterns {
		if p == "" {
			continue
		}
		if _, err := filepath.Match(strings.ReplaceAll(p, "**", "*"), ""); err != nil {
			return nil, fmt.Errorf("exclude pattern %q: %w", p, err)
		}
		if !strings.Contains(p, "/") {
			e.byName = append(e.byName, p)
			continue
		}
		p = strings.TrimSuffix(p, "/")
		e.byPath = append(e.byPath, strings.Split(strings.TrimPrefix(p, "/"), "/"))
	}
	return e, nil
}

func (e *excluder) excluded(path, name string) bool {
	for _, p := range e.byName {
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	if len(e.byPath) == 0 {
		return false
	}
	parts := strings.Split(strings.TrimPrefix(filepath.ToSlash(path), "/"), "/")
	for _, p := range e.byPath {
		if matchParts(p, parts) {
			return true
		}
	}
	return false
}

func matchParts(pat, parts []string) bool {
	if len(pat) == 0 {
		return len(parts) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(parts); i++ {
			if matchParts(pat[1:], parts[i:]) {
				return true
			}
		}
		return false
	}
	if len(parts) == 0 {
		return false
	}
	if ok, _ := filepath.Match(pat[0], parts[0]); !ok {
		return false
	}
	return matchParts(pat[1:], parts[1:])
}

var cacheTagSig = []byte("Signature: 8a477f597d28d172789f06886806bc55")

// excludedDir reports whether a folder's contents are left out: it holds a
// valid CACHEDIR.TAG (the folder itself is kept, empty, with the tag).
func (e *excluder) excludedDir(path string) bool {
	if !e.caches {
		return false
	}
	f, err := os.Open(filepath.Join(path, "CACHEDIR.TAG"))
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(cacheTagSig))
	n, _ := f.Read(buf)
	return bytes.Equal(buf[:n], cacheTagSig)
}
