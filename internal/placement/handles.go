package placement

import (
	"sort"

	"github.com/cairn-backup/cairn/internal/store"
)

// Handles lists the objects the record places and has not forgotten, in
// (type, name) order: what a caller compares with the repository to find
// objects deleted locally (by prune or forget) that hosts still keep.
func (e *Engine) Handles() []store.Handle {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]store.Handle, 0, len(e.objs))
	for h, o := range e.objs {
		if !o.forgotten {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Type != out[b].Type {
			return out[a].Type < out[b].Type
		}
		return out[a].Name < out[b].Name
	})
	return out
}
