package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cairn-backup/cairn/internal/catalog"
	"github.com/cairn-backup/cairn/internal/schedule"
)

// Entries lists the catalog's sources for the scheduler: each with its
// parsed schedule and the start of its latest run (or its creation, if it
// never ran); a scheduled source whose latest run was interrupted is marked
// to be resumed at once. A source whose schedule no longer parses is logged and left
// out rather than stopping the others.
func (r *Runner) Entries(ctx context.Context) ([]schedule.Entry, error) {
	sources, err := r.Catalog.Sources(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]schedule.Entry, 0, len(sources))
	for _, s := range sources {
		e := schedule.Entry{Name: s.Name, Last: s.Created}
		if s.Schedule != "" {
			sch, err := schedule.Parse(s.Schedule)
			if err != nil {
				r.logger().Error("source schedule", "source", s.Name, "err", err)
				continue
			}
			e.Schedule = sch
		}
		last, err := r.Catalog.LastRun(ctx, s.Name)
		if err != nil {
			return nil, err
		}
		if last != nil {
			e.Last = last.Started
			e.Resume = last.Status == catalog.StatusInterrupted
		}
		out = append(out, e)
	}
	return out, nil
}

// NewScheduler returns a scheduler that runs the catalog's sources with r.
// cfg's Sources and Run are filled in; set its Clock, Location, Parallel
// and Logger as needed. A partial run counts as done (its failures are in
// the catalog); a source already running in another process is skipped
// until its next slot.
func NewScheduler(r *Runner, cfg schedule.Config) (*schedule.Scheduler, error) {
	cfg.Sources = r.Entries
	cfg.Run = func(ctx context.Context, name string) error {
		_, err := r.Run(ctx, name, Options{})
		if errors.Is(err, ErrPartial) {
			return nil
		}
		if errors.Is(err, catalog.ErrRunning) {
			r.logger().Info("source already running elsewhere", "source", name)
			return nil
		}
		if err != nil {
			return fmt.Errorf("scheduled run: %w", err)
		}
		return nil
	}
	return schedule.New(cfg)
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}
