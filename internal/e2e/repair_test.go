package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepairIndex: with every index file lost, check fails; repair index
// rebuilds it from the packs and the snapshot restores again.
func TestRepairIndex(t *testing.T) {
	n := newNode(t, "owner")
	src, files := makeSource(t)
	n.run("init")
	n.run("backup", src)
	idx := filepath.Join(n.home, "repo", "index")
	entries, _ := os.ReadDir(idx)
	for _, e := range entries {
		os.Remove(filepath.Join(idx, e.Name()))
	}
	if _, err := n.try("check"); err == nil {
		t.Fatal("check passed with every index file gone")
	}
	var rep struct {
		PacksRead    int `json:"packs_read"`
		BlobsIndexed int `json:"blobs_indexed"`
	}
	n.runJSON(&rep, "repair", "index")
	if rep.PacksRead == 0 || rep.BlobsIndexed == 0 {
		t.Fatalf("repair index: %+v", rep)
	}
	n.run("check", "--read-data")
	target := filepath.Join(t.TempDir(), "restore")
	n.run("restore", "latest", "--target", target)
	checkRestored(t, target, src, files)
}

// TestLimits: limits are kept in the node's settings and bad rates are
// usage errors.
func TestLimits(t *testing.T) {
	n := newNode(t, "node")
	n.run("limits", "--up", "2MB/s", "--peer-down", "500KiB/s", "--wan-window", "22:00-06:00")
	var l map[string]string
	n.runJSON(&l, "limits")
	if l["up"] != "2MB/s" || l["wan_window"] != "22:00-06:00" || l["down"] != "unlimited" {
		t.Fatalf("limits: %v", l)
	}
	b, _ := os.ReadFile(filepath.Join(n.home, "node.json"))
	var st map[string]any
	json.Unmarshal(b, &st)
	if st["limit_up"] != float64(2000000) {
		t.Fatalf("node.json limit_up = %v", st["limit_up"])
	}
	out, err := n.try("limits", "--up", "fast")
	if err == nil || !strings.Contains(out, "bad rate") {
		t.Fatalf("a bad rate was accepted: %v %s", err, out)
	}
	if _, err := n.try("limits", "--wan-window", "25:00-26:00"); err == nil {
		t.Fatal("a bad window was accepted")
	}
}
