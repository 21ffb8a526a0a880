package akidb

// #include "shim.h"
import "C"

import (
	"sync"
	"unsafe"
)

// Store is an object store for snapshots and uploads (Options.Store).
// One store may serve several DBs; it cannot be closed while one is open.
type Store struct {
	mu    sync.Mutex
	h     *C.akidb_store
	users int
	mock  bool
}

func (s *Store) attach() (*C.akidb_store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return nil, newError("Open", ErrMisuse, "the store is closed")
	}
	s.users++
	return s.h, nil
}

func (s *Store) detach() {
	s.mu.Lock()
	s.users--
	s.mu.Unlock()
}

// Close destroys the store.  It fails with ErrMisuse while an open DB uses it.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return nil
	}
	if s.users > 0 {
		return newError("Store.Close", ErrMisuse, "the store is in use by %d open DB(s)", s.users)
	}
	C.akidb_store_close(s.h)
	s.h = nil
	return nil
}

// NewLocalStore opens a store in directory dir (created if missing).
func NewLocalStore(dir string) (*Store, error) {
	if err := noNUL("NewLocalStore", "dir", dir); err != nil {
		return nil, err
	}
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	s := &Store{}
	var msg *C.char
	if err := check("NewLocalStore", C.akgo_store_local_open(cdir, &s.h, &msg), msg); err != nil {
		return nil, err
	}
	return s, nil
}

// MockFault is what an injected fault of a mock store does.
type MockFault int

const (
	Mock503          MockFault = C.AKIDB_MOCK_503
	MockTimeout      MockFault = C.AKIDB_MOCK_TIMEOUT
	Mock403          MockFault = C.AKIDB_MOCK_403
	MockPartialWrite MockFault = C.AKIDB_MOCK_PARTIAL_WRITE
	MockCorruptRead  MockFault = C.AKIDB_MOCK_CORRUPT_READ
)

// Operations a mock fault matches (a mask).
const (
	MockOpGet  = C.AKIDB_MOCK_OP_GET
	MockOpSize = C.AKIDB_MOCK_OP_SIZE
	MockOpPut  = C.AKIDB_MOCK_OP_PUT
	MockOpDel  = C.AKIDB_MOCK_OP_DEL
	MockOpList = C.AKIDB_MOCK_OP_LIST
	MockOpAny  = C.AKIDB_MOCK_OP_ANY
)

// NewMockStore opens an in-memory store with injectable faults, for tests.
func NewMockStore() (*Store, error) {
	s := &Store{mock: true}
	var msg *C.char
	if err := check("NewMockStore", C.akgo_store_mock_open(&s.h, &msg), msg); err != nil {
		return nil, err
	}
	return s, nil
}

// Inject makes the next count calls of a mock store that match ops and
// keyGlob ("" = any key) fail with fault.
func (s *Store) Inject(ops uint, keyGlob string, fault MockFault, count, retryAfterMS uint32) error {
	if err := noNUL("Inject", "keyGlob", keyGlob); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil || !s.mock {
		return newError("Inject", ErrMisuse, "not an open mock store")
	}
	var glob *C.char
	if keyGlob != "" {
		glob = C.CString(keyGlob)
		defer C.free(unsafe.Pointer(glob))
	}
	var msg *C.char
	return check("Inject", C.akgo_store_mock_inject(s.h, C.uint(ops), glob, C.int(fault),
		C.uint32_t(count), C.uint32_t(retryAfterMS), &msg), msg)
}

// ClearFaults removes every fault rule of a mock store.
func (s *Store) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != nil && s.mock {
		C.akidb_store_mock_clear_faults(s.h)
	}
}

// S3Config are the settings of an S3-compatible store; zero fields take
// the defaults (region us-east-1, timeouts 5 s / 60 s, 8 parallel
// requests, multipart from 16 MiB in 8 MiB parts).
type S3Config struct {
	Endpoint           string // "http://127.0.0.1:7480", "https://s3.eu-west-1.amazonaws.com"
	Region             string
	Bucket             string
	AccessKey          string
	SecretKey          string
	VirtualHostStyle   bool // false (default): path-style http://endpoint/bucket/key
	ConnectTimeoutMS   uint32
	RequestTimeoutMS   uint32
	MaxConcurrency     uint32
	MultipartThreshold uint64
	PartSize           uint64
}

// NewS3Store opens a store in an S3 bucket; no request is made until used.
func NewS3Store(cfg S3Config) (*Store, error) {
	var c C.akidb_s3_config
	C.akgo_s3_default(&c)
	var strs []*C.char
	defer func() {
		for _, p := range strs {
			C.free(unsafe.Pointer(p))
		}
	}()
	set := func(dst **C.char, what, v string) error {
		if v == "" {
			return nil
		}
		if err := noNUL("NewS3Store", what, v); err != nil {
			return err
		}
		*dst = C.CString(v)
		strs = append(strs, *dst)
		return nil
	}
	for _, f := range []struct {
		dst  **C.char
		what string
		v    string
	}{{&c.endpoint, "Endpoint", cfg.Endpoint}, {&c.region, "Region", cfg.Region},
		{&c.bucket, "Bucket", cfg.Bucket}, {&c.access_key, "AccessKey", cfg.AccessKey},
		{&c.secret_key, "SecretKey", cfg.SecretKey}} {
		if err := set(f.dst, f.what, f.v); err != nil {
			return nil, err
		}
	}
	if cfg.VirtualHostStyle {
		c.path_style = 0
	}
	if cfg.ConnectTimeoutMS != 0 {
		c.connect_timeout_ms = C.uint32_t(cfg.ConnectTimeoutMS)
	}
	if cfg.RequestTimeoutMS != 0 {
		c.request_timeout_ms = C.uint32_t(cfg.RequestTimeoutMS)
	}
	if cfg.MaxConcurrency != 0 {
		c.max_concurrency = C.uint32_t(cfg.MaxConcurrency)
	}
	if cfg.MultipartThreshold != 0 {
		c.multipart_threshold = C.uint64_t(cfg.MultipartThreshold)
	}
	if cfg.PartSize != 0 {
		c.part_size = C.uint64_t(cfg.PartSize)
	}
	s := &Store{}
	var msg *C.char
	if err := check("NewS3Store", C.akgo_store_s3_open(&c, &s.h, &msg), msg); err != nil {
		return nil, err
	}
	return s, nil
}
