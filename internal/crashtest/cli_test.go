package crashtest

import (
	"encoding/json"
	"strings"
	"testing"
)

type forgetGroupOut struct {
	Host  string   `json:"host"`
	Paths []string `json:"paths"`
	Keep  []struct {
		ID      string   `json:"id"`
		Reasons []string `json:"reasons"`
	} `json:"keep"`
	Remove []string `json:"remove"`
}

type forgetOut struct {
	Groups  []forgetGroupOut `json:"groups"`
	Removed []string         `json:"removed"`
	DryRun  bool             `json:"dry_run"`
}

func (e *env) forget(args ...string) forgetOut {
	e.t.Helper()
	out := e.mustRun(append([]string{"forget", "--json"}, args...)...)
	var f forgetOut
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		e.t.Fatalf("forget output %q: %v", out, err)
	}
	return f
}

// TestForgetCLI drives cairn forget through its policies and refusals.
func TestForgetCLI(t *testing.T) {
	e := newEnv(t, testSeed(t))
	e.writeFile("a", e.randomBytes(1000))
	var ids []string
	for i := 0; i < 4; i++ {
		args := []string{"backup", e.src, "--json"}
		if i == 0 {
			args = append(args, "--tag", "precious")
		}
		out := e.mustRun(args...)
		var b backupJSON
		if err := json.Unmarshal([]byte(out), &b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.SnapshotID)
		e.writeFile("a", e.randomBytes(1000))
	}

	f := e.forget("--keep-last", "1", "--keep-tag", "precious", "--dry-run")
	if !f.DryRun || len(f.Groups) != 1 || len(f.Groups[0].Keep) != 2 || len(f.Groups[0].Remove) != 2 {
		t.Fatalf("dry run: %+v", f)
	}
	if f.Groups[0].Keep[0].ID != ids[3] || f.Groups[0].Keep[1].ID != ids[0] ||
		f.Groups[0].Keep[1].Reasons[0] != "tagged precious" {
		t.Fatalf("dry run kept %+v", f.Groups[0].Keep)
	}
	if len(e.snapshots()) != 4 {
		t.Fatal("a dry run removed snapshots")
	}

	if _, stderr, code := e.run("forget"); code != 2 || !strings.Contains(stderr, "keeps nothing") {
		t.Fatalf("forget without a policy: exit %d %s", code, stderr)
	}
	if _, stderr, code := e.run("forget", "--keep-tag", "nope"); code == 0 || !strings.Contains(stderr, "every snapshot") {
		t.Fatalf("forget keeping nothing: exit %d %s", code, stderr)
	}
	if _, stderr, code := e.run("forget", "--keep-within", "3x"); code != 2 {
		t.Fatalf("bad --keep-within: exit %d %s", code, stderr)
	}

	f = e.forget(ids[1][:10])
	if len(f.Removed) != 1 || f.Removed[0] != ids[1] {
		t.Fatalf("forget by ID prefix: %+v", f)
	}
	f = e.forget("--keep-within", "1w", "--keep-last", "1", "--prune")
	if len(f.Removed) != 0 {
		t.Fatalf("keep-within 1w removed %v", f.Removed)
	}
	f = e.forget("--keep-tag", "nope", "--unsafe-allow-remove-all", "--prune")
	if len(f.Removed) != 3 || len(e.snapshots()) != 0 {
		t.Fatalf("remove all: %+v", f)
	}
	e.check("after removing everything")
}
