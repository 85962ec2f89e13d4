package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/api"
	"github.com/cairn-backup/cairn/internal/home"
)

// The tests in this file run the cairn binary as real processes. Every
// node listens on 127.0.0.1 only, with mDNS, port mapping and relays off
// (in the home's node.json, so short-lived nodes obey it too).

var cairnBin struct {
	once sync.Once
	path string
	err  error
}

// binary builds cmd/cairn once per test run.
func binary(t *testing.T) string {
	t.Helper()
	cairnBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-bin-")
		if err != nil {
			cairnBin.err = err
			return
		}
		cairnBin.path = filepath.Join(dir, "cairn")
		out, err := exec.Command("go", "build", "-o", cairnBin.path, "../../cmd/cairn").CombinedOutput()
		if err != nil {
			cairnBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if cairnBin.err != nil {
		t.Fatal(cairnBin.err)
	}
	return cairnBin.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cairnBin.path != "" {
		_ = os.RemoveAll(filepath.Dir(cairnBin.path))
	}
	os.Exit(code)
}

// loopbackHome makes a home whose nodes stay on loopback.
func loopbackHome(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	settings := `{"version":1,"offer_bytes":1000000000,"listen":["/ip4/127.0.0.1/tcp/0","/ip4/127.0.0.1/udp/0/quic-v1"],"no_mdns":true,"no_nat_port_map":true,"no_relay":true}`
	if err := os.WriteFile(filepath.Join(dir, "node.json"), []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cairn runs a short command and returns its stdout.
func cairn(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), append([]string{"--home", dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("cairn %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), err
}

func mustCairn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := cairn(t, dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type daemonProc struct {
	cmd  *exec.Cmd
	done chan error
	log  *bytes.Buffer
}

// startDaemon runs `cairn daemon` and waits until it answers.
func startDaemon(t *testing.T, dir string) *daemonProc {
	t.Helper()
	cmd := exec.Command(binary(t), "--home", dir, "daemon", "--no-mdns", "--no-nat-port-map", "--no-relay",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{cmd: cmd, done: make(chan error, 1), log: &log}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := api.FromHome(context.Background(), home.Home{Dir: dir}); err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not start: %s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and expects a clean exit.
func (p *daemonProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("daemon exit: %v\n%s", err, p.log.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("daemon did not stop on SIGTERM")
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func peersJSON(t *testing.T, dir string) []map[string]any {
	t.Helper()
	var v []map[string]any
	out := mustCairn(t, dir, "peers", "--json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("peers --json: %v\n%s", err, out)
	}
	return v
}

func TestProcessPairingRestartAndAPIKey(t *testing.T) {
	dirA, dirB := loopbackHome(t), loopbackHome(t)
	a := startDaemon(t, dirA)
	b := startDaemon(t, dirB)

	var idA, idB api.ID
	if err := json.Unmarshal([]byte(mustCairn(t, dirA, "id", "--json")), &idA); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(mustCairn(t, dirB, "id", "--json")), &idB); err != nil {
		t.Fatal(err)
	}
	if len(idA.Addrs) == 0 || !strings.HasSuffix(idA.Addrs[0], "/p2p/"+idA.NodeID) {
		t.Fatalf("id addrs: %v", idA.Addrs)
	}

	code := lastLine(mustCairn(t, dirA, "peers", "invite"))
	mustCairn(t, dirB, "peers", "join", code)
	if _, err := cairn(t, dirB, "peers", "join", code); err == nil {
		t.Fatal("an invite code worked twice")
	}

	rows := peersJSON(t, dirA)
	if len(rows) != 1 {
		t.Fatalf("peers of A: %v", rows)
	}
	for _, k := range []string{"node_id", "name", "owner_id", "addrs", "lan", "connected", "last_seen",
		"rtt_ms", "offer_bytes", "free_bytes", "trust", "held_for_them", "held_by_them"} {
		if _, ok := rows[0][k]; !ok {
			t.Errorf("peers --json lacks %q", k)
		}
	}
	if rows[0]["node_id"] != idB.NodeID || rows[0]["trust"] != "friend" || rows[0]["offer_bytes"] != float64(1e9) {
		t.Fatalf("A's row for B: %v", rows[0])
	}
	mustCairn(t, dirA, "peers", "name", idB.NodeID, "laptop")
	mustCairn(t, dirA, "offer", "--peer", "laptop", "2GB")
	mustCairn(t, dirA, "offer", "20GB", "--community")

	// Restart A: the table and settings survive; A reaches B again by itself.
	a.stop(t)
	if _, err := os.Stat(filepath.Join(dirA, "daemon.json")); !os.IsNotExist(err) {
		t.Fatalf("daemon.json left after SIGTERM: %v", err)
	}
	startDaemon(t, dirA)
	deadline := time.Now().Add(90 * time.Second)
	for {
		rows = peersJSON(t, dirA)
		if len(rows) == 1 && rows[0]["connected"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A did not reconnect to B: %v", rows)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rows[0]["name"] != "laptop" || rows[0]["trust"] != "friend" || rows[0]["quota_bytes"] != float64(2e9) {
		t.Fatalf("A's row for B after restart: %v", rows[0])
	}
	var off api.Offer
	if err := json.Unmarshal([]byte(mustCairn(t, dirA, "offer", "--json")), &off); err != nil || off.OfferBytes != 20e9 || !off.Community {
		t.Fatalf("offer after restart: %+v %v", off, err)
	}

	// A daemon killed hard leaves a stale daemon.json: commands start their
	// own node, and a new daemon starts over it.
	_ = b.cmd.Process.Kill()
	<-b.done
	b.done <- nil
	if _, err := os.Stat(filepath.Join(dirB, "daemon.json")); err != nil {
		t.Fatalf("daemon.json after SIGKILL: %v", err)
	}
	var idB2 api.ID
	if err := json.Unmarshal([]byte(mustCairn(t, dirB, "id", "--json")), &idB2); err != nil || idB2.NodeID != idB.NodeID {
		t.Fatalf("id with a stale daemon.json: %+v %v", idB2, err)
	}
	startDaemon(t, dirB)

	// The API refuses requests without the key.
	var df api.Daemon
	raw, _ := os.ReadFile(filepath.Join(dirA, "daemon.json"))
	if err := json.Unmarshal(raw, &df); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + df.Addr + api.PathPeers)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: HTTP %d", resp.StatusCode)
	}
}

// Without a daemon, `peers invite` keeps a short-lived node up until the
// code is used, and `peers join` runs its own short-lived node.
func TestProcessInviteWithoutDaemon(t *testing.T) {
	dirA, dirB := loopbackHome(t), loopbackHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), "--home", dirA, "peers", "invite")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var code string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if line := sc.Text(); strings.Count(line, "-") > 5 && !strings.Contains(line, " ") {
			code = line
			break
		}
	}
	if code == "" {
		t.Fatalf("no invite code printed: %s", stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	out := mustCairn(t, dirB, "peers", "join", code)
	if !strings.Contains(out, "paired") {
		t.Fatalf("join said: %s", out)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("invite: %v: %s", err, stderr.String())
	}
	rows := peersJSON(t, dirA)
	if len(rows) != 1 || rows[0]["trust"] != "friend" {
		t.Fatalf("A's peers: %v", rows)
	}
}
