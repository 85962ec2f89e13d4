// Package schedule decides when things run: schedule specs (cron syntax and
// plain words) and their next time across daylight-saving changes, missed
// slots after downtime, time windows for WAN traffic, bandwidth limits, and
// a Scheduler that runs due sources.
//
// Time comes from a Clock, never from time.Now directly, so every decision
// can be tested with a ManualClock.
//
// # Schedule specs
//
// A spec is either five cron fields — minute hour day-of-month month
// day-of-week, each a list of values, ranges (a-b) and steps (*/n, a-b/n,
// a/n), months and weekdays also by name (jan, mon; 0 and 7 are Sunday) —
// or plain words:
//
//	hourly [:MM]           every hour (at minute MM)
//	daily [HH:MM]          every day at HH:MM (00:00)
//	weekdays [HH:MM]       Monday to Friday
//	weekends [HH:MM]       Saturday and Sunday
//	weekly [DAY] [HH:MM]   once a week (Sunday 00:00)
//	DAY[,DAY...] [HH:MM]   on those days, e.g. "mon,thu 18:00"
//	monthly [D] [HH:MM]    on day D of each month (1)
//	every DURATION         e.g. "every 6h", "every 15m", "every 2d"
//	@hourly @daily @midnight @weekly @monthly @yearly @annually
//
// Cron's rule for the two day fields holds: when both are restricted, a
// day matches if either does.
//
// # Daylight-saving time
//
// Slots are wall-clock times in the schedule's location. A slot that does
// not exist (the hour skipped when clocks spring forward) runs once, at the
// first valid instant after the gap; a slot that occurs twice (the hour
// repeated when clocks fall back) runs once, at its first occurrence.
// "every" intervals that divide an hour or a day evenly are aligned to the
// wall clock ("every 6h" is 00:00, 06:00, 12:00, 18:00); other intervals
// count from the previous run.
package schedule

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// ErrSpec is wrapped by every error about a malformed spec.
var ErrSpec = errors.New("bad schedule")

// Schedule is a parsed schedule spec.
type Schedule struct {
	spec  string
	every time.Duration // > 0: an interval counted from the previous run

	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	domStar, dowStar              bool   // the field was "*" (unrestricted)
}

// String returns the spec the schedule was parsed from.
func (s *Schedule) String() string { return s.spec }

// Parse parses a schedule spec (see the package documentation).
func Parse(spec string) (*Schedule, error) {
	s, err := parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrSpec, spec, err)
	}
	s.spec = strings.Join(strings.Fields(spec), " ")
	return s, nil
}

var dayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
var monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
	"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}

func parse(spec string) (*Schedule, error) {
	f := strings.Fields(strings.ToLower(spec))
	if len(f) == 0 {
		return nil, errors.New("empty")
	}
	if len(f) == 5 && !isWord(f[0]) {
		return parseCron(f)
	}
	return parseWords(f)
}

func isWord(s string) bool {
	switch s {
	case "hourly", "daily", "weekdays", "weekends", "weekly", "monthly", "every":
		return true
	}
	return strings.HasPrefix(s, "@") || isDayList(s)
}

func isDayList(s string) bool {
	for _, d := range strings.Split(s, ",") {
		if _, ok := dayNames[d]; !ok {
			return false
		}
	}
	return true
}

func parseCron(f []string) (*Schedule, error) {
	s := &Schedule{}
	var err error
	if s.minute, err = parseField(f[0], 0, 59, nil); err != nil {
		return nil, fmt.Errorf("minute: %v", err)
	}
	if s.hour, err = parseField(f[1], 0, 23, nil); err != nil {
		return nil, fmt.Errorf("hour: %v", err)
	}
	if s.dom, err = parseField(f[2], 1, 31, nil); err != nil {
		return nil, fmt.Errorf("day of month: %v", err)
	}
	if s.month, err = parseField(f[3], 1, 12, monthNames); err != nil {
		return nil, fmt.Errorf("month: %v", err)
	}
	if s.dow, err = parseField(f[4], 0, 7, dayNames); err != nil {
		return nil, fmt.Errorf("day of week: %v", err)
	}
	if s.dow&(1<<7) != 0 {
		s.dow = s.dow&^(1<<7) | 1
	}
	s.domStar = strings.HasPrefix(f[2], "*")
	s.dowStar = strings.HasPrefix(f[4], "*")
	if !s.possible() {
		return nil, errors.New("no day ever matches")
	}
	return s, nil
}

// possible reports whether some date matches the day fields (rejects
// "0 0 30 feb *").
func (s *Schedule) possible() bool {
	if !s.domStar && !s.dowStar || s.domStar {
		return true // weekdays occur in every month
	}
	maxDays := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	for m := 1; m <= 12; m++ {
		if s.month&(1<<m) != 0 && s.dom&(1<<(maxDays[m]+1)-1) != 0 {
			return true
		}
	}
	return false
}

func parseField(field string, lo, hi int, names map[string]int) (uint64, error) {
	var set uint64
	for _, item := range strings.Split(field, ",") {
		if item == "" {
			return 0, errors.New("empty list item")
		}
		rng, stepStr, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 || n > hi-lo+1 {
				return 0, fmt.Errorf("bad step %q", stepStr)
			}
			step = n
		}
		var a, b int
		switch {
		case rng == "*":
			a, b = lo, hi
		case strings.Contains(rng, "-"):
			as, bs, _ := strings.Cut(rng, "-")
			var err error
			if a, err = value(as, lo, hi, names); err != nil {
				return 0, err
			}
			if b, err = value(bs, lo, hi, names); err != nil {
				return 0, err
			}
			if a > b {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			var err error
			if a, err = value(rng, lo, hi, names); err != nil {
				return 0, err
			}
			b = a
			if hasStep {
				b = hi
			}
		}
		for v := a; v <= b; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func value(s string, lo, hi int, names map[string]int) (int, error) {
	if v, ok := names[s]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%q is not a value from %d to %d", s, lo, hi)
	}
	return v, nil
}

// parseClock parses "HH:MM" (or ":MM" when minuteOnly).
func parseClock(s string) (h, m int, err error) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || len(ms) != 2 || len(hs) > 2 {
		return 0, 0, fmt.Errorf("%q is not a time HH:MM", s)
	}
	if hs == "" {
		h = -1
	} else if h, err = strconv.Atoi(hs); err != nil || h < 0 || h > 23 {
		return 0, 0, fmt.Errorf("%q is not a time HH:MM", s)
	}
	if m, err = strconv.Atoi(ms); err != nil || m < 0 || m > 59 {
		return 0, 0, fmt.Errorf("%q is not a time HH:MM", s)
	}
	return h, m, nil
}

func parseWords(f []string) (*Schedule, error) {
	at := func(rest []string) (int, int, error) {
		switch len(rest) {
		case 0:
			return 0, 0, nil
		case 1:
			h, m, err := parseClock(rest[0])
			if err == nil && h < 0 {
				err = fmt.Errorf("%q: give the hour, HH:MM", rest[0])
			}
			return h, m, err
		}
		return 0, 0, fmt.Errorf("unexpected %q", strings.Join(rest[1:], " "))
	}
	cron := func(m, h int, dom, month, dow string) (*Schedule, error) {
		return parseCron([]string{strconv.Itoa(m), strconv.Itoa(h), dom, month, dow})
	}
	w, rest := f[0], f[1:]
	if strings.HasPrefix(w, "@") && len(rest) > 0 {
		return nil, fmt.Errorf("unexpected %q after %s", strings.Join(rest, " "), w)
	}
	switch w {
	case "@hourly":
		w = "hourly"
	case "@daily", "@midnight":
		w = "daily"
	case "@weekly":
		w = "weekly"
	case "@monthly":
		w = "monthly"
	case "@yearly", "@annually":
		return parseCron([]string{"0", "0", "1", "1", "*"})
	}
	switch w {
	case "hourly":
		m := 0
		switch len(rest) {
		case 0:
		case 1:
			h, mm, err := parseClock(rest[0])
			if err != nil || h >= 0 {
				return nil, fmt.Errorf("hourly takes a minute, e.g. \"hourly :15\"")
			}
			m = mm
		default:
			return nil, fmt.Errorf("unexpected %q", strings.Join(rest[1:], " "))
		}
		return parseCron([]string{strconv.Itoa(m), "*", "*", "*", "*"})
	case "daily", "weekdays", "weekends":
		h, m, err := at(rest)
		if err != nil {
			return nil, err
		}
		dow := map[string]string{"daily": "*", "weekdays": "1-5", "weekends": "0,6"}[w]
		return cron(m, h, "*", "*", dow)
	case "weekly":
		day := "0"
		if len(rest) > 0 && isDayList(rest[0]) {
			if strings.Contains(rest[0], ",") {
				return nil, fmt.Errorf("weekly takes one day; for several write \"%s ...\"", rest[0])
			}
			day, rest = rest[0], rest[1:]
		}
		h, m, err := at(rest)
		if err != nil {
			return nil, err
		}
		return cron(m, h, "*", "*", day)
	case "monthly":
		day := "1"
		if len(rest) > 0 && !strings.Contains(rest[0], ":") {
			d, err := strconv.Atoi(rest[0])
			if err != nil || d < 1 || d > 31 {
				return nil, fmt.Errorf("%q is not a day of the month", rest[0])
			}
			day, rest = rest[0], rest[1:]
		}
		h, m, err := at(rest)
		if err != nil {
			return nil, err
		}
		return cron(m, h, day, "*", "*")
	case "every":
		if len(rest) != 1 {
			return nil, errors.New("every takes one duration, e.g. \"every 6h\"")
		}
		return parseEvery(rest[0])
	}
	if isDayList(w) {
		h, m, err := at(rest)
		if err != nil {
			return nil, err
		}
		return cron(m, h, "*", "*", w)
	}
	return nil, fmt.Errorf("unknown word %q (try cron fields, daily HH:MM, weekdays HH:MM, weekly sun HH:MM, every 6h)", w)
}

func parseEvery(s string) (*Schedule, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > 366 {
			return nil, fmt.Errorf("%q is not a duration", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return nil, fmt.Errorf("%q is not a duration", s)
		}
	}
	if d < time.Minute || d%time.Minute != 0 {
		return nil, fmt.Errorf("every %s: give whole minutes, at least 1m", s)
	}
	if d > 366*24*time.Hour {
		return nil, fmt.Errorf("every %s: longer than a year", s)
	}
	switch {
	case d < time.Hour && time.Hour%d == 0:
		return parseCron([]string{"*/" + strconv.Itoa(int(d/time.Minute)), "*", "*", "*", "*"})
	case d == 24*time.Hour:
		return parseCron([]string{"0", "0", "*", "*", "*"})
	case d < 24*time.Hour && d%time.Hour == 0 && (24*time.Hour)%d == 0:
		return parseCron([]string{"0", "*/" + strconv.Itoa(int(d/time.Hour)), "*", "*", "*"})
	}
	return &Schedule{every: d}, nil
}

// maxYears bounds the search for the next slot: long enough for a Feb 29
// that falls on a given weekday.
const maxYears = 30

// Next returns the first slot strictly after after, in loc (see the package
// documentation for daylight-saving rules). The zero time means never.
func (s *Schedule) Next(after time.Time, loc *time.Location) time.Time {
	if s.every > 0 {
		return after.Add(s.every).Truncate(time.Second)
	}
	a := after.In(loc)
	y, mo, d := a.Date()
	startH, startM := a.Hour(), a.Minute()+1
	day := time.Date(y, mo, d, 12, 0, 0, 0, time.UTC) // a calendar day, free of DST
	end := day.AddDate(maxYears, 0, 0)
	first := true
	for ; day.Before(end); day, first = day.AddDate(0, 0, 1), false {
		if !s.matchDay(day) {
			if s.month&(1<<int(day.Month())) == 0 { // skip the rest of the month
				day = time.Date(day.Year(), day.Month()+1, 0, 12, 0, 0, 0, time.UTC)
			}
			continue
		}
		for h := range bitsFrom(s.hour, 0) {
			if first && h < startH {
				continue
			}
			m0 := 0
			if first && h == startH {
				m0 = startM
			}
			for m := range bitsFrom(s.minute, m0) {
				t := wallInstant(day.Year(), day.Month(), day.Day(), h, m, loc)
				if t.After(after) {
					return t
				}
			}
		}
	}
	return time.Time{}
}

func (s *Schedule) matchDay(day time.Time) bool {
	if s.month&(1<<int(day.Month())) == 0 {
		return false
	}
	domOK := s.dom&(1<<day.Day()) != 0
	dowOK := s.dow&(1<<int(day.Weekday())) != 0
	if !s.domStar && !s.dowStar {
		return domOK || dowOK
	}
	return domOK && dowOK
}

// bitsFrom yields the set bits of set from bit lo up, in order.
func bitsFrom(set uint64, lo int) func(func(int) bool) {
	return func(yield func(int) bool) {
		if lo >= 64 {
			return
		}
		rest := set &^ (1<<lo - 1)
		for rest != 0 {
			b := bits.TrailingZeros64(rest)
			if !yield(b) {
				return
			}
			rest &^= 1 << b
		}
	}
}

// wallInstant maps a wall-clock time in loc to the instant it is run: the
// instant itself when it exists once, the first of two when clocks fall
// back, and the end of the gap when clocks spring forward over it.
func wallInstant(y int, mo time.Month, d, h, m int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, h, m, 0, 0, loc)
	want := time.Date(y, mo, d, h, m, 0, 0, time.UTC)
	got := wallOf(t)
	switch {
	case got.Equal(want):
		// It exists; if clocks fell back over it, take the first one.
		start, _ := t.ZoneBounds()
		if start.IsZero() {
			return t
		}
		_, prevOff := start.Add(-time.Nanosecond).Zone()
		_, curOff := t.Zone()
		if prevOff > curOff {
			earlier := t.Add(-time.Duration(prevOff-curOff) * time.Second)
			if earlier.Before(start) && wallOf(earlier).Equal(want) {
				return earlier
			}
		}
		return t
	case got.After(want):
		// Read with the offset before the gap: t lies after it.
		start, _ := t.ZoneBounds()
		if !start.IsZero() {
			return start
		}
		return t
	default:
		// Read with the offset after the gap: t lies before it.
		_, end := t.ZoneBounds()
		if !end.IsZero() {
			return end
		}
		return t
	}
}

// wallOf returns t's wall-clock reading as a UTC time, for comparisons.
func wallOf(t time.Time) time.Time {
	y, mo, d := t.Date()
	return time.Date(y, mo, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// Due reports whether a schedule whose previous run started at last (or,
// for a source that never ran, which was created at last) is due at now,
// and the slot in question: the first one after last. However many slots
// were missed while the node was down, a source is due once; after it runs,
// last becomes now and the next slot lies in the future.
func Due(s *Schedule, last, now time.Time, loc *time.Location) (due bool, slot time.Time) {
	slot = s.Next(last, loc)
	if slot.IsZero() {
		return false, slot
	}
	return !slot.After(now), slot
}
