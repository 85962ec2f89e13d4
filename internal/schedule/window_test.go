package schedule

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	ny := mustLoad(t, "America/New_York")
	type check struct {
		at        string
		open      bool
		nextOpen  string // "" = same as at
		nextClose string // "" = zero (never)
	}
	for _, tc := range []struct {
		name   string
		spec   string
		loc    *time.Location
		checks []check
	}{
		{"night crossing midnight", "22:00-06:00", berlin, []check{
			{at: "2026-01-10T23:00:00+01:00", open: true, nextClose: "2026-01-11T06:00:00+01:00"},
			{at: "2026-01-11T05:59:00+01:00", open: true, nextClose: "2026-01-11T06:00:00+01:00"},
			{at: "2026-01-11T06:00:00+01:00", open: false, nextOpen: "2026-01-11T22:00:00+01:00", nextClose: "2026-01-11T06:00:00+01:00"},
			{at: "2026-01-11T12:00:00+01:00", open: false, nextOpen: "2026-01-11T22:00:00+01:00", nextClose: "2026-01-11T12:00:00+01:00"},
		}},
		{"two spans", "12:00-13:00, 22:00-06:00", time.UTC, []check{
			{at: "2026-01-10T12:30:00Z", open: true, nextClose: "2026-01-10T13:00:00Z"},
			{at: "2026-01-10T14:00:00Z", open: false, nextOpen: "2026-01-10T22:00:00Z", nextClose: "2026-01-10T14:00:00Z"},
			{at: "2026-01-10T07:00:00Z", open: false, nextOpen: "2026-01-10T12:00:00Z", nextClose: "2026-01-10T07:00:00Z"},
		}},
		{"start in the spring gap opens at 03:00", "02:30-04:00", berlin, []check{
			{at: "2026-03-29T01:30:00+01:00", open: false, nextOpen: "2026-03-29T03:00:00+02:00", nextClose: "2026-03-29T01:30:00+01:00"},
			{at: "2026-03-29T03:00:00+02:00", open: true, nextClose: "2026-03-29T04:00:00+02:00"},
		}},
		{"a span inside the gap skips that day", "02:15-02:45", berlin, []check{
			{at: "2026-03-28T12:00:00+01:00", open: false, nextOpen: "2026-03-30T02:15:00+02:00", nextClose: "2026-03-28T12:00:00+01:00"},
		}},
		{"the repeated hour is open twice", "01:00-01:30", ny, []check{
			{at: "2026-11-01T01:15:00-04:00", open: true, nextClose: "2026-11-01T01:30:00-04:00"},
			{at: "2026-11-01T01:15:00-05:00", open: true, nextClose: "2026-11-01T01:30:00-05:00"},
		}},
		{"always", "", time.UTC, []check{
			{at: "2026-01-10T12:30:00Z", open: true},
		}},
		{"start equals end is the whole day", "05:00-05:00", time.UTC, []check{
			{at: "2026-01-10T12:30:00Z", open: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := ParseWindow(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.checks {
				at := utc(c.at)
				if got := w.Open(at, tc.loc); got != c.open {
					t.Errorf("Open(%s) = %v", at.In(tc.loc), got)
				}
				wantOpen := at
				if c.nextOpen != "" {
					wantOpen = utc(c.nextOpen)
				}
				if got := w.NextOpen(at, tc.loc); !got.Equal(wantOpen) {
					t.Errorf("NextOpen(%s) = %s, want %s", at.In(tc.loc), got.In(tc.loc), wantOpen.In(tc.loc))
				}
				var wantClose time.Time
				if c.nextClose != "" {
					wantClose = utc(c.nextClose)
				}
				if got := w.NextClose(at, tc.loc); !got.Equal(wantClose) {
					t.Errorf("NextClose(%s) = %s, want %s", at.In(tc.loc), got.In(tc.loc), wantClose.In(tc.loc))
				}
			}
		})
	}
}

func TestParseWindowErrors(t *testing.T) {
	for _, s := range []string{"22:00", "25:00-01:00", "22-06", "22:00-6:0", ":30-01:00", "22:00-06:00,"} {
		if _, err := ParseWindow(s); !errors.Is(err, ErrWindow) {
			t.Errorf("ParseWindow(%q) = %v, want ErrWindow", s, err)
		}
	}
	w, err := ParseWindow("22:00-06:00,12:00-13:00")
	if err != nil || w.String() != "22:00-06:00,12:00-13:00" {
		t.Fatalf("round trip %q, %v", w, err)
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"", 0}, {"0", 0}, {"unlimited", 0}, {"100", 100}, {"100B", 100}, {"500k", 500000},
		{"500kB/s", 500000}, {"10MiB", 10 << 20}, {"10MiB/s", 10 << 20}, {"1.5M", 1500000},
		{"8Mbit", 1000000}, {"2GiB", 2 << 30}, {"64KiB", 64 << 10},
	} {
		got, err := ParseRate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"fast", "-1k", "10 parsecs", "1e400", "10Q"} {
		if _, err := ParseRate(in); !errors.Is(err, ErrRate) {
			t.Errorf("ParseRate(%q) = %v, want ErrRate", in, err)
		}
	}
	if got := FormatRate(10 << 20); got != "10MiB/s" {
		t.Errorf("FormatRate = %q", got)
	}
}

// chunkCheck fails if a single Read or Write passes more than max bytes.
type chunkCheck struct {
	t   *testing.T
	max int
	buf bytes.Buffer
	r   io.Reader
}

func (c *chunkCheck) Write(p []byte) (int, error) {
	if len(p) > c.max {
		c.t.Errorf("write of %d bytes, burst is %d", len(p), c.max)
	}
	return c.buf.Write(p)
}

func (c *chunkCheck) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestLimitedReaderWriterPassDataInBursts(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 3<<20)
	rand.Read(data)
	fast := NewLimiter(1 << 40) // effectively unlimited, but with a burst
	tight := NewLimiter(80 << 10)
	tight.SetLimit(1 << 40) // a small burst without the wait
	burst := tight.Burst()

	dst := &chunkCheck{t: t, max: burst}
	n, err := io.Copy(LimitWriter(ctx, dst, fast, tight, nil), bytes.NewReader(data))
	if err != nil || n != int64(len(data)) || !bytes.Equal(dst.buf.Bytes(), data) {
		t.Fatalf("writer: %d, %v, equal=%v", n, err, bytes.Equal(dst.buf.Bytes(), data))
	}
	r := LimitReader(ctx, bytes.NewReader(data), tight)
	p := make([]byte, 1<<20)
	var got []byte
	for {
		n, err := r.Read(p)
		if n > burst {
			t.Fatalf("read %d bytes, burst %d", n, burst)
		}
		got = append(got, p[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatal("reader changed the data")
	}
	if LimitReader(ctx, bytes.NewReader(nil)) == nil || NewLimiter(0) != nil {
		t.Fatal("no limit should pass through")
	}
}

func TestLimitedReaderStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	lim := NewLimiter(1) // 1 byte/s: the second read would wait an hour
	r := LimitReader(ctx, bytes.NewReader(make([]byte, 1<<20)), lim)
	if _, err := r.Read(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := r.Read(make([]byte, 1<<20)); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	w := LimitWriter(ctx, io.Discard, NewLimiter(1))
	if _, err := w.Write(make([]byte, 1<<20)); !errors.Is(err, context.Canceled) {
		t.Fatalf("writer got %v, want context.Canceled", err)
	}
}

func TestShaperBucketsPerPeer(t *testing.T) {
	s := NewShaper(Limits{Up: 1 << 20, Down: 2 << 20, PeerUp: 64 << 10})
	a1, a2, b := s.peer("a"), s.peer("a"), s.peer("b")
	if a1[0] != a2[0] || a1[0] == b[0] || a1[0] == nil {
		t.Fatal("per-peer buckets must be one per peer")
	}
	if a1[1] != nil {
		t.Fatal("no per-peer download limit was set")
	}
	if s.up == nil || s.down == nil || float64(s.up.Limit()) != 1<<20 {
		t.Fatal("global buckets")
	}
	s.Forget("a")
	if s.peer("a")[0] == a1[0] {
		t.Fatal("Forget kept the bucket")
	}
}

// FuzzParseWindow checks that no window spec panics and that NextOpen
// returns an instant at which the window is open.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"22:00-06:00", "12:00-13:00,22:00-06:00", "02:15-02:45", "05:00-05:00", ""} {
		f.Add(s, int64(1774746000))
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.UTC
	}
	f.Fuzz(func(t *testing.T, spec string, unix int64) {
		w, err := ParseWindow(spec)
		if err != nil {
			return
		}
		at := time.Unix(unix%(1<<33), 0)
		if open := w.NextOpen(at, berlin); !open.IsZero() && (!w.Open(open, berlin) || open.Before(at)) {
			t.Fatalf("%q: NextOpen(%s) = %s, not open", spec, at, open)
		}
		if w2, err := ParseWindow(w.String()); err != nil || w2.String() != w.String() {
			t.Fatalf("%q: String %q does not round-trip: %v", spec, w.String(), err)
		}
	})
}

// FuzzParseRate checks that no rate panics the parser or comes out negative.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"500k", "10MiB/s", "8Mbit", "1.5G", "unlimited", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := ParseRate(s); err == nil && r < 0 {
			t.Fatalf("%q: %d", s, r)
		}
	})
}

func TestFormatRateRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{{10 << 20, "10MiB/s"}, {10000000, "10MB/s"}, {500000, "500kB/s"}, {1536, "1536B/s"}, {1234, "1234B/s"}, {0, "unlimited"}} {
		got := FormatRate(tc.in)
		if got != tc.want {
			t.Errorf("FormatRate(%d) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := ParseRate(got); err != nil || back != tc.in {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", got, back, err, tc.in)
		}
	}
}
