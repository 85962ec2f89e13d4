//go:build linux

package p2p

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/home"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Tests in network namespaces. The parent test builds a small network of
// namespaces (veth pairs, bridges, an iptables NAT) that it removes when
// done, then re-runs this test binary inside each namespace as a child
// (TestNetnsChild, selected by the CAIRN_NETNS_ROLE variable). Nothing
// these nodes send can leave the namespaces: none is connected to the
// machine's own network.

const roleEnv = "CAIRN_NETNS_ROLE"

// lab is a set of network namespaces made for one test.
type lab struct {
	t      *testing.T
	prefix string
	nss    []string
	n      int
}

func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Getenv(roleEnv) != "" {
		t.Skip("inside a namespace child")
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespace tests need root (ip netns)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespace tests need iproute2's ip: apt-get install iproute2")
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	l := &lab{t: t, prefix: "cairn" + hex.EncodeToString(b[:])}
	probe := l.prefix + "probe"
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot make network namespaces here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	_ = exec.Command("ip", "netns", "del", probe).Run()
	t.Cleanup(l.cleanup)
	return l
}

func (l *lab) cleanup() {
	for _, ns := range l.nss {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			l.t.Logf("remove namespace %s: %v: %s", ns, err, out)
		}
	}
}

// sh runs a setup command; when the machine cannot build the test network
// (no bridge or veth support, a locked-down container), the test is skipped.
func (l *lab) sh(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Skipf("cannot build the test network here: %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// in runs a command inside a namespace.
func (l *lab) in(ns string, args ...string) {
	l.t.Helper()
	l.sh(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// ns makes a namespace with its loopback up.
func (l *lab) ns(name string) string {
	l.t.Helper()
	ns := l.prefix + name
	l.sh("ip", "netns", "add", ns)
	l.nss = append(l.nss, ns)
	l.in(ns, "ip", "link", "set", "lo", "up")
	return ns
}

// bridge makes a bridge br0 inside ns.
func (l *lab) bridge(ns string) {
	l.t.Helper()
	l.in(ns, "ip", "link", "add", "br0", "type", "bridge")
	l.in(ns, "ip", "link", "set", "br0", "up")
}

// link connects ns (interface ifName, address cidr) to a bridge in hub,
// or to the peer namespace's interface peerIf with peerCIDR when hub is
// not a bridge namespace (peerIf != "").
func (l *lab) link(ns, ifName, cidr, hub, peerIf, peerCIDR string) {
	l.t.Helper()
	l.n++
	a, b := fmt.Sprintf("%sa%d", l.prefix[5:], l.n), fmt.Sprintf("%sb%d", l.prefix[5:], l.n)
	l.sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
	l.sh("ip", "link", "set", a, "netns", ns)
	l.sh("ip", "link", "set", b, "netns", hub)
	l.in(ns, "ip", "link", "set", a, "name", ifName)
	if cidr != "" {
		l.in(ns, "ip", "addr", "add", cidr, "dev", ifName)
	}
	l.in(ns, "ip", "link", "set", ifName, "up")
	if peerIf == "" {
		l.in(hub, "ip", "link", "set", b, "master", "br0")
		l.in(hub, "ip", "link", "set", b, "up")
		return
	}
	l.in(hub, "ip", "link", "set", b, "name", peerIf)
	if peerCIDR != "" {
		l.in(hub, "ip", "addr", "add", peerCIDR, "dev", peerIf)
	}
	l.in(hub, "ip", "link", "set", peerIf, "up")
}

// child runs TestNetnsChild inside ns with a role and a shared folder.
func (l *lab) child(ns, role, dir string) *exec.Cmd {
	l.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^TestNetnsChild$", "-test.v", "-test.timeout=3m")
	cmd.Env = append(os.Environ(), roleEnv+"="+role, "CAIRN_NETNS_DIR="+dir)
	out, err := os.Create(filepath.Join(dir, role+".log"))
	if err != nil {
		l.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		out.Close()
	})
	return cmd
}

func childLog(dir, role string) string {
	b, _ := os.ReadFile(filepath.Join(dir, role+".log"))
	return string(b)
}

// waitChild waits for a child to exit and fails the test if it failed.
func waitChild(t *testing.T, cmd *exec.Cmd, dir, role string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s failed: %v\n%s", role, err, childLog(dir, role))
		}
		if !strings.Contains(childLog(dir, role), "--- PASS: TestNetnsChild") {
			t.Fatalf("%s did not run\n%s", role, childLog(dir, role))
		}
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("%s timed out\n%s", role, childLog(dir, role))
	}
}

// TestMDNSBetweenNamespaces: two nodes on one LAN (two namespaces on a
// bridge in a third) find each other by mDNS and connect.
func TestMDNSBetweenNamespaces(t *testing.T) {
	l := newLab(t)
	hub, a, b := l.ns("hub"), l.ns("a"), l.ns("b")
	l.bridge(hub)
	l.link(a, "eth0", "10.213.7.1/24", hub, "", "")
	l.link(b, "eth0", "10.213.7.2/24", hub, "", "")
	// Multicast leaves by the LAN interface.
	l.in(a, "ip", "route", "add", "224.0.0.0/4", "dev", "eth0")
	l.in(b, "ip", "route", "add", "224.0.0.0/4", "dev", "eth0")

	dir := t.TempDir()
	ca := l.child(a, "mdns-a", dir)
	cb := l.child(b, "mdns-b", dir)
	waitChild(t, ca, dir, "mdns-a")
	waitChild(t, cb, dir, "mdns-b")
}

// TestNATRelay: node A behind a NAT (iptables masquerade in its own
// namespace) is reached by node B through relay R, a friend of both with
// an address both can reach. Hole punching is on but cannot succeed here:
// the NAT drops everything between A and B, so the relay is the only way.
func TestNATRelay(t *testing.T) {
	l := newLab(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("the NAT test needs iptables: apt-get install iptables")
	}
	wan, r, b, nat, a := l.ns("wan"), l.ns("r"), l.ns("b"), l.ns("nat"), l.ns("a")
	l.bridge(wan)
	l.link(r, "eth0", "198.51.100.1/24", wan, "", "")
	l.link(b, "eth0", "198.51.100.2/24", wan, "", "")
	l.link(nat, "wan0", "198.51.100.3/24", wan, "", "")
	l.link(a, "eth0", "10.213.9.2/24", nat, "lan0", "10.213.9.1/24")
	l.in(a, "ip", "route", "add", "default", "via", "10.213.9.1")
	l.in(nat, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	if out, err := exec.Command("ip", "netns", "exec", nat, "iptables", "-t", "nat", "-A", "POSTROUTING",
		"-o", "wan0", "-j", "MASQUERADE").CombinedOutput(); err != nil {
		t.Skipf("iptables NAT not available here: %v: %s", err, out)
	}
	// Nothing from the WAN reaches A unless A started it.
	l.in(nat, "iptables", "-A", "FORWARD", "-i", "wan0", "-m", "state", "--state", "ESTABLISHED,RELATED", "-j", "ACCEPT")
	l.in(nat, "iptables", "-A", "FORWARD", "-i", "wan0", "-j", "DROP")
	// Nor may A reach B directly (it would learn B's address from the DHT
	// and dial out): B can only come in through R.
	l.in(nat, "iptables", "-I", "FORWARD", "-i", "lan0", "-d", "198.51.100.2", "-j", "DROP")

	// Homes with known keys; all are friends; R's address is known.
	dir := t.TempDir()
	ids := map[string]peer.ID{}
	for _, role := range []string{"nat-r", "nat-a", "nat-b"} {
		id, err := NodeID(home.Home{Dir: filepath.Join(dir, role)})
		if err != nil {
			t.Fatal(err)
		}
		ids[role] = id
	}
	rAddr := "/ip4/198.51.100.1/tcp/4001"
	circuit := fmt.Sprintf("%s/p2p/%s/p2p-circuit", rAddr, ids["nat-r"])
	friends := map[string][]Peer{
		"nat-r": {{ID: ids["nat-a"], Trust: TrustFriend}, {ID: ids["nat-b"], Trust: TrustFriend}},
		// A knows B (so B may ask its status) but not where it is.
		"nat-a": {{ID: ids["nat-r"], Trust: TrustFriend, Addrs: []string{rAddr}}, {ID: ids["nat-b"], Trust: TrustFriend}},
		"nat-b": {{ID: ids["nat-r"], Trust: TrustFriend, Addrs: []string{rAddr}},
			{ID: ids["nat-a"], Trust: TrustFriend, Addrs: []string{circuit}}},
	}
	for role, list := range friends {
		b, _ := json.Marshal(peersFile{Version: peersFileVersion, Peers: list})
		if err := os.WriteFile(PeersPath(home.Home{Dir: filepath.Join(dir, role)}), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, role+".id"), []byte(ids[role]), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cr := l.child(r, "nat-r", dir)
	ca := l.child(a, "nat-a", dir)
	cb := l.child(b, "nat-b", dir)
	waitChild(t, cb, dir, "nat-b")
	if err := os.WriteFile(filepath.Join(dir, "done"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitChild(t, ca, dir, "nat-a")
	waitChild(t, cr, dir, "nat-r")
	for _, line := range strings.Split(childLog(dir, "nat-b"), "\n") {
		if strings.Contains(line, "reached A") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

// TestNetnsChild is the node inside a namespace; it runs only as a child.
func TestNetnsChild(t *testing.T) {
	role := os.Getenv(roleEnv)
	if role == "" {
		t.Skip("runs only inside a namespace, started by the namespace tests")
	}
	dir := os.Getenv("CAIRN_NETNS_DIR")
	cfg := Config{
		Home:         home.Home{Dir: filepath.Join(dir, role)},
		Listen:       []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"},
		NoNATPortMap: true,
		NoMDNS:       true,
		NoRelay:      true,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ReconnectMin: 500 * time.Millisecond,
		ReconnectMax: 3 * time.Second,
		PingInterval: time.Second,
	}
	ctx := context.Background()
	deadline := time.Now().Add(150 * time.Second)
	switch role {
	case "mdns-a", "mdns-b":
		cfg.NoMDNS = false
		n := startNode(t, cfg)
		other := map[string]string{"mdns-a": "mdns-b", "mdns-b": "mdns-a"}[role]
		if err := os.WriteFile(filepath.Join(dir, role+".id"), []byte(n.ID()), 0o600); err != nil {
			t.Fatal(err)
		}
		// A makes a short code (no addresses); B finds A by mDNS to use it.
		codeFile := filepath.Join(dir, "short.code")
		if role == "mdns-a" {
			code, _, err := n.CreateShortInvite(0)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(codeFile, []byte(code), 0o600); err != nil {
				t.Fatal(err)
			}
		} else {
			var code []byte
			for len(code) == 0 {
				code, _ = os.ReadFile(codeFile)
				if time.Now().After(deadline) {
					t.Fatal("no short code from A")
				}
				time.Sleep(50 * time.Millisecond)
			}
			p, err := n.Join(ctx, string(code))
			if err != nil {
				t.Fatalf("join with a short code on the LAN: %v", err)
			}
			t.Logf("paired with %s by a short code", p.ID)
		}
		for {
			b, _ := os.ReadFile(filepath.Join(dir, other+".id"))
			if id := peer.ID(b); id != "" {
				if p, ok := n.Peers().Get(id); ok && p.LAN && p.Trust == TrustFriend &&
					n.Host().Network().Connectedness(id) == network.Connected {
					t.Logf("found %s on the LAN: %v", id, p.Addrs)
					// Stay up a moment so the other side sees us too.
					time.Sleep(3 * time.Second)
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("peer not found by mDNS; table: %+v", n.PeerStates())
			}
			time.Sleep(100 * time.Millisecond)
		}
	case "nat-r", "nat-a", "nat-b":
		cfg.NoRelay = false
		switch role {
		case "nat-r":
			cfg.Listen = []string{"/ip4/0.0.0.0/tcp/4001"}
			cfg.Reachability = "public"
		case "nat-a":
			cfg.Reachability = "private"
		}
		if role != "nat-r" {
			// Start once R serves as a relay, so that A's first look at R
			// finds the relay protocol.
			for {
				if _, err := os.Stat(filepath.Join(dir, "relay.ready")); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the relay never became ready")
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		n := startNode(t, cfg)
		if role == "nat-r" {
			for !slices.Contains(n.Host().Mux().Protocols(), "/libp2p/circuit/relay/0.2.0/hop") {
				if time.Now().After(deadline) {
					t.Fatal("relay service did not start")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := os.WriteFile(filepath.Join(dir, "relay.ready"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if role != "nat-b" {
			for {
				if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("the test never finished")
				}
				if role == "nat-a" {
					t.Logf("addrs: %v", n.Host().Addrs())
				}
				time.Sleep(time.Second)
			}
		}
		b, _ := os.ReadFile(filepath.Join(dir, "nat-a.id"))
		a := peer.ID(b)
		for {
			if n.Host().Network().Connectedness(a) == network.Connected ||
				n.Host().Network().Connectedness(a) == network.Limited {
				if err := n.RefreshStatus(ctx, a); err == nil {
					break
				} else {
					t.Logf("status over the relay: %v", err)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("A behind the NAT not reached; B's table: %+v", n.PeerStates())
			}
			time.Sleep(500 * time.Millisecond)
		}
		var kinds []string
		for _, c := range n.Host().Network().ConnsToPeer(a) {
			kinds = append(kinds, c.RemoteMultiaddr().String())
		}
		t.Logf("reached A behind the NAT via %s", strings.Join(kinds, ", "))
		for _, k := range kinds {
			if !strings.Contains(k, "/p2p-circuit") {
				t.Fatalf("a direct connection to A behind the NAT: %s", k)
			}
		}
	default:
		t.Fatalf("unknown role %q", role)
	}
}
