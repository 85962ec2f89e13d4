package wire

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Bounds checks run after decoding, before any message reaches code that
// acts on it. They check sizes and ranges only; whether an object name or
// a signature is valid is decided at the edge by the receiver.

const maxNameLen = 128

func (o Object) check() error {
	if len(o.Type) > 16 || len(o.Name) > maxNameLen {
		return errors.New("object type or name too long")
	}
	return nil
}

func checkObjects(objs []Object) error {
	if len(objs) > MaxObjects {
		return fmt.Errorf("%d objects, more than %d", len(objs), MaxObjects)
	}
	for _, o := range objs {
		if err := o.check(); err != nil {
			return err
		}
	}
	return nil
}

func checkHash(h []byte) error {
	if len(h) != sha256.Size {
		return fmt.Errorf("hash of %d bytes, want %d", len(h), sha256.Size)
	}
	return nil
}

func checkMessage(m string) error {
	if len(m) > MaxMessageLen {
		return errors.New("message too long")
	}
	return nil
}

func checkTime(t int64) error {
	// Between 1970 and about the year 10000: keeps time.Unix sane.
	if t < 0 || t > 253402300799 {
		return fmt.Errorf("time %d out of range", t)
	}
	return nil
}

func checkCode(c Code) error {
	if c >= codeEnd {
		return fmt.Errorf("unknown code %d", c)
	}
	return nil
}

func (m *Challenge) check() error {
	if len(m.Nonce) != NonceSize {
		return fmt.Errorf("nonce of %d bytes, want %d", len(m.Nonce), NonceSize)
	}
	return nil
}

func (m *Request) check() error {
	if len(m.Body) == 0 {
		return errors.New("empty body")
	}
	return m.Auth.check()
}

func (a *Auth) check() error {
	if len(a.OwnerPub) != ed25519.PublicKeySize {
		return fmt.Errorf("owner key of %d bytes", len(a.OwnerPub))
	}
	if len(a.Cert) > MaxCertSize {
		return errors.New("certificate too large")
	}
	if len(a.Sig) == 0 || len(a.Sig) > 128 {
		return fmt.Errorf("signature of %d bytes", len(a.Sig))
	}
	return nil
}

func (m *OfferReq) check() error {
	if m.Bytes < 0 || m.Bytes > MaxObjectSize*MaxObjects {
		return fmt.Errorf("offer of %d bytes", m.Bytes)
	}
	return checkTime(m.Until)
}

func (m *OfferResp) check() error {
	if err := checkCode(m.Code); err != nil {
		return err
	}
	if m.Free < 0 {
		return errors.New("negative free space")
	}
	if err := checkTime(m.MaxUntil); err != nil {
		return err
	}
	return checkMessage(m.Message)
}

func (m *PutReq) check() error {
	if err := m.Object.check(); err != nil {
		return err
	}
	if m.Size < 0 || m.Size > MaxObjectSize {
		return fmt.Errorf("size %d out of range", m.Size)
	}
	if err := checkHash(m.Hash); err != nil {
		return err
	}
	return checkTime(m.Until)
}

func (m *PutResp) check() error {
	if err := checkCode(m.Code); err != nil {
		return err
	}
	if err := checkTime(m.Until); err != nil {
		return err
	}
	return checkMessage(m.Message)
}

func (m *GetReq) check() error {
	if err := m.Object.check(); err != nil {
		return err
	}
	if m.Offset < 0 || m.Length < 0 || m.Offset > MaxObjectSize || m.Length > MaxObjectSize {
		return errors.New("offset or length out of range")
	}
	return nil
}

func (m *GetResp) check() error {
	if err := checkCode(m.Code); err != nil {
		return err
	}
	if err := checkMessage(m.Message); err != nil {
		return err
	}
	if m.Code != CodeOK {
		return nil
	}
	if m.Size < 0 || m.Size > MaxObjectSize || m.Length < 0 || m.Length > m.Size {
		return errors.New("length or size out of range")
	}
	return checkHash(m.Hash)
}

func (m *HasReq) check() error {
	if err := checkObjects(m.Objects); err != nil {
		return err
	}
	if len(m.ListType) > 16 {
		return errors.New("list type too long")
	}
	if m.Limit < 0 || m.Limit > MaxObjects {
		return fmt.Errorf("limit %d out of range", m.Limit)
	}
	return m.After.check()
}

func (m *HasResp) check() error {
	if err := checkCode(m.Code); err != nil {
		return err
	}
	if len(m.Entries) > MaxObjects {
		return errors.New("too many entries")
	}
	for _, e := range m.Entries {
		if err := e.Object.check(); err != nil {
			return err
		}
		if e.Size < 0 || e.Size > MaxObjectSize {
			return errors.New("entry size out of range")
		}
		if err := checkHash(e.Hash); err != nil {
			return err
		}
		if err := checkTime(e.Until); err != nil {
			return err
		}
	}
	return checkMessage(m.Message)
}

func (m *RenewReq) check() error {
	if err := checkObjects(m.Objects); err != nil {
		return err
	}
	return checkTime(m.Until)
}

func (m *DeleteReq) check() error { return checkObjects(m.Objects) }

func (m *ChangeResp) check() error {
	if err := checkCode(m.Code); err != nil {
		return err
	}
	if err := checkObjects(m.Missing); err != nil {
		return err
	}
	return checkMessage(m.Message)
}

func (m *AuditReq) check() error {
	if err := m.Object.check(); err != nil {
		return err
	}
	if len(m.Leaves) == 0 || len(m.Leaves) > MaxAuditLeaves {
		return fmt.Errorf("%d leaves challenged", len(m.Leaves))
	}
	return nil
}

func (m *AuditResp) check() error {
	if err := checkCode(m.Code); err != nil {
		return err
	}
	if err := checkMessage(m.Message); err != nil {
		return err
	}
	if m.Size < 0 || m.Size > MaxObjectSize {
		return errors.New("size out of range")
	}
	if len(m.Leaves) > MaxAuditLeaves {
		return errors.New("too many leaves")
	}
	for _, l := range m.Leaves {
		if len(l.Data) > LeafSize {
			return errors.New("leaf too large")
		}
		if len(l.Path) > 64 {
			return errors.New("proof path too long")
		}
		for _, h := range l.Path {
			if err := checkHash(h); err != nil {
				return err
			}
		}
	}
	return nil
}
