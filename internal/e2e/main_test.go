package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var cairnBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-e2e-")
	if err != nil {
		panic(err)
	}
	cairnBin = filepath.Join(dir, "cairn")
	out, err := exec.Command("go", "build", "-o", cairnBin, "github.com/cairn-backup/cairn/cmd/cairn").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build cairn: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one cairn home, optionally with its daemon running.
type node struct {
	t    *testing.T
	home string
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

const password = "correct horse battery staple"

func newNode(t *testing.T, name string) *node {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	// Loopback only, nothing that sends traffic beyond this machine.
	settings := `{"version":1,"listen":["/ip4/127.0.0.1/tcp/0"],"no_mdns":true,"no_nat_port_map":true,"no_relay":true,"offer_bytes":2000000000}`
	if err := os.WriteFile(filepath.Join(home, "node.json"), []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, home: home}
	t.Cleanup(n.kill)
	return n
}

func (n *node) env() []string {
	return append(os.Environ(), "CAIRN_PASSWORD="+password, "CAIRN_HOME="+n.home)
}

// run runs a cairn command and returns its standard output; it fails the
// test on a non-zero exit unless allowFail.
func (n *node) run(args ...string) string {
	n.t.Helper()
	out, err := n.try(args...)
	if err != nil {
		n.t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (n *node) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnBin, args...)
	cmd.Env = n.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

func (n *node) runJSON(v any, args ...string) {
	n.t.Helper()
	out := n.run(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		n.t.Fatalf("cairn %s: bad JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// start runs the node's daemon and waits until its API answers.
func (n *node) start() {
	n.t.Helper()
	n.log = &bytes.Buffer{}
	n.cmd = exec.Command(cairnBin, "daemon")
	n.cmd.Env = n.env()
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(n.home, "daemon.json")); err == nil {
			if _, err := n.try("id"); err == nil {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.t.Fatalf("daemon of %s did not come up:\n%s", n.home, n.log)
}

// kill stops the daemon with SIGKILL, as a crash or a pulled plug would.
func (n *node) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
		_, _ = n.cmd.Process.Wait()
		n.cmd = nil
	}
}

type idJSON struct {
	NodeID string   `json:"node_id"`
	Addrs  []string `json:"addrs"`
}

func (n *node) id() idJSON {
	var id idJSON
	n.runJSON(&id, "id")
	return id
}

// pair makes owner and host friends through an invite code.
func pair(t *testing.T, owner, host *node) {
	t.Helper()
	out := host.run("peers", "invite")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	code := strings.TrimSpace(lines[len(lines)-1])
	owner.run("peers", "join", code)
}
