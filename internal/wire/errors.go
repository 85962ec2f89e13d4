package wire

import (
	"errors"
	"fmt"

	"github.com/cairn-backup/cairn/internal/store"
)

// Code is a result code on the wire. This file is the only place where
// codes and Go errors meet: the host turns its errors into codes with
// CodeOf, the client turns codes back into errors with Code.Err.
type Code uint16

// Result codes. Values are part of the protocol: never renumber.
const (
	CodeOK           Code = 0
	CodeBadRequest   Code = 1  // malformed or invalid request
	CodeNotTrusted   Code = 2  // the host does not store for this peer
	CodeQuota        Code = 3  // the peer's quota (reciprocity or override) is used up
	CodeDiskFull     Code = 4  // the host's offer or disk is full
	CodeLeaseTooLong Code = 5  // the lease asked for is longer than the host grants
	CodeNotFound     Code = 6  // the host does not hold the object
	CodeBadProof     Code = 7  // the ownership proof does not check out
	CodeHashMismatch Code = 8  // the bytes do not hash to the announced hash
	CodeBusy         Code = 9  // too many requests; try later
	CodeInternal     Code = 10 // the host failed; try later
	codeEnd          Code = 11
)

// Sentinel errors, one per refusal. Errors returned by the client for a
// refusal wrap one of them (test with errors.Is); ErrNotFound also matches
// store.ErrNotFound.
var (
	ErrBadRequest   = errors.New("bad request")
	ErrNotTrusted   = errors.New("not trusted")
	ErrQuota        = errors.New("quota exceeded")
	ErrDiskFull     = errors.New("disk full")
	ErrLeaseTooLong = errors.New("lease too long")
	ErrNotFound     = fmt.Errorf("%w on host", store.ErrNotFound)
	ErrBadProof     = errors.New("ownership proof refused")
	ErrHashMismatch = errors.New("hash mismatch")
	ErrBusy         = errors.New("host busy")
	ErrInternal     = errors.New("host internal error")
)

var codeErrs = [codeEnd]error{
	CodeOK:           nil,
	CodeBadRequest:   ErrBadRequest,
	CodeNotTrusted:   ErrNotTrusted,
	CodeQuota:        ErrQuota,
	CodeDiskFull:     ErrDiskFull,
	CodeLeaseTooLong: ErrLeaseTooLong,
	CodeNotFound:     ErrNotFound,
	CodeBadProof:     ErrBadProof,
	CodeHashMismatch: ErrHashMismatch,
	CodeBusy:         ErrBusy,
	CodeInternal:     ErrInternal,
}

// String names the code.
func (c Code) String() string {
	if c == CodeOK {
		return "ok"
	}
	if c < codeEnd {
		return codeErrs[c].Error()
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Error is a refusal received from a host.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "host refused: " + e.Code.String()
	}
	return "host refused: " + e.Code.String() + ": " + e.Message
}

// Unwrap returns the sentinel of the code.
func (e *Error) Unwrap() error {
	if e.Code < codeEnd {
		return codeErrs[e.Code]
	}
	return ErrInternal
}

// Err returns the error for a code received with message msg, nil for CodeOK.
func (c Code) Err(msg string) error {
	if c == CodeOK {
		return nil
	}
	return &Error{Code: c, Message: msg}
}

// CodeOf maps an error to the code sent for it: the code of the first
// sentinel it wraps, CodeInternal for anything else, CodeOK for nil.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var we *Error
	if errors.As(err, &we) && we.Code < codeEnd {
		return we.Code
	}
	for c := CodeBadRequest; c < codeEnd; c++ {
		if errors.Is(err, codeErrs[c]) {
			return c
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return CodeNotFound
	}
	return CodeInternal
}
