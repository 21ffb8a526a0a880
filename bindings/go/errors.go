package akidb

// #include "shim.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// Code is a libakidb result code (akidb_result).  Codes are errors
// themselves, so a *Error can be matched with errors.Is(err, akidb.ErrNotFound).
type Code int

// Error returns the code's C name, e.g. "AKIDB_NOTFOUND".
func (c Code) Error() string { return C.GoString(C.akidb_errname(C.int(c))) }

// Text returns the library's short English text for the code ("not found").
func (c Code) Text() string { return C.GoString(C.akidb_errstr(C.int(c))) }

// The result codes (frozen values from include/akidb.h).
const (
	ErrInternal    = Code(C.AKIDB_ERROR)       // internal error that fits no other code
	ErrNoMem       = Code(C.AKIDB_NOMEM)       // an allocation failed; nothing changed
	ErrMisuse      = Code(C.AKIDB_MISUSE)      // API used wrongly (e.g. a closed DB)
	ErrInvalid     = Code(C.AKIDB_INVALID)     // an argument or input value is not acceptable
	ErrNotFound    = Code(C.AKIDB_NOTFOUND)    // collection, document, snapshot or key missing
	ErrExists      = Code(C.AKIDB_EXISTS)      // the thing being created already exists
	ErrIO          = Code(C.AKIDB_IOERR)       // the operating system reported an I/O error
	ErrCorrupt     = Code(C.AKIDB_CORRUPT)     // stored data failed a consistency check
	ErrConflict    = Code(C.AKIDB_CONFLICT)    // a concurrent change made the request fail
	ErrBusy        = Code(C.AKIDB_BUSY)        // another handle or process holds the database
	ErrQuota       = Code(C.AKIDB_QUOTA)       // a configured limit would be exceeded
	ErrUnavailable = Code(C.AKIDB_UNAVAILABLE) // a remote service cannot be reached right now
	ErrReadOnly    = Code(C.AKIDB_READONLY)    // a write on a database opened read-only
)

// knownCodes lists every code above; TestEveryLibraryCodeIsKnown fails when
// the library has a code that is missing here.
var knownCodes = []Code{ErrInternal, ErrNoMem, ErrMisuse, ErrInvalid, ErrNotFound, ErrExists,
	ErrIO, ErrCorrupt, ErrConflict, ErrBusy, ErrQuota, ErrUnavailable, ErrReadOnly}

// libraryCodes returns the codes the linked library knows (1, 2, ... up to
// the first one akidb_errname calls "AKIDB_UNKNOWN").
func libraryCodes() []Code {
	var out []Code
	for c := Code(1); c < 1000; c++ {
		if c.Error() == "AKIDB_UNKNOWN" {
			break
		}
		out = append(out, c)
	}
	return out
}

// Error is a failed library call: the code, the operation, and the
// library's detailed message (akidb_errmsg of the thread that failed).
type Error struct {
	Code    Code
	Op      string // the Go method, e.g. "Insert"
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("akidb: %s: %s", e.Op, e.Code.Error())
	}
	return fmt.Sprintf("akidb: %s: %s: %s", e.Op, e.Code.Error(), e.Message)
}

// Unwrap returns the Code, so errors.Is(err, akidb.ErrNotFound) works.
func (e *Error) Unwrap() error { return e.Code }

// check turns a shim result (code + malloc'ed message) into an error.
func check(op string, rc C.int, msg *C.char) error {
	if rc == C.AKIDB_OK {
		return nil
	}
	e := &Error{Code: Code(rc), Op: op}
	if msg != nil {
		e.Message = C.GoString(msg)
		C.free(unsafe.Pointer(msg))
	}
	return e
}

// newError is an error raised on the Go side before calling the library.
func newError(op string, code Code, format string, args ...interface{}) error {
	return &Error{Code: code, Op: op, Message: fmt.Sprintf(format, args...)}
}

// noNUL rejects a string C would see cut short at an embedded NUL byte.
func noNUL(op, what, s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return newError(op, ErrInvalid, "%s contains a NUL byte", what)
		}
	}
	return nil
}
