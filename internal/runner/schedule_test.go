package runner

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/catalog"
	"github.com/cairn-backup/cairn/internal/schedule"
)

func TestEntriesFromCatalog(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	writeFile(t, filepath.Join(e.src, "a"), []byte("x"))
	e.addSource(t, &catalog.Source{Name: "nightly", Schedule: "daily 02:30"})
	e.addSource(t, &catalog.Source{Name: "manual"})
	rn := e.runner()
	run, err := rn.Run(ctx, "nightly", Options{})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := rn.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Name != "manual" || entries[0].Schedule != nil {
		t.Fatalf("entries %+v", entries)
	}
	n := entries[1]
	if n.Schedule == nil || n.Schedule.String() != "daily 02:30" || !n.Last.Equal(run.Started) {
		t.Fatalf("nightly entry %+v (run started %s)", n, run.Started)
	}
}

func TestSchedulerRunsDueSourceThroughRunner(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t)
	writeFile(t, filepath.Join(e.src, "a"), []byte("x"))
	e.addSource(t, &catalog.Source{Name: "nightly", Schedule: "daily 02:30"})
	src, _ := e.cat.Source(ctx, "nightly")
	// The clock is a day after the source was created: one slot missed.
	clk := schedule.NewManualClock(src.Created.Add(25 * time.Hour))
	rn := e.runner()
	s, err := NewScheduler(rn, schedule.Config{Clock: clk, Location: time.UTC, Poll: 1000 * time.Hour, Logger: rn.Logger})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// Wait until the scheduler sleeps until the next slot after its run.
	deadline := time.After(20 * time.Second)
	for {
		runs, _ := e.cat.Runs(ctx, catalog.RunFilter{Source: "nightly"})
		timers, changed := clk.Timers()
		if len(runs) == 1 && runs[0].Status == catalog.StatusOK && len(timers) == 1 && timers[0].Sub(clk.Now()) < 25*time.Hour {
			break
		}
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no scheduled run: runs %v timers %v", runs, timers)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	runs, _ := e.cat.Runs(context.Background(), catalog.RunFilter{Source: "nightly"})
	if len(runs) != 1 || runs[0].Kind != catalog.KindFull {
		t.Fatalf("runs %+v", runs)
	}
}
