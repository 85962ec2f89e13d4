package schedule

import (
	"errors"
	"testing"
	"time"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("no time zone data for %s: %v", name, err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNext(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	ny := mustLoad(t, "America/New_York")
	for _, tc := range []struct {
		name  string
		spec  string
		loc   *time.Location
		after string // RFC 3339
		want  []string
	}{
		{"plain daily", "daily 02:30", time.UTC, "2026-01-01T00:00:00Z",
			[]string{"2026-01-01T02:30:00Z", "2026-01-02T02:30:00Z"}},
		{"seconds past the slot", "daily 02:30", time.UTC, "2026-01-01T02:30:00.5Z",
			[]string{"2026-01-02T02:30:00Z"}},
		{"berlin spring gap runs at 03:00 once", "daily 02:30", berlin, "2026-03-28T03:00:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"berlin fall back runs the repeated slot once", "daily 02:30", berlin, "2026-10-24T12:00:00+02:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"berlin half-hourly collapses the gap", "*/30 * * * *", berlin, "2026-03-29T01:45:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00"}},
		{"new york hourly through fall back", "hourly", ny, "2026-11-01T00:30:00-04:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"}},
		{"new york after the second 01:30", "0 * * * *", ny, "2026-11-01T01:30:00-05:00",
			[]string{"2026-11-01T02:00:00-05:00"}},
		{"new york spring gap", "30 2 * * *", ny, "2026-03-07T12:00:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"new york every minute in the gap runs once", "* 2 * * *", ny, "2026-03-08T01:59:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"}},
		{"weekdays skip the weekend", "weekdays 18:00", time.UTC, "2026-01-02T19:00:00Z",
			[]string{"2026-01-05T18:00:00Z", "2026-01-06T18:00:00Z"}},
		{"weekends", "weekends 09:00", time.UTC, "2026-01-02T00:00:00Z",
			[]string{"2026-01-03T09:00:00Z", "2026-01-04T09:00:00Z", "2026-01-10T09:00:00Z"}},
		{"weekly sunday", "weekly sun 03:00", time.UTC, "2026-01-01T00:00:00Z",
			[]string{"2026-01-04T03:00:00Z", "2026-01-11T03:00:00Z"}},
		{"day list", "mon,thu 18:30", time.UTC, "2026-01-01T19:00:00Z",
			[]string{"2026-01-05T18:30:00Z", "2026-01-08T18:30:00Z"}},
		{"leap day", "0 0 29 2 *", time.UTC, "2026-01-01T00:00:00Z",
			[]string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
		{"dom or dow when both set", "0 12 1 * mon", time.UTC, "2026-01-01T00:00:00Z",
			[]string{"2026-01-01T12:00:00Z", "2026-01-05T12:00:00Z", "2026-01-12T12:00:00Z"}},
		{"monthly 31 skips short months", "monthly 31 01:00", time.UTC, "2026-01-31T02:00:00Z",
			[]string{"2026-03-31T01:00:00Z", "2026-05-31T01:00:00Z"}},
		{"names, ranges and steps", "0 9 * jan-mar/2 mon-fri", time.UTC, "2026-02-01T00:00:00Z",
			[]string{"2026-03-02T09:00:00Z", "2026-03-03T09:00:00Z"}},
		{"sunday as 7", "0 0 * * 7", time.UTC, "2026-01-01T00:00:00Z",
			[]string{"2026-01-04T00:00:00Z"}},
		{"lists and a/n", "5,10 0/12 * * *", time.UTC, "2026-01-01T00:07:00Z",
			[]string{"2026-01-01T00:10:00Z", "2026-01-01T12:05:00Z", "2026-01-01T12:10:00Z"}},
		{"hourly at :15", "hourly :15", time.UTC, "2026-01-01T00:20:00Z",
			[]string{"2026-01-01T01:15:00Z"}},
		{"every 6h follows the wall clock", "every 6h", berlin, "2026-03-29T00:30:00+01:00",
			[]string{"2026-03-29T06:00:00+02:00", "2026-03-29T12:00:00+02:00"}},
		{"every 15m", "every 15m", time.UTC, "2026-01-01T00:07:00Z",
			[]string{"2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z"}},
		{"every 90m counts from the last run", "every 90m", time.UTC, "2026-01-01T00:07:00Z",
			[]string{"2026-01-01T01:37:00Z", "2026-01-01T03:07:00Z"}},
		{"every 2d", "every 2d", time.UTC, "2026-01-01T00:07:00Z",
			[]string{"2026-01-03T00:07:00Z"}},
		{"@yearly", "@yearly", time.UTC, "2026-03-01T00:00:00Z",
			[]string{"2027-01-01T00:00:00Z"}},
		{"daily means midnight", "daily", berlin, "2026-01-01T12:00:00+01:00",
			[]string{"2026-01-02T00:00:00+01:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			at := utc(tc.after)
			for i, w := range tc.want {
				got := s.Next(at, tc.loc)
				if !got.Equal(utc(w)) {
					t.Fatalf("step %d: Next(%s) = %s, want %s", i, at.In(tc.loc), got.In(tc.loc), utc(w).In(tc.loc))
				}
				at = got
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, spec := range []string{
		"", "61 * * * *", "* * * *", "* * * * * *", "5-1 * * * *", "*/0 * * * *", "0 0 30 2 *",
		"0 0 31 apr,jun *", "daily 25:00", "daily 2:3", "daily :30", "every 0s", "every 30s", "every 90s",
		"every", "every 400d", "weekly mon,tue", "fortnightly", "hourly 14:00", "daily 02:00 extra",
		"1,,2 * * * *", "a * * * *", "@daily 03:00", "monthly 32", "* * * foo *",
	} {
		if _, err := Parse(spec); !errors.Is(err, ErrSpec) {
			t.Errorf("Parse(%q) = %v, want ErrSpec", spec, err)
		}
	}
}

func TestParseCanonical(t *testing.T) {
	s, err := Parse("  Daily   02:30 ")
	if err != nil || s.String() != "Daily 02:30" {
		t.Fatalf("%v %v", s, err)
	}
}

func TestDueCatchesUpOnce(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	daily, _ := Parse("daily 02:30")
	hourly, _ := Parse("hourly")
	for _, tc := range []struct {
		name      string
		s         *Schedule
		last, now string
		due       bool
		slot      string
	}{
		{"four days down: due once, for the first missed slot", daily,
			"2026-01-05T02:30:00+01:00", "2026-01-09T10:00:00+01:00", true, "2026-01-06T02:30:00+01:00"},
		{"after the catch-up run the next slot is ahead", daily,
			"2026-01-09T10:00:00+01:00", "2026-01-09T10:05:00+01:00", false, "2026-01-10T02:30:00+01:00"},
		{"a minute early", daily,
			"2026-01-05T02:30:00+01:00", "2026-01-06T02:29:00+01:00", false, "2026-01-06T02:30:00+01:00"},
		{"on the slot", daily,
			"2026-01-05T02:30:00+01:00", "2026-01-06T02:30:00+01:00", true, "2026-01-06T02:30:00+01:00"},
		{"never ran, created yesterday", daily,
			"2026-01-05T10:00:00+01:00", "2026-01-06T09:00:00+01:00", true, "2026-01-06T02:30:00+01:00"},
		{"hourly, down across the spring gap", hourly,
			"2026-03-29T00:00:00+01:00", "2026-03-29T09:00:00+02:00", true, "2026-03-29T01:00:00+01:00"},
		{"manual run after the slot resets it", daily,
			"2026-01-06T03:00:00+01:00", "2026-01-06T23:00:00+01:00", false, "2026-01-07T02:30:00+01:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			due, slot := Due(tc.s, utc(tc.last), utc(tc.now), berlin)
			if due != tc.due || !slot.Equal(utc(tc.slot)) {
				t.Fatalf("Due = %v, %s; want %v, %s", due, slot.In(berlin), tc.due, utc(tc.slot).In(berlin))
			}
		})
	}
}

// FuzzParse checks that no spec panics the parser and that Next always
// moves forward to a slot the spec allows.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"daily 02:30", "*/5 1-3 * jan,feb mon-fri", "every 6h", "weekly sun 03:00",
		"0 0 29 2 *", "hourly :15", "monthly 31 01:00", "@yearly", "1-59/7 */5 1,15 */3 0-7"} {
		f.Add(s, int64(1774746000)) // near the Berlin spring change
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.UTC
	}
	f.Fuzz(func(t *testing.T, spec string, unix int64) {
		s, err := Parse(spec)
		if err != nil {
			return
		}
		after := time.Unix(unix%(1<<33), 0)
		next := s.Next(after, berlin)
		if next.IsZero() {
			return
		}
		if !next.After(after) {
			t.Fatalf("%q: Next(%s) = %s, not after", spec, after, next)
		}
		if s.every == 0 {
			l := next.In(berlin)
			if s.minute&(1<<l.Minute()) == 0 && l.Minute() != 0 {
				t.Fatalf("%q: Next = %s, minute not in the spec", spec, l)
			}
		}
	})
}
