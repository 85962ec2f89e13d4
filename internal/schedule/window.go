package schedule

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ErrWindow is wrapped by every error about a malformed window spec.
var ErrWindow = errors.New("bad time window")

// Window is a set of daily wall-clock intervals, e.g. "22:00-06:00" (which
// crosses midnight) or "12:00-13:00,22:00-06:00". The zero Window is always
// open. An interval whose start equals its end is the whole day.
type Window struct {
	spans []span
}

type span struct{ start, end int } // minutes of the day; end exclusive

// ParseWindow parses a window spec; "" and "always" give the zero Window.
func ParseWindow(spec string) (Window, error) {
	spec = strings.TrimSpace(strings.ToLower(spec))
	if spec == "" || spec == "always" {
		return Window{}, nil
	}
	var w Window
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		a, b, ok := strings.Cut(part, "-")
		if !ok {
			return Window{}, fmt.Errorf("%w %q: %q is not START-END, e.g. 22:00-06:00", ErrWindow, spec, part)
		}
		ah, am, err := parseClock(strings.TrimSpace(a))
		if err == nil && ah < 0 {
			err = errors.New("give the hour")
		}
		if err != nil {
			return Window{}, fmt.Errorf("%w %q: %v", ErrWindow, spec, err)
		}
		bh, bm, err := parseClock(strings.TrimSpace(b))
		if err == nil && bh < 0 {
			err = errors.New("give the hour")
		}
		if err != nil {
			return Window{}, fmt.Errorf("%w %q: %v", ErrWindow, spec, err)
		}
		w.spans = append(w.spans, span{ah*60 + am, bh*60 + bm})
	}
	return w, nil
}

// String formats the window as ParseWindow reads it.
func (w Window) String() string {
	if w.Always() {
		return "always"
	}
	parts := make([]string, len(w.spans))
	for i, s := range w.spans {
		parts[i] = fmt.Sprintf("%02d:%02d-%02d:%02d", s.start/60, s.start%60, s.end/60, s.end%60)
	}
	return strings.Join(parts, ",")
}

// Always reports whether the window is always open.
func (w Window) Always() bool {
	if len(w.spans) == 0 {
		return true
	}
	for _, s := range w.spans {
		if s.start == s.end {
			return true
		}
	}
	return false
}

func (s span) contains(min int) bool {
	if s.start == s.end {
		return true
	}
	if s.start < s.end {
		return min >= s.start && min < s.end
	}
	return min >= s.start || min < s.end // crosses midnight
}

// Open reports whether the window is open at t, by the wall clock in loc.
func (w Window) Open(t time.Time, loc *time.Location) bool {
	if w.Always() {
		return true
	}
	l := t.In(loc)
	min := l.Hour()*60 + l.Minute()
	for _, s := range w.spans {
		if s.contains(min) {
			return true
		}
	}
	return false
}

// edges returns the instants, after t and within a few days, at which a
// span starts (starts) or ends, in order.
func (w Window) edges(t time.Time, loc *time.Location, starts bool) []time.Time {
	l := t.In(loc)
	var out []time.Time
	for day := -1; day <= 3; day++ {
		d := time.Date(l.Year(), l.Month(), l.Day()+day, 12, 0, 0, 0, time.UTC)
		for _, s := range w.spans {
			m := s.end
			if starts {
				m = s.start
			}
			for _, c := range wallInstants(d.Year(), d.Month(), d.Day(), m/60, m%60, loc) {
				if c.After(t) {
					out = append(out, c)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// NextOpen returns t if the window is open at t, else the instant it next
// opens.
func (w Window) NextOpen(t time.Time, loc *time.Location) time.Time {
	if w.Open(t, loc) {
		return t
	}
	for _, c := range w.edges(t, loc, true) {
		if w.Open(c, loc) {
			return c
		}
	}
	return time.Time{} // only when every span falls in a DST gap for days
}

// NextClose returns the instant after t at which the window closes, or
// the zero time if it never does. If it is closed at t, it returns t.
func (w Window) NextClose(t time.Time, loc *time.Location) time.Time {
	if w.Always() {
		return time.Time{}
	}
	if !w.Open(t, loc) {
		return t
	}
	for _, c := range w.edges(t, loc, false) {
		if !w.Open(c, loc) {
			return c
		}
	}
	return time.Time{} // spans chain into one another: open for days
}

// wallInstants is wallInstant, plus the second occurrence of a wall time
// that clocks falling back repeat.
func wallInstants(y int, mo time.Month, d, h, m int, loc *time.Location) []time.Time {
	first := wallInstant(y, mo, d, h, m, loc)
	out := []time.Time{first}
	_, end := first.ZoneBounds()
	if end.IsZero() {
		return out
	}
	_, offBefore := first.Zone()
	_, offAfter := end.Zone()
	if offBefore > offAfter {
		second := first.Add(time.Duration(offBefore-offAfter) * time.Second)
		if !second.Before(end) && wallOf(second).Equal(wallOf(first)) {
			out = append(out, second)
		}
	}
	return out
}
