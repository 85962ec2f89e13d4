package placement

import (
	"crypto/sha256"
	"encoding/hex"
	"iter"
	"time"

	"github.com/cairn-backup/cairn/internal/store"
)

// Placement states.
const (
	stateOK      = 0 // the host holds the piece, as far as we know
	stateBad     = 1 // the host failed an audit or lost the piece: to delete and replace
	stateDropped = 2 // the host was gone past the grace period: replaced, to delete if it returns
	stateDeleted = 3 // deleted from the host; kept so the host is not chosen for this pack again
)

// HostListHandle names the owner's host list of the given bytes: an
// object the caller encrypts (a list of its hosts and their addresses),
// content-addressed in the meta type, that placement keeps on every host
// so that one surviving host leads to the others.
func HostListHandle(data []byte) store.Handle {
	s := sha256.Sum256(data)
	return store.Handle{Type: store.Meta, Name: hex.EncodeToString(s[:])}
}

type copyRec struct {
	host   string
	until  time.Time
	placed time.Time
	state  int
}

// copies are the copies of one piece, one per host: a short slice (a
// piece has one to a few copies), much smaller than a map.
type copies []*copyRec

func (cs copies) get(host string) *copyRec {
	for _, c := range cs {
		if c.host == host {
			return c
		}
	}
	return nil
}

// set records rec as the copy on host, replacing any other.
func (cs *copies) set(host string, rec *copyRec) {
	rec.host = host
	for i, c := range *cs {
		if c.host == host {
			(*cs)[i] = rec
			return
		}
	}
	*cs = append(*cs, rec)
}

func (cs *copies) del(host string) {
	for i, c := range *cs {
		if c.host == host {
			*cs = append((*cs)[:i:i], (*cs)[i+1:]...)
			return
		}
	}
}

type piece struct {
	obj       *object
	h         store.Handle // name on hosts
	idx       int
	size      int64
	sha       [32]byte
	shaKnown  bool
	root      [32]byte
	rootKnown bool
	at        copies
}

type object struct {
	h         store.Handle
	size      int64 // -1: unknown
	sha       [32]byte
	shaKnown  bool
	red       Redundancy // zero: metadata, kept on every host
	forgotten bool
	created   time.Time
	pieces    []*piece // by index; nil entries: not built yet
}

type hostRec struct {
	id           string
	firstSeen    time.Time
	lastSeen     time.Time
	auditsOK     int
	auditsFailed int
	listed       bool // its holdings were adopted by a rebuild
}

// reputation is the audit history as one number in (0, 1]: a new host has
// 0.5, every passed audit moves it up, every failed one down three times
// as much.
func (h *hostRec) reputation() float64 {
	if h == nil {
		return 0.5
	}
	return float64(h.auditsOK+1) / float64(h.auditsOK+3*h.auditsFailed+2)
}

func (o *object) meta() bool { return o.red == Redundancy{} }

func (o *object) addPiece(p *piece) {
	for len(o.pieces) <= p.idx {
		o.pieces = append(o.pieces, nil)
	}
	o.pieces[p.idx] = p
}

// pieceCount is how many pieces the object is cut into.
func (o *object) pieceCount() int {
	if o.red.Coded() {
		return o.red.Pieces()
	}
	return 1
}

// want is how many copies of each piece the object should have; for
// metadata, -1 (every host).
func (o *object) want() int {
	switch {
	case o.meta():
		return -1
	case o.red.Coded():
		return 1
	default:
		return o.red.Copies
	}
}

// pieceHandle returns the host-side handle of piece i.
func (o *object) pieceHandle(i int) store.Handle {
	if o.red.Coded() {
		return store.Handle{Type: o.h.Type, Name: ShardName(o.h.Name, o.red, i)}
	}
	return o.h
}

// contentID returns the SHA-256 a handle's name promises, if it is one.
func contentID(h store.Handle) ([32]byte, bool) {
	var id [32]byte
	switch h.Type {
	case store.Key, store.Pack, store.Index, store.Snapshot, store.Meta:
	default:
		return id, false
	}
	if len(h.Name) != 64 {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(h.Name)); err != nil || hex.EncodeToString(id[:]) != h.Name {
		return id, false
	}
	return id, true
}

func sum256(b []byte) [32]byte { return sha256.Sum256(b) }

// allCopies yields every copy record of every piece of objs, with its
// piece (p.obj is the object), in no particular order.
func allCopies(objs map[store.Handle]*object) iter.Seq2[*piece, *copyRec] {
	return func(yield func(*piece, *copyRec) bool) {
		for _, o := range objs {
			for _, p := range o.pieces {
				if p == nil {
					continue
				}
				for _, r := range p.at {
					if !yield(p, r) {
						return
					}
				}
			}
		}
	}
}
