package crypto

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var cheap = KDFParams{Time: 1, Memory: 64, Threads: 1}

func TestSealOpen(t *testing.T) {
	mk, _ := NewMasterKey()
	k := Derive(mk)
	ct := k.Seal(nil, []byte("secret"), []byte("ad"))
	pt, err := k.Open(nil, ct, []byte("ad"))
	if err != nil || string(pt) != "secret" {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := k.Open(nil, ct, []byte("other ad")); !errors.Is(err, ErrAuth) {
		t.Fatal("wrong additional data accepted")
	}
	ct[len(ct)-1] ^= 1
	if _, err := k.Open(nil, ct, []byte("ad")); !errors.Is(err, ErrAuth) {
		t.Fatal("flipped bit accepted")
	}
	if _, err := k.Open(nil, ct[:10], []byte("ad")); !errors.Is(err, ErrAuth) {
		t.Fatal("truncated ciphertext accepted")
	}
	other, _ := NewMasterKey()
	if _, err := Derive(other).Open(nil, k.Seal(nil, []byte("x"), nil), nil); !errors.Is(err, ErrAuth) {
		t.Fatal("other key opened the ciphertext")
	}
	if bytes.Contains(k.Seal(nil, []byte("plaintext marker"), nil), []byte("plaintext marker")) {
		t.Fatal("plaintext visible in ciphertext")
	}
}

func TestBlobIDKeyed(t *testing.T) {
	a, _ := NewMasterKey()
	b, _ := NewMasterKey()
	if Derive(a).BlobID([]byte("x")) == Derive(b).BlobID([]byte("x")) {
		t.Fatal("blob IDs do not depend on the key")
	}
	if Derive(a).BlobID([]byte("x")) != Derive(a).BlobID([]byte("x")) {
		t.Fatal("blob ID not deterministic")
	}
}

func TestKeyFile(t *testing.T) {
	mk, _ := NewMasterKey()
	kf, err := NewKeyFile(mk, []byte("correct horse"), cheap, "host", "me", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := kf.Marshal()
	if bytes.Contains(b, mk[:]) {
		t.Fatal("master key stored in the clear")
	}
	kf2, err := ParseKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kf2.Open([]byte("correct horse"))
	if err != nil || got != mk {
		t.Fatalf("open: %v", err)
	}
	if _, err := kf2.Open([]byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	// Tampering with the cost parameters breaks the binding.
	kf2.Params.Time = 2
	if _, err := kf2.Open([]byte("correct horse")); err == nil {
		t.Fatal("tampered parameters accepted")
	}
	if _, err := NewKeyFile(mk, nil, cheap, "", "", time.Now()); err == nil {
		t.Fatal("empty passphrase accepted")
	}
	kf2.Params = KDFParams{Time: 1, Memory: 1 << 30, Threads: 1}
	if _, err := kf2.Open([]byte("x")); err == nil {
		t.Fatal("absurd memory parameter accepted")
	}
}

func TestRecoveryCode(t *testing.T) {
	mk, _ := NewMasterKey()
	code := EncodeRecoveryCode(mk)
	got, err := ParseRecoveryCode(code)
	if err != nil || got != mk {
		t.Fatalf("round trip: %v", err)
	}
	// Lower case, spaces and confusable letters are accepted.
	loose := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	loose = strings.ReplaceAll(loose, "1", "l")
	loose = strings.ReplaceAll(loose, "0", "o")
	if got, err := ParseRecoveryCode(loose); err != nil || got != mk {
		t.Fatalf("loose form: %v", err)
	}
	// Every single-character typo is caught by the checksum.
	for i, c := range code {
		if c == '-' {
			continue
		}
		repl := byte('A')
		if byte(c) == 'A' {
			repl = 'B'
		}
		typo := code[:i] + string(repl) + code[i+1:]
		if _, err := ParseRecoveryCode(typo); err == nil {
			t.Fatalf("typo at %d accepted", i)
		}
	}
	if _, err := ParseRecoveryCode(code[:len(code)-2]); err == nil {
		t.Fatal("short code accepted")
	}
}

func TestNodeCert(t *testing.T) {
	mk, _ := NewMasterKey()
	k := Derive(mk)
	now := time.Now()
	c := k.IssueNodeCert("12D3KooWnode", now, time.Hour)
	b, _ := MarshalNodeCert(c)
	c2, err := ParseNodeCert(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Verify("12D3KooWnode", now); err != nil {
		t.Fatal(err)
	}
	if c2.OwnerID() != k.OwnerID() {
		t.Fatal("owner ID differs")
	}
	if c2.Verify("12D3KooWother", now) == nil {
		t.Fatal("certificate accepted for another node")
	}
	if c2.Verify("12D3KooWnode", now.Add(2*time.Hour)) == nil {
		t.Fatal("expired certificate accepted")
	}
	c2.Expires = c2.Expires.Add(time.Hour)
	if c2.Verify("12D3KooWnode", now) == nil {
		t.Fatal("tampered certificate accepted")
	}
}

func FuzzParseRecoveryCode(f *testing.F) {
	mk, _ := NewMasterKey()
	f.Add(EncodeRecoveryCode(mk))
	f.Add("")
	f.Add("----")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseRecoveryCode(s)
		if err == nil && EncodeRecoveryCode(k) == "" {
			t.Fatal("decoded a key that does not encode")
		}
	})
}

func FuzzParseKeyFile(f *testing.F) {
	mk, _ := NewMasterKey()
	kf, _ := NewKeyFile(mk, []byte("pw"), cheap, "h", "u", time.Now())
	b, _ := kf.Marshal()
	f.Add(b)
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := ParseKeyFile(b)
		if err != nil {
			return
		}
		if kf.Params.Memory > 4096 { // keep each fuzz run cheap
			return
		}
		_, _ = kf.Open([]byte("pw"))
	})
}
