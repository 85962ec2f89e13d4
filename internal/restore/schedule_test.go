package restore

import (
	"testing"

	"github.com/cairn-backup/cairn/internal/repo"
)

// TestScheduleSplitsLargeFiles: a large file goes to the workers in
// several pieces covering every blob once; small files share a batch.
func TestScheduleSplitsLargeFiles(t *testing.T) {
	rs := &restorer{jobs: make(chan job, 100)}
	big := &fileState{path: "big"}
	for i := range 40 {
		big.blobs = append(big.blobs, repo.PackedBlob{BlobEntry: repo.BlobEntry{RawLen: 1 << 20}})
		big.offs = append(big.offs, int64(i)<<20)
	}
	big.size = 40 << 20
	rs.schedule(big)
	if n := len(rs.jobs); n < 2 {
		t.Fatalf("large file handed out as %d jobs, want several", n)
	}
	if got := big.pending.Load(); got != int64(len(rs.jobs)) {
		t.Errorf("pending pieces %d, jobs %d", got, len(rs.jobs))
	}
	next := 0
	for len(rs.jobs) > 0 {
		j := <-rs.jobs
		if len(j) != 1 || j[0].f != big || j[0].lo != next || j[0].hi <= j[0].lo {
			t.Fatalf("piece %+v, want one piece from blob %d", j, next)
		}
		next = j[0].hi
	}
	if next != 40 {
		t.Errorf("pieces end at blob %d, want 40", next)
	}

	for range 3 {
		rs.schedule(&fileState{blobs: make([]repo.PackedBlob, 1), offs: make([]int64, 1), size: 1000})
	}
	if len(rs.jobs) != 0 || len(rs.batch) != 3 {
		t.Fatalf("small files: %d jobs, batch of %d; want one batch of 3 held back", len(rs.jobs), len(rs.batch))
	}
	rs.flushBatch()
	if j := <-rs.jobs; len(j) != 3 {
		t.Errorf("batch of %d files, want 3", len(j))
	}
}
