package placement

import (
	"errors"
	"testing"
)

func TestParseRedundancy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Redundancy
		ok   bool
	}{
		{"1", Replicas(1), true},
		{"3", Replicas(3), true},
		{" 2 ", Replicas(2), true},
		{"3+2", Erasure(3, 2), true},
		{"1+1", Erasure(1, 1), true},
		{"16+16", Erasure(16, 16), true},
		{"17+16", Redundancy{}, false},
		{"0", Redundancy{}, false},
		{"33", Redundancy{}, false},
		{"-1", Redundancy{}, false},
		{"3+0", Redundancy{}, false},
		{"0+2", Redundancy{}, false},
		{"+2", Redundancy{}, false},
		{"a+b", Redundancy{}, false},
		{"", Redundancy{}, false},
		{"2x", Redundancy{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRedundancy(tc.in)
			if tc.ok != (err == nil) {
				t.Fatalf("ParseRedundancy(%q) = %v, %v", tc.in, got, err)
			}
			if err != nil && !errors.Is(err, ErrRedundancy) {
				t.Fatalf("error does not wrap ErrRedundancy: %v", err)
			}
			if got != tc.want {
				t.Fatalf("ParseRedundancy(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if tc.ok {
				back, err := ParseRedundancy(got.String())
				if err != nil || back != got {
					t.Fatalf("round trip of %s: %v %v", got, back, err)
				}
			}
		})
	}
}

func TestDefaultRedundancy(t *testing.T) {
	for hosts, want := range map[int]Redundancy{0: Replicas(1), 1: Replicas(1), 2: Replicas(2), 3: Erasure(2, 1), 4: Erasure(2, 1), 5: Erasure(3, 2), 12: Erasure(3, 2)} {
		got := DefaultRedundancy(hosts)
		if got != want {
			t.Errorf("DefaultRedundancy(%d) = %s, want %s", hosts, got, want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("DefaultRedundancy(%d): %v", hosts, err)
		}
		if hosts > 0 && got.CheckHosts(hosts) != nil {
			t.Errorf("DefaultRedundancy(%d) = %s needs more hosts", hosts, got)
		}
	}
	if err := Erasure(3, 2).CheckHosts(4); !errors.Is(err, ErrTooFewHosts) {
		t.Fatalf("3+2 on 4 hosts: %v", err)
	}
}

func TestRedundancyFigures(t *testing.T) {
	r := Erasure(3, 2)
	if r.Pieces() != 5 || r.Needed() != 3 || r.Tolerates() != 2 {
		t.Fatalf("3+2: %d pieces, %d needed, tolerates %d", r.Pieces(), r.Needed(), r.Tolerates())
	}
	c := Replicas(3)
	if c.Pieces() != 3 || c.Needed() != 1 || c.Tolerates() != 2 || c.Overhead() != 3 {
		t.Fatalf("3 copies: %+v", c)
	}
}
