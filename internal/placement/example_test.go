package placement

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Example shows the calls a node makes: Sync after each backup, a Store
// over the hosts for restore and recovery, and the daemon's periodic
// renew, audit and repair.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "placement-example")
	defer os.RemoveAll(dir)

	// The hosts: in cairn, adapters over hostclient with the peer table's
	// view of each (trust, RTT, bandwidth, free space, online).
	var hosts []Candidate
	for i := 0; i < 5; i++ {
		hosts = append(hosts, Candidate{Host: newFakeHost(fmt.Sprintf("node%d", i)),
			Info: HostInfo{Trust: TrustFriend, Online: true, RTT: time.Duration(i+1) * time.Millisecond}})
	}
	e, err := Open(ctx, Options{Path: filepath.Join(dir, "placement.db"), Logger: discardLogger()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()

	// After a backup into the local repository:
	local := newMemRepo()
	local.add(HostListHandle([]byte("x")), []byte("x")) // stands for config, keys, packs...
	sum, err := e.Sync(ctx, local, hosts, SyncOptions{HostList: []byte("encrypted list of hosts")})
	fmt.Println(sum.MetaIncomplete, sum.Placed, sum.Degraded, sum.Missing, err)

	// Restore or recovery: a store.Store over the hosts.
	peers := NewStore(e, func() []Candidate { return hosts }, StoreOptions{})
	fmt.Println(peers.Location())

	// The daemon, from time to time:
	_, _ = e.RenewLeases(ctx, hosts, 30*24*time.Hour)
	rep, _ := e.Audit(ctx, hosts, 20)
	_, _ = e.Repair(ctx, local, hosts)
	fmt.Println(rep.Failed)
	// Output:
	// 0 0 0 0 <nil>
	// peers
	// 0
}
