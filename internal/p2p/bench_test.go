package p2p

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

const benchNodes = 50

func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkFiftyNodes starts 50 cairn nodes in one process on loopback,
// each a friend of its four nearest neighbours on a ring, waits until all
// friends are connected, and reports connections, heap and goroutines per
// node, next to the same numbers for 50 bare libp2p hosts on the same ring
// (libp2p's defaults, no DHT): the ratio is cairn's overhead.
func BenchmarkFiftyNodes(b *testing.B) {
	for range b.N {
		bare := measureBare(b)
		conns, heap, gor := measureCairn(b)
		b.ReportMetric(conns, "conns/node")
		b.ReportMetric(heap/1024, "KiB/node")
		b.ReportMetric(gor, "goroutines/node")
		b.ReportMetric(bare.heap/1024, "bare-KiB/node")
		b.ReportMetric(bare.conns, "bare-conns/node")
		b.ReportMetric((heap/conns)/(bare.heap/bare.conns), "heap-per-conn-ratio")
		b.ReportMetric(heap/bare.heap, "heap-ratio")
		b.ReportMetric(gor/bare.gor, "goroutine-ratio")
	}
}

func ringFriends(i int) []int {
	return []int{(i + 1) % benchNodes, (i + 2) % benchNodes, (i + benchNodes - 1) % benchNodes, (i + benchNodes - 2) % benchNodes}
}

func measureCairn(b *testing.B) (conns, heap, gor float64) {
	b.Helper()
	heap0, gor0 := heapNow(), runtime.NumGoroutine()
	nodes := make([]*Node, benchNodes)
	for i := range nodes {
		cfg := testConfig(b, b.TempDir())
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.PingInterval = time.Minute
		n, err := New(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		nodes[i] = n
	}
	defer func() {
		for _, n := range nodes {
			_ = n.Close()
		}
	}()
	for i, n := range nodes {
		for _, j := range ringFriends(i) {
			f := nodes[j]
			_ = n.Peers().Update(f.ID(), false, func(p *Peer) {
				p.Trust = TrustFriend
				p.Addrs = addrStrings(f.Host().Addrs())
			})
		}
		n.Kick()
	}
	t0 := time.Now()
	waitFor(b, "every friend connected", func() bool {
		for i, n := range nodes {
			for _, j := range ringFriends(i) {
				if n.Host().Network().Connectedness(nodes[j].ID()) != network.Connected {
					return false
				}
			}
		}
		return true
	})
	b.Logf("friends connected after %v", time.Since(t0))
	time.Sleep(2 * time.Second) // let identify, DHT and status settle
	total := 0
	for _, n := range nodes {
		total += len(n.Host().Network().Conns())
	}
	return float64(total) / benchNodes, float64(heapNow()-heap0) / benchNodes,
		float64(runtime.NumGoroutine()-gor0) / benchNodes
}

type bareNumbers struct{ conns, heap, gor float64 }

func measureBare(b *testing.B) bareNumbers {
	b.Helper()
	heap0, gor0 := heapNow(), runtime.NumGoroutine()
	hosts := make([]host.Host, benchNodes)
	for i := range hosts {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			b.Fatal(err)
		}
		hosts[i] = h
	}
	defer func() {
		for _, h := range hosts {
			_ = h.Close()
		}
	}()
	ctx := context.Background()
	for i, h := range hosts {
		for _, j := range ringFriends(i) {
			if err := h.Connect(ctx, peer.AddrInfo{ID: hosts[j].ID(), Addrs: hosts[j].Addrs()}); err != nil {
				b.Fatal(err)
			}
		}
	}
	time.Sleep(2 * time.Second)
	total := 0
	for _, h := range hosts {
		total += len(h.Network().Conns())
	}
	return bareNumbers{conns: float64(total) / benchNodes, heap: float64(heapNow()-heap0) / benchNodes,
		gor: float64(runtime.NumGoroutine()-gor0) / benchNodes}
}
