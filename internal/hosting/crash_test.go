package hosting_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/hostclient"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// The crash test re-runs this test binary as an uploader process. These
// variables carry its instructions; they are read only in that child.
const (
	envUploader = "CAIRN_TEST_UPLOADER"
	envAddr     = "CAIRN_TEST_HOST_ADDR"
	envKey      = "CAIRN_TEST_MASTER_KEY"
)

const crashObjectSize = 8 << 20

func TestMain(m *testing.M) {
	if os.Getenv(envUploader) == "1" {
		if err := runUploader(); err != nil {
			fmt.Fprintln(os.Stderr, "uploader:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashData is the object the child uploads: both sides can build it.
func crashData() []byte {
	b := make([]byte, crashObjectSize)
	for i := range b {
		b[i] = byte(i * 7 >> 3)
	}
	return b
}

// stallingReader yields the first part of data, says so on stdout, then
// blocks until the process is killed.
type stallingReader struct {
	data []byte
	sent int
	told bool
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if r.sent >= len(r.data)/4 {
		if !r.told {
			fmt.Println("SENT")
			r.told = true
		}
		select {}
	}
	n := copy(p, r.data[r.sent:len(r.data)/4])
	r.sent += n
	return n, nil
}

func runUploader() error {
	info, err := peer.AddrInfoFromP2pAddr(ma.StringCast(os.Getenv(envAddr)))
	if err != nil {
		return err
	}
	kb, err := hex.DecodeString(os.Getenv(envKey))
	if err != nil {
		return err
	}
	var mk crypto.MasterKey
	copy(mk[:], kb)
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := h.Connect(ctx, *info); err != nil {
		return err
	}
	c := hostclient.New(h, hostclient.OwnerSigner(crypto.Derive(mk)), hostclient.Options{})
	data := crashData()
	obj := hostclient.Object{Handle: store.Handle{Type: store.Pack, Name: crypto.Hash(data).String()}, Size: int64(len(data)), Until: time.Now().Add(time.Hour)}
	_, err = c.Put(ctx, info.ID, obj, &stallingReader{data: data})
	return fmt.Errorf("put returned: %v", err)
}

func TestKilledUploaderLeavesNoPartialObject(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	th := startHost(t, "tcp")
	th.clock.Set(time.Now()) // the child asks for leases on the real clock
	mk, err := crypto.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := th.h.Addrs()[0].String() + "/p2p/" + th.h.ID().String()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envUploader+"=1", envAddr+"="+addr, envKey+"="+hex.EncodeToString(mk[:]))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "SENT" {
		t.Fatalf("uploader said %q: %v", line, err)
	}
	// The host holds a partial upload now; kill the uploader mid-stream.
	waitFor(t, "the partial upload on the host", func() bool { return len(files(t, th.dir, "tmp")) == 1 })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	cmd.Wait()
	waitFor(t, "the host to drop the partial upload", func() bool { return len(files(t, th.dir, "tmp")) == 0 })
	if f := files(t, th.dir, "objects"); len(f) != 0 {
		t.Fatalf("objects on disk after the killed upload: %v", f)
	}
	// The owner, back with the same key, finds nothing and can upload anew.
	keys := crypto.Derive(mk)
	o := &owner{keys: keys, h: newHost(t, "tcp")}
	o.client = hostclient.New(o.h, hostclient.OwnerSigner(keys), hostclient.Options{})
	connect(t, o.h, th.h)
	data := crashData()
	h := pack(data)
	held, err := o.client.Has(context.Background(), th.h.ID(), []store.Handle{h})
	if err != nil || len(held) != 0 {
		t.Fatalf("has after the killed upload: %v %v", held, err)
	}
	if res := o.put(t, th, h, data); !res.Sent {
		t.Fatal("upload after the crash not sent")
	}
	got, err := o.get(th, h, 0, 0)
	if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("get after the crash: %v", err)
	}
}
