package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// printJSON writes v as indented JSON to standard output.
func (g *Globals) printJSON(v any) error {
	enc := json.NewEncoder(g.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printf writes human output unless --quiet or --json.
func (g *Globals) printf(format string, args ...any) {
	if g.Quiet || g.JSON {
		return
	}
	fmt.Fprintf(g.Stdout, format, args...)
}

// table starts an aligned table on standard output.
func (g *Globals) table() *tabwriter.Writer {
	return tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
}

// humanBytes formats a byte count with binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return d.String()
	}
	h := d / time.Hour
	m := (d % time.Hour) / time.Minute
	s := (d % time.Minute) / time.Second
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// statusLine rewrites one line on a terminal.
type statusLine struct {
	w    io.Writer
	last int
}

func (s *statusLine) set(text string) {
	pad := ""
	if n := s.last - len(text); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(s.w, "\r%s%s", text, pad)
	s.last = len(text)
}

func (s *statusLine) clear() {
	if s.last > 0 {
		fmt.Fprintf(s.w, "\r%s\r", strings.Repeat(" ", s.last))
		s.last = 0
	}
}
