package schedule

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeRuns is a Run function that records each start and blocks until the
// test releases it.
type fakeRuns struct {
	mu       sync.Mutex
	starts   map[string]int
	active   map[string]int
	overlap  atomic.Bool // two runs of one source at once
	started  chan string
	release  chan struct{}
	blocking bool
}

func newFakeRuns(blocking bool) *fakeRuns {
	return &fakeRuns{starts: map[string]int{}, active: map[string]int{}, started: make(chan string, 16),
		release: make(chan struct{}), blocking: blocking}
}

func (f *fakeRuns) run(ctx context.Context, name string) error {
	f.mu.Lock()
	f.starts[name]++
	f.active[name]++
	if f.active[name] > 1 {
		f.overlap.Store(true)
	}
	f.mu.Unlock()
	f.started <- name
	if f.blocking {
		select {
		case <-f.release:
		case <-ctx.Done():
		}
	}
	f.mu.Lock()
	f.active[name]--
	f.mu.Unlock()
	return nil
}

func (f *fakeRuns) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts[name]
}

// waitTimer waits until the scheduler sleeps with a timer set for at.
func waitTimer(t *testing.T, c *ManualClock, at time.Time) {
	t.Helper()
	deadline := time.After(10 * time.Second) // a hang guard, not a timing assertion
	for {
		timers, changed := c.Timers()
		for _, tt := range timers {
			if tt.Equal(at) {
				return
			}
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("scheduler never slept until %s (timers %v)", at, timers)
		}
	}
}

func waitStart(t *testing.T, f *fakeRuns) string {
	t.Helper()
	select {
	case name := <-f.started:
		return name
	case <-time.After(10 * time.Second):
		t.Fatal("no run started")
		return ""
	}
}

func startScheduler(t *testing.T, cfg Config) {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

const longPoll = 1000 * time.Hour

func TestSchedulerCatchesUpOnceThenFollowsSlots(t *testing.T) {
	loc := time.UTC
	daily, _ := Parse("daily 02:30")
	clk := NewManualClock(utc("2026-01-09T10:00:00Z"))
	runs := newFakeRuns(false)
	lastRun := utc("2026-01-05T02:30:00Z") // down since Monday
	startScheduler(t, Config{
		Clock: clk, Location: loc, Poll: longPoll, Run: runs.run,
		Sources: func(context.Context) ([]Entry, error) {
			return []Entry{{Name: "docs", Schedule: daily, Last: lastRun}, {Name: "manual", Last: lastRun}}, nil
		},
	})
	if name := waitStart(t, runs); name != "docs" {
		t.Fatalf("started %s", name)
	}
	// Once caught up, it sleeps until the next slot: one run for four missed days.
	waitTimer(t, clk, utc("2026-01-10T02:30:00Z"))
	if n := runs.count("docs"); n != 1 {
		t.Fatalf("catch-up ran %d times, want 1", n)
	}
	clk.Set(utc("2026-01-10T02:30:00Z"))
	waitStart(t, runs)
	waitTimer(t, clk, utc("2026-01-11T02:30:00Z"))
	if n := runs.count("docs"); n != 2 {
		t.Fatalf("after the slot: %d runs, want 2", n)
	}
	if runs.count("manual") != 0 {
		t.Fatal("a source without schedule was run")
	}
}

func TestSchedulerNeverRunsOneSourceTwiceAtOnce(t *testing.T) {
	hourly, _ := Parse("hourly")
	start := utc("2026-01-09T10:00:00Z")
	clk := NewManualClock(start)
	runs := newFakeRuns(true)
	startScheduler(t, Config{
		Clock: clk, Location: time.UTC, Poll: time.Hour, Parallel: 4, Run: runs.run,
		Sources: func(context.Context) ([]Entry, error) {
			return []Entry{{Name: "a", Schedule: hourly, Last: start.Add(-time.Hour)}}, nil
		},
	})
	waitStart(t, runs)
	// The run takes five hours: the scheduler wakes each hour and must not
	// start "a" again.
	for i := 1; i <= 5; i++ {
		clk.Set(start.Add(time.Duration(i) * time.Hour))
		waitTimer(t, clk, start.Add(time.Duration(i+1)*time.Hour))
	}
	if n := runs.count("a"); n != 1 || runs.overlap.Load() {
		t.Fatalf("%d starts while running (overlap %v), want 1", n, runs.overlap.Load())
	}
	// When it ends, the missed slots are caught up once.
	runs.release <- struct{}{}
	waitStart(t, runs)
	runs.release <- struct{}{}
	waitTimer(t, clk, start.Add(6*time.Hour))
	if n := runs.count("a"); n != 2 || runs.overlap.Load() {
		t.Fatalf("%d starts after the long run, want 2", n)
	}
}

func TestSchedulerParallelLimitAndWake(t *testing.T) {
	hourly, _ := Parse("hourly")
	now := utc("2026-01-09T10:30:00Z")
	clk := NewManualClock(now)
	runs := newFakeRuns(true)
	var mu sync.Mutex
	entries := []Entry{{Name: "a", Schedule: hourly, Last: now.Add(-2 * time.Hour)}}
	s, err := New(Config{
		Clock: clk, Location: time.UTC, Poll: longPoll, Run: runs.run, Parallel: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sources: func(context.Context) ([]Entry, error) {
			mu.Lock()
			defer mu.Unlock()
			return append([]Entry(nil), entries...), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitStart(t, runs)
	// A new source, due at once, waits for the one slot.
	mu.Lock()
	entries = append(entries, Entry{Name: "b", Schedule: hourly, Last: now.Add(-2 * time.Hour)})
	mu.Unlock()
	s.Wake()
	waitTimer(t, clk, now.Add(longPoll))
	if runs.count("b") != 0 {
		t.Fatal("b started beyond the parallel limit")
	}
	runs.release <- struct{}{}
	if name := waitStart(t, runs); name != "b" {
		t.Fatalf("started %s, want b", name)
	}
	// Cancelling stops the scheduler after the run in progress returns.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if runs.count("a") != 1 || runs.count("b") != 1 {
		t.Fatalf("runs a=%d b=%d", runs.count("a"), runs.count("b"))
	}
}

func TestSchedulerResumesInterruptedRunAtOnce(t *testing.T) {
	daily, _ := Parse("daily 02:30")
	now := utc("2026-01-09T10:00:00Z")
	clk := NewManualClock(now)
	runs := newFakeRuns(false)
	// The last run started after today's slot but was interrupted.
	last := utc("2026-01-09T09:00:00Z")
	startScheduler(t, Config{
		Clock: clk, Location: time.UTC, Poll: longPoll, Run: runs.run,
		Sources: func(context.Context) ([]Entry, error) {
			return []Entry{{Name: "docs", Schedule: daily, Last: last, Resume: true}}, nil
		},
	})
	waitStart(t, runs)
	// Resumed once, then back to the schedule although Resume stays set
	// (a source list that lags behind).
	waitTimer(t, clk, utc("2026-01-10T02:30:00Z"))
	if n := runs.count("docs"); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
}
