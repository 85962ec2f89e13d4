package catalog

import "fmt"

// Result is the result code of one file in a run. The set is small and
// closed; docs/catalog.md explains each code.
type Result string

// Result codes.
const (
	// ResultNew: the file was not in the previous snapshot; its content is
	// now in the repository.
	ResultNew Result = "new"
	// ResultChanged: the file differs from the previous snapshot by
	// metadata (incremental run) or was re-read in a full run; its content
	// is now in the repository.
	ResultChanged Result = "changed"
	// ResultUnchanged: same size, mtime, ctime and inode as in the previous
	// snapshot, so it was not read again. Counted on the run, not recorded
	// per file.
	ResultUnchanged Result = "unchanged"
	// ResultRetried: the file changed while it was read; it was read again
	// and the version recorded is the one that read consistently (the
	// message says how many times it was re-read).
	ResultRetried Result = "changed-while-read"
	// ResultFailed: the file could not be read (permissions, I/O error, it
	// kept changing); it is not in the snapshot and the run is partial. The
	// message holds the error.
	ResultFailed Result = "failed"
)

// Results lists every result code, for documentation and validation.
var Results = []Result{ResultNew, ResultChanged, ResultUnchanged, ResultRetried, ResultFailed}

// Valid reports whether r is a known result code.
func (r Result) Valid() bool {
	for _, k := range Results {
		if r == k {
			return true
		}
	}
	return false
}

// Kind is the kind of a run.
type Kind string

// Run kinds.
const (
	// KindFull re-reads and re-hashes every file.
	KindFull Kind = "full"
	// KindIncremental skips files whose metadata did not change.
	KindIncremental Kind = "incremental"
)

// Status is the state of a run.
type Status string

// Run states. Running is the only state that is not final.
const (
	StatusRunning     Status = "running"     // in progress in a live process
	StatusOK          Status = "ok"          // every file saved, snapshot written
	StatusPartial     Status = "partial"     // snapshot written, some files failed
	StatusFailed      Status = "failed"      // no snapshot (hook failed, repository error, ...)
	StatusInterrupted Status = "interrupted" // the process died or was stopped; the next run resumes
)

func (s Status) valid() error {
	switch s {
	case StatusRunning, StatusOK, StatusPartial, StatusFailed, StatusInterrupted:
		return nil
	}
	return fmt.Errorf("unknown run status %q", s)
}
