package e2e

import (
	"strings"
	"testing"
)

// TestDemo runs `cairn demo`, the newcomer's first minute, end to end.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	n := newNode(t, "demo")
	out := n.run("demo")
	for _, want := range []string{"5 of 5 files restored byte-identical", "names or text in the clear: false", "packs placed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
}
