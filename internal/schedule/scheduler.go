package schedule

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Entry is one scheduled source as the Scheduler sees it.
type Entry struct {
	Name     string
	Schedule *Schedule // nil: on demand only, never started by the scheduler
	// Last is when the source's latest run started, or, if it never ran,
	// when it was created: the next slot after it is the one due.
	Last time.Time
	// Resume asks for a run now, whatever the schedule says: the latest
	// run was interrupted and should be finished. It is ignored once this
	// scheduler has started the source after Last.
	Resume bool
}

// Config configures a Scheduler.
type Config struct {
	// Sources lists the scheduled sources. It is called at start and at
	// every wake-up, so sources added or changed elsewhere are picked up.
	Sources func(ctx context.Context) ([]Entry, error)
	// Run runs one source. Its error is logged; the source is not retried
	// before its next slot.
	Run func(ctx context.Context, name string) error
	// Clock is the time source; SystemClock if nil.
	Clock Clock
	// Location is the time zone of the schedules; time.Local if nil.
	Location *time.Location
	// Parallel is how many different sources may run at once; 1 if zero.
	Parallel int
	// Poll is the longest sleep between looks at Sources; 1 minute if zero.
	Poll time.Duration
	// Logger receives one record per start and end of a run; slog.Default
	// if nil.
	Logger *slog.Logger
}

// Scheduler runs sources when they are due: never two runs of one source at
// once, and after downtime each missed source once, not once per missed
// slot. Build it with New and start it with Run.
type Scheduler struct {
	cfg  Config
	wake chan struct{}
}

// New returns a Scheduler for cfg.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Sources == nil || cfg.Run == nil {
		return nil, errors.New("scheduler: Sources and Run are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 1
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Scheduler{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Wake makes a running scheduler look at its sources now (after one was
// added or edited) instead of at the end of its current sleep.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

type finished struct {
	name string
	err  error
}

// Run schedules until ctx is done, then waits for the runs in progress
// (which see ctx cancelled) and returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	log := s.cfg.Logger
	running := map[string]bool{}
	started := map[string]time.Time{} // when this scheduler last started each source
	done := make(chan finished)
	var wg sync.WaitGroup
	defer wg.Wait()
	// drain collects the runs in progress, which see ctx cancelled, so
	// their goroutines can end.
	drain := func() error {
		for len(running) > 0 {
			f := <-done
			delete(running, f.name)
		}
		return nil
	}

	for {
		if ctx.Err() != nil {
			return drain()
		}
		now := s.cfg.Clock.Now()
		wakeAt := now.Add(s.cfg.Poll)
		entries, err := s.cfg.Sources(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return drain()
			}
			log.Error("scheduler: list sources", "err", err)
			entries = nil
		}
		for _, e := range entries {
			if e.Schedule == nil || running[e.Name] {
				continue
			}
			last := e.Last
			t, ok := started[e.Name]
			if ok && t.After(last) {
				last = t
			}
			due, slot := Due(e.Schedule, last, now, s.cfg.Location)
			if e.Resume && !(ok && t.After(e.Last)) {
				due, slot = true, now
			}
			if !due {
				if !slot.IsZero() && slot.Before(wakeAt) {
					wakeAt = slot
				}
				continue
			}
			if len(running) >= s.cfg.Parallel {
				continue // a finishing run wakes us
			}
			running[e.Name] = true
			started[e.Name] = now
			log.Info("scheduler: run", "source", e.Name, "slot", slot)
			wg.Add(1)
			go func(name string) {
				defer wg.Done()
				err := s.cfg.Run(ctx, name)
				done <- finished{name, err}
			}(e.Name)
		}

		timer := s.cfg.Clock.NewTimer(wakeAt.Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			return drain()
		case f := <-done:
			timer.Stop()
			delete(running, f.name)
			if f.err != nil {
				log.Error("scheduler: run failed", "source", f.name, "err", f.err)
			} else {
				log.Info("scheduler: run done", "source", f.name)
			}
		case <-s.wake:
			timer.Stop()
		case <-timer.C():
		}
	}
}
