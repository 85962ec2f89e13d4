package hosting_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/hostclient"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/libp2p/go-libp2p/core/network"
)

const (
	benchSize  = 16 << 20 // one pack
	protoUp    = "/cairn/bench/up/1"
	protoDown  = "/cairn/bench/down/1"
	benchChunk = 256 << 10
)

// BenchmarkThroughput compares put and get of a 16 MiB object between two
// hosts on loopback with a raw libp2p stream moving the same bytes in the
// same direction (raw-up for put, raw-down for get). Put includes the
// host's hash check, fsync and database commit; get includes the client's
// hash check.
func BenchmarkThroughput(b *testing.B) {
	for _, transport := range []string{"tcp", "quic"} {
		b.Run(transport, func(b *testing.B) {
			th := startHost(b, transport)
			o := newOwner(b, transport, th)
			data := randBytes(benchSize)
			h := pack(data)
			hp := th.h.ID()
			ctx := context.Background()
			th.h.SetStreamHandler(protoUp, func(s network.Stream) {
				io.Copy(io.Discard, s)
				s.Write([]byte{1})
				s.Close()
			})
			th.h.SetStreamHandler(protoDown, func(s network.Stream) {
				for p := data; len(p) > 0; p = p[min(len(p), benchChunk):] {
					if _, err := s.Write(p[:min(len(p), benchChunk)]); err != nil {
						s.Reset()
						return
					}
				}
				s.Close()
			})

			b.Run("raw-up", func(b *testing.B) {
				b.SetBytes(benchSize)
				for b.Loop() {
					s, err := o.h.NewStream(ctx, hp, protoUp)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(s, bytes.NewReader(data)); err != nil {
						b.Fatal(err)
					}
					s.CloseWrite()
					if _, err := io.ReadAll(s); err != nil {
						b.Fatal(err)
					}
					s.Close()
				}
			})
			b.Run("put", func(b *testing.B) {
				b.SetBytes(benchSize)
				obj := hostclient.Object{Handle: h, Size: benchSize, Until: th.until()}
				for b.Loop() {
					res, err := o.client.Put(ctx, hp, obj, bytes.NewReader(data))
					if err != nil || !res.Sent {
						b.Fatalf("put: %v sent=%v", err, res.Sent)
					}
					b.StopTimer()
					if _, err := o.client.Delete(ctx, hp, []store.Handle{h}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
			b.Run("raw-down", func(b *testing.B) {
				b.SetBytes(benchSize)
				for b.Loop() {
					s, err := o.h.NewStream(ctx, hp, protoDown)
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.Copy(io.Discard, s)
					if err != nil || n != benchSize {
						b.Fatalf("read %d: %v", n, err)
					}
					s.Close()
				}
			})
			b.Run("get", func(b *testing.B) {
				o.put(b, th, h, data)
				b.SetBytes(benchSize)
				for b.Loop() {
					rc, err := o.client.Get(ctx, hp, h, 0, 0)
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.Copy(io.Discard, rc)
					rc.Close()
					if err != nil || n != benchSize {
						b.Fatalf("read %d: %v", n, err)
					}
				}
			})
		})
	}
}

// BenchmarkRatio measures put and get against the raw stream in the same
// iteration, alternating, so that load from other processes hits both
// alike; it reports the throughput ratio (1 = as fast as the raw stream).
func BenchmarkRatio(b *testing.B) {
	for _, transport := range []string{"tcp", "quic"} {
		b.Run(transport, func(b *testing.B) {
			th := startHost(b, transport)
			o := newOwner(b, transport, th)
			data := randBytes(benchSize)
			h := pack(data)
			hp := th.h.ID()
			ctx := context.Background()
			th.h.SetStreamHandler(protoUp, func(s network.Stream) {
				io.Copy(io.Discard, s)
				s.Write([]byte{1})
				s.Close()
			})
			th.h.SetStreamHandler(protoDown, func(s network.Stream) {
				for p := data; len(p) > 0; p = p[min(len(p), benchChunk):] {
					if _, err := s.Write(p[:min(len(p), benchChunk)]); err != nil {
						s.Reset()
						return
					}
				}
				s.Close()
			})
			rawUp := func() {
				s, err := o.h.NewStream(ctx, hp, protoUp)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(s, bytes.NewReader(data))
				s.CloseWrite()
				io.ReadAll(s)
				s.Close()
			}
			rawDown := func() {
				s, err := o.h.NewStream(ctx, hp, protoDown)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, s); err != nil || n != benchSize {
					b.Fatalf("raw read %d: %v", n, err)
				}
				s.Close()
			}
			put := func() {
				obj := hostclient.Object{Handle: h, Size: benchSize, Until: th.until()}
				if _, err := o.client.Put(ctx, hp, obj, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
				if _, err := o.client.Delete(ctx, hp, []store.Handle{h}); err != nil {
					b.Fatal(err)
				}
			}
			get := func() {
				rc, err := o.client.Get(ctx, hp, h, 0, 0)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rc); err != nil || n != benchSize {
					b.Fatalf("get %d: %v", n, err)
				}
				rc.Close()
			}
			b.Run("put", func(b *testing.B) { ratio(b, rawUp, put) })
			o.put(b, th, h, data)
			b.Run("get", func(b *testing.B) { ratio(b, rawDown, get) })
		})
	}
}

// ratio runs raw and op alternately and reports raw time / op time. The
// put op includes a delete (a small request) so each put really uploads.
func ratio(b *testing.B, raw, op func()) {
	b.SetBytes(benchSize)
	var rawT, opT time.Duration
	for b.Loop() {
		t0 := time.Now()
		raw()
		t1 := time.Now()
		op()
		rawT += t1.Sub(t0)
		opT += time.Since(t1)
	}
	b.ReportMetric(float64(rawT)/float64(opT), "ratio")
	b.ReportMetric(float64(benchSize)*float64(b.N)/rawT.Seconds()/1e6, "raw-MB/s")
	b.ReportMetric(float64(benchSize)*float64(b.N)/opT.Seconds()/1e6, "op-MB/s")
}
