package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type backupJSON struct {
	SnapshotID string `json:"snapshot_id"`
	Placement  *struct {
		Placed   int `json:"Placed"`
		Degraded int `json:"Degraded"`
		Missing  int `json:"Missing"`
	} `json:"placement"`
}

type statusJSON struct {
	Placement struct {
		Placed, Degraded, Missing int
	} `json:"placement"`
	Hosts []struct {
		NodeID       string `json:"node_id"`
		AuditsOK     int    `json:"audits_ok"`
		AuditsFailed int    `json:"audits_failed"`
		Bad          int    `json:"bad"`
		Pieces       int    `json:"pieces"`
	} `json:"hosts"`
}

// makeSource writes files with distinctive names and text, and enough
// random data for several packs.
func makeSource(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	files := map[string][]byte{
		"secret-plans-PLAINTEXTNAME.txt": bytes.Repeat([]byte("PLAINTEXT-MARKER the treasure is buried under the oak tree. "), 200),
		"docs/empty":                     {},
		"docs/letter.txt":                []byte("Dear Alice, PLAINTEXT-MARKER second file\n"),
	}
	big := make([]byte, 20<<20)
	rand.Read(big)
	files["media/big.bin"] = big
	for name, data := range files {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src, files
}

func checkRestored(t *testing.T, target, src string, files map[string][]byte) {
	t.Helper()
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(target, src, name))
		if err != nil {
			t.Fatalf("restored %s: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("restored %s differs", name)
		}
	}
}

// hostsHoldOnlyCiphertext searches every file a host keeps for the
// owner's plaintext and file names.
func hostsHoldOnlyCiphertext(t *testing.T, hosts []*node) {
	t.Helper()
	for _, h := range hosts {
		n := 0
		filepath.WalkDir(filepath.Join(h.home, "hosted"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			n++
			for _, needle := range []string{"PLAINTEXT-MARKER", "PLAINTEXTNAME", "secret-plans", "letter.txt", "treasure"} {
				if bytes.Contains(b, []byte(needle)) || strings.Contains(p, needle) {
					t.Errorf("host %s keeps %q in the clear in %s", h.home, needle, p)
				}
			}
			return nil
		})
		if n == 0 {
			t.Errorf("host %s keeps nothing", h.home)
		}
	}
}

// TestPeersRecoverFromNothing backs up onto four hosts with 2+2 erasure
// coding, kills two hosts, wipes the owner's home, recovers with the
// recovery code from one surviving host and restores byte-identical.
func TestPeersRecoverFromNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	owner := newNode(t, "owner")
	hosts := []*node{newNode(t, "h1"), newNode(t, "h2"), newNode(t, "h3"), newNode(t, "h4")}
	src, files := makeSource(t)

	// A first local backup creates the owner and certifies its node.
	owner.run("init")
	code := strings.TrimSpace(owner.run("key", "recovery-code"))
	for _, h := range hosts {
		h.start()
		pair(t, owner, h)
	}

	var b backupJSON
	owner.runJSON(&b, "backup", src, "--redundancy", "2+2")
	if b.Placement == nil || b.Placement.Placed < 2 || b.Placement.Degraded != 0 || b.Placement.Missing != 0 {
		t.Fatalf("placement after backup: %+v", b.Placement)
	}
	hostsHoldOnlyCiphertext(t, hosts)

	// Two hosts die: 2+2 survives it.
	hosts[0].kill()
	hosts[1].kill()
	survivor := hosts[2].id()

	// The owner's machine is lost. A new one has only the recovery code.
	if err := os.RemoveAll(owner.home); err != nil {
		t.Fatal(err)
	}
	fresh := newNode(t, "fresh")
	var peerAddr string
	for _, a := range survivor.Addrs {
		if strings.Contains(a, "/ip4/127.0.0.1/") {
			peerAddr = a
		}
	}
	var rec struct {
		Snapshots int      `json:"snapshots"`
		Hosts     []string `json:"hosts"`
	}
	fresh.runJSON(&rec, "recover", "--recovery-code", code, "--peer", peerAddr, "--discover", "1s")
	if rec.Snapshots != 1 {
		t.Fatalf("recovered %d snapshots, want 1", rec.Snapshots)
	}
	// The host list kept on the survivor led to the other survivor too.
	if len(rec.Hosts) < 2 {
		t.Fatalf("recovery found hosts %v, want both survivors", rec.Hosts)
	}
	target := filepath.Join(t.TempDir(), "restore")
	fresh.run("restore", "latest", "--target", target)
	checkRestored(t, target, src, files)
	fresh.run("check")

	// The new machine goes on backing up as the same owner: the surviving
	// hosts take its packs without pairing again.
	more := filepath.Join(t.TempDir(), "more")
	os.MkdirAll(more, 0o755)
	os.WriteFile(filepath.Join(more, "after-the-fire.txt"), []byte("new life"), 0o644)
	var again backupJSON
	fresh.runJSON(&again, "backup", more)
	if again.Placement == nil || again.Placement.Placed == 0 || again.Placement.Missing != 0 {
		t.Fatalf("backup after recovery: placement %+v", again.Placement)
	}
}

// TestAuditCatchesBitRot: a host flips bytes in what it keeps; an audit
// catches it and the piece is rebuilt on another host.
func TestAuditCatchesBitRot(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	owner := newNode(t, "owner")
	hosts := []*node{newNode(t, "h1"), newNode(t, "h2"), newNode(t, "h3")}
	src, files := makeSource(t)
	owner.run("init")
	for _, h := range hosts {
		h.start()
		pair(t, owner, h)
	}
	var b backupJSON
	owner.runJSON(&b, "backup", src, "--redundancy", "2", "--no-local")
	if b.Placement == nil || b.Placement.Placed == 0 || b.Placement.Degraded != 0 {
		t.Fatalf("placement: %+v", b.Placement)
	}
	// --no-local: the packs live on the peers only.
	filepath.WalkDir(filepath.Join(owner.home, "repo", "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("--no-local left %s", p)
		}
		return nil
	})
	// Rot every data object of the first host that holds any.
	var rotten *node
	for _, h := range hosts {
		n := 0
		filepath.WalkDir(filepath.Join(h.home, "hosted", "objects"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.Contains(p, string(filepath.Separator)+"data"+string(filepath.Separator)) {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil || len(data) < 100 {
				return nil
			}
			for i := 0; i < len(data); i += 4096 {
				data[i] ^= 0xff
			}
			os.Chmod(p, 0o600)
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			n++
			return nil
		})
		if n > 0 {
			rotten = h
			break
		}
	}
	if rotten == nil {
		t.Fatal("no host holds a pack")
	}
	rottenID := rotten.id().NodeID
	var st statusJSON
	caught := false
	for round := 0; round < 20 && !caught; round++ {
		owner.runJSON(&st, "status", "--maintain")
		for _, h := range st.Hosts {
			if h.NodeID == rottenID && h.AuditsFailed > 0 {
				caught = true
			}
		}
	}
	if !caught {
		js, _ := json.Marshal(st)
		t.Fatalf("audits never caught the rotten host: %s", js)
	}
	// After repair every pack is fully placed again on healthy copies.
	owner.runJSON(&st, "status", "--maintain")
	if st.Placement.Degraded != 0 || st.Placement.Missing != 0 {
		t.Fatalf("after repair: %+v", st.Placement)
	}
	// A restore reads every pack from the peers and gets the right bytes.
	target := filepath.Join(t.TempDir(), "restore")
	owner.run("restore", "latest", "--target", target)
	checkRestored(t, target, src, files)
}

// countHosted counts the objects of a type a host keeps for anyone.
func countHosted(h *node, typ string) int {
	n := 0
	filepath.WalkDir(filepath.Join(h.home, "hosted", "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(p)) == typ {
			n++
		}
		return nil
	})
	return n
}

// TestForgetPruneDeletesOnPeers: what forget and prune remove locally
// goes from the hosts too.
func TestForgetPruneDeletesOnPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	owner := newNode(t, "owner")
	hosts := []*node{newNode(t, "h1"), newNode(t, "h2")}
	owner.run("init")
	for _, h := range hosts {
		h.start()
		pair(t, owner, h)
	}
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	old := make([]byte, 18<<20)
	rand.Read(old)
	os.WriteFile(filepath.Join(src, "old.bin"), old, 0o644)
	var first backupJSON
	owner.runJSON(&first, "backup", src, "--redundancy", "2")
	os.Remove(filepath.Join(src, "old.bin"))
	os.WriteFile(filepath.Join(src, "new.txt"), []byte("only this is left"), 0o644)
	var second backupJSON
	owner.runJSON(&second, "backup", src, "--redundancy", "2")
	before := countHosted(hosts[0], "data")
	snapsBefore := countHosted(hosts[0], "snapshots")
	owner.run("forget", first.SnapshotID, "--prune")
	after := countHosted(hosts[0], "data")
	if after >= before {
		t.Fatalf("host keeps %d packs after prune, %d before", after, before)
	}
	if got := countHosted(hosts[0], "snapshots"); got != snapsBefore-1 {
		t.Fatalf("host keeps %d snapshots after forget, want %d", got, snapsBefore-1)
	}
	var st statusJSON
	owner.runJSON(&st, "status")
	if st.Placement.Degraded != 0 || st.Placement.Missing != 0 {
		t.Fatalf("placement after prune: %+v", st.Placement)
	}
}
