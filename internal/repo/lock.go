package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cairn-backup/cairn/internal/store"
)

// Lock is a lock object: shared locks let many backups run at once, the
// exclusive lock (forget, prune) keeps everyone else out.
type Lock struct {
	LockData

	name string
	r    *Repository
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
}

// LockData is what a lock object says.
type LockData struct {
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
}

// Lock timing: a lock is refreshed every refreshInterval; one not refreshed
// for staleAfter belongs to a process that died.
const (
	refreshInterval = 5 * time.Minute
	staleAfter      = 30 * time.Minute
)

var adLock = []byte("cairn lock v1")

// LockInfo describes a lock found in the repository.
type LockInfo struct {
	Name string
	LockData
	Stale bool
}

// Stale reports whether the lock's holder is gone: it was not refreshed in
// time, or it was taken on this host by a process that no longer exists.
func (l *LockData) stale(now time.Time, host string) bool {
	if now.Sub(l.Time) > staleAfter {
		return true
	}
	if l.Host == host && l.PID > 0 && !processExists(l.PID) {
		return true
	}
	return false
}

// Locks lists the lock objects. Unreadable ones are reported as stale.
func (r *Repository) Locks(ctx context.Context) ([]LockInfo, error) {
	host, _ := os.Hostname()
	var out []LockInfo
	err := r.st.List(ctx, store.Lock, func(i store.Info) error {
		b, err := store.ReadAll(ctx, r.st, i.Handle)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		li := LockInfo{Name: i.Handle.Name}
		pt, err := r.keys.Open(nil, b, adLock)
		if err != nil || json.Unmarshal(pt, &li.LockData) != nil {
			li.Stale = true
		} else {
			li.Stale = li.LockData.stale(r.now(), host)
		}
		out = append(out, li)
		return nil
	})
	return out, err
}

func (r *Repository) writeLock(ctx context.Context, l *Lock) error {
	js, err := json.Marshal(&l.LockData)
	if err != nil {
		return err
	}
	b := r.keys.Seal(nil, js, adLock)
	return r.st.Put(ctx, store.Handle{Type: store.Lock, Name: l.name}, bytes.NewReader(b), int64(len(b)))
}

// LockShared takes a shared lock; LockExclusive the exclusive one. Both
// fail with ErrLocked when a conflicting live lock exists. Stale locks are
// ignored (and removed by Unlock or `cairn unlock`).
func (r *Repository) LockShared(ctx context.Context) (*Lock, error) { return r.lock(ctx, false) }

// LockExclusive takes the exclusive lock.
func (r *Repository) LockExclusive(ctx context.Context) (*Lock, error) { return r.lock(ctx, true) }

func (r *Repository) lock(ctx context.Context, exclusive bool) (*Lock, error) {
	if err := r.checkLocks(ctx, exclusive, ""); err != nil {
		return nil, err
	}
	var nb [16]byte
	if _, err := io.ReadFull(rand.Reader, nb[:]); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	l := &Lock{LockData: LockData{Time: r.now().UTC(), Exclusive: exclusive, Host: host, PID: os.Getpid()}, name: hex.EncodeToString(nb[:]), r: r, stop: make(chan struct{})}
	if err := r.writeLock(ctx, l); err != nil {
		return nil, fmt.Errorf("write lock: %w", err)
	}
	// Two processes may have passed the first check at once: look again now
	// that our lock is visible, and back off if we conflict.
	if err := r.checkLocks(ctx, exclusive, l.name); err != nil {
		_ = r.st.Delete(context.WithoutCancel(ctx), store.Handle{Type: store.Lock, Name: l.name})
		return nil, err
	}
	l.wg.Add(1)
	go l.refresh(ctx)
	return l, nil
}

func (r *Repository) checkLocks(ctx context.Context, exclusive bool, self string) error {
	locks, err := r.Locks(ctx)
	if err != nil {
		return fmt.Errorf("list locks: %w", err)
	}
	for _, li := range locks {
		if li.Name == self || li.Stale {
			continue
		}
		if exclusive || li.Exclusive {
			kind := "a shared"
			if li.Exclusive {
				kind = "an exclusive"
			}
			return fmt.Errorf("%w: %s lock is held by PID %d on %s since %s", ErrLocked, kind, li.PID, li.Host, li.Time.Local().Format(time.DateTime))
		}
	}
	return nil
}

func (l *Lock) refresh(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(refreshInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			l.mu.Lock()
			l.Time = l.r.now().UTC()
			_ = l.r.writeLock(ctx, l)
			l.mu.Unlock()
		}
	}
}

// Unlock releases the lock.
func (l *Lock) Unlock(ctx context.Context) error {
	if l == nil {
		return nil
	}
	close(l.stop)
	l.wg.Wait()
	err := l.r.st.Delete(context.WithoutCancel(ctx), store.Handle{Type: store.Lock, Name: l.name})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// RemoveStaleLocks deletes locks whose holders are gone (all locks with
// all set) and returns how many it removed.
func (r *Repository) RemoveStaleLocks(ctx context.Context, all bool) (int, error) {
	locks, err := r.Locks(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, li := range locks {
		if !li.Stale && !all {
			continue
		}
		if err := r.st.Delete(ctx, store.Handle{Type: store.Lock, Name: li.Name}); err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}
