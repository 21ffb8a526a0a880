// Package akidb is the Go binding of AkiDB, an embeddable vector database
// written in C (libakidb).  It links the library with cgo through
// pkg-config ("akidb"), and uses nothing but its public header.
//
//	db, err := akidb.Open("./my-db", nil)
//	if err != nil { ... }
//	defer db.Close()
//	docs, err := db.CreateCollection("docs", akidb.CollectionConfig{Dim: 4, Metric: akidb.Cosine})
//	ids, err := docs.Insert([]akidb.Document{{Vector: []float32{1, 0, 0, 0}, ExternalID: "a"}})
//	hits, err := docs.Search([]float32{0.9, 0.1, 0, 0}, 5, nil)
//
// Errors are *Error values carrying the library's code and message; match
// them with errors.Is(err, akidb.ErrNotFound).  A DB is safe for use by
// many goroutines; searches run in parallel inside the library.
//
// Module path: github.com/akidb/akidb-go (this directory, bindings/go).
package akidb

// #cgo pkg-config: akidb
// #include "shim.h"
import "C"

import (
	"os"
	"sync"
	"time"
	"unsafe"
)

// SyncMode says when an acknowledged write is flushed to disk.
type SyncMode int

const (
	SyncAlways   SyncMode = C.AKIDB_SYNC_ALWAYS   // fsync before each write returns (default)
	SyncInterval SyncMode = C.AKIDB_SYNC_INTERVAL // group commit: concurrent writers share an fsync
	SyncNone     SyncMode = C.AKIDB_SYNC_NONE     // leave flushing to the operating system
)

// Options for Open.  The zero value (or a nil *Options) gives the defaults.
type Options struct {
	SyncMode        SyncMode    // 0 = SyncAlways
	ReadOnly        bool        // open without writing; writes fail with ErrReadOnly
	FileMode        os.FileMode // permission bits of created files; 0 = 0644
	CheckpointBytes uint64      // checkpoint a collection's log past this size; 0 = 64 MiB
	// Store keeps snapshots and uploads; nil = a local store in DIR/objects.
	// It must stay open until the DB is closed.
	Store              *Store
	UploadConcurrency  uint32 // 0 = 16
	DLQMaxAttempts     uint32 // 0 = 5
	DLQRetryIntervalMS uint32 // 0 = 1000
	DLQRetryBatch      uint32 // 0 = 10

	// Tiering (docs/TIERING.md): the database's default policy.  Zero
	// values take the library's defaults; TTLs are rounded up to seconds.
	TierHotTTL         time.Duration // idle time before HOT -> WARM (6 h); Never: never
	TierWarmTTL        time.Duration // idle time before WARM -> COLD (7 d); Never: never
	TierPromotePerHour uint32        // accesses per hour that bring a WARM/COLD collection back (10)
	TierDisabled       bool          // the worker moves nothing
	MemoryBudget       uint64        // bytes of HOT data kept (0 = unlimited)
	StoreQuota         uint64        // bytes of snapshots in the store (0 = unlimited)
	SnapshotRetention  uint32        // tier snapshots kept per collection (0 = 3)
	MaxCollections     uint32        // collections the database may hold (0 = unlimited)
	TierInterval       time.Duration // how often the worker runs (60 s); Never: no worker thread
}

// DB is an open database (one libakidb handle).  Safe for concurrent use.
type DB struct {
	// mu guards the handle: every call holds it shared; Close and the
	// operations that change which dimension a collection name has
	// (create, drop, import) hold it exclusively, so no call runs on a
	// freed handle and no vector is checked against a stale dimension.
	mu    sync.RWMutex
	h     *C.akidb
	store *Store
	dir   string

	dimMu sync.Mutex
	dims  map[string]int
}

// Open opens (creating if needed) the database in directory dir.
// It fails with ErrBusy when another handle has it open, ErrCorrupt,
// ErrIO or ErrInvalid.
func Open(dir string, opts *Options) (*DB, error) {
	var o C.akidb_options
	C.akgo_options_default(&o)
	db := &DB{dir: dir, dims: map[string]int{}}
	if opts != nil {
		if opts.SyncMode != 0 {
			o.sync_mode = C.akidb_sync_mode(opts.SyncMode)
		}
		if opts.ReadOnly {
			o.read_only = 1
		}
		if opts.FileMode&^os.ModePerm != 0 {
			return nil, newError("Open", ErrInvalid, "FileMode %v has bits beyond 0777", opts.FileMode)
		}
		o.file_mode = C.uint32_t(opts.FileMode)
		o.checkpoint_bytes = C.uint64_t(opts.CheckpointBytes)
		o.upload_concurrency = C.uint32_t(opts.UploadConcurrency)
		o.dlq_max_attempts = C.uint32_t(opts.DLQMaxAttempts)
		o.dlq_retry_interval_ms = C.uint32_t(opts.DLQRetryIntervalMS)
		o.dlq_retry_batch = C.uint32_t(opts.DLQRetryBatch)
		if err := setTierOptions(&o, opts); err != nil {
			return nil, err
		}
		if opts.Store != nil {
			h, err := opts.Store.attach()
			if err != nil {
				return nil, err
			}
			o.store = h
			db.store = opts.Store
		}
	}
	if err := noNUL("Open", "dir", dir); err != nil {
		if db.store != nil {
			db.store.detach()
		}
		return nil, err
	}
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	var msg *C.char
	rc := C.akgo_open(cdir, &o, &db.h, &msg)
	if err := check("Open", rc, msg); err != nil {
		if db.store != nil {
			db.store.detach()
		}
		return nil, err
	}
	return db, nil
}

// Close checkpoints collections whose log holds records and releases the
// handle.  It waits for calls in progress; later calls fail with
// ErrMisuse.  Closing a closed DB returns nil.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.h == nil {
		return nil
	}
	var msg *C.char
	rc := C.akgo_close(db.h, &msg)
	db.h = nil
	if db.store != nil {
		db.store.detach()
		db.store = nil
	}
	return check("Close", rc, msg)
}

// Dir is the directory the DB was opened in.
func (db *DB) Dir() string { return db.dir }

// rlock takes the handle shared; it fails when the DB is closed.
func (db *DB) rlock(op string) error {
	db.mu.RLock()
	if db.h == nil {
		db.mu.RUnlock()
		return newError(op, ErrMisuse, "the database is closed")
	}
	return nil
}

func (db *DB) lock(op string) error {
	db.mu.Lock()
	if db.h == nil {
		db.mu.Unlock()
		return newError(op, ErrMisuse, "the database is closed")
	}
	db.dimMu.Lock()
	db.dims = map[string]int{}
	db.dimMu.Unlock()
	return nil
}

// dim returns the dimension of collection cname (cached); call with mu held.
func (db *DB) dim(op, name string, cname *C.char) (int, error) {
	db.dimMu.Lock()
	d, ok := db.dims[name]
	db.dimMu.Unlock()
	if ok {
		return d, nil
	}
	var cfg C.akidb_collection_config
	var msg *C.char
	if err := check(op, C.akgo_collection_info(db.h, cname, &cfg, &msg), msg); err != nil {
		return 0, err
	}
	d = int(cfg.dim)
	db.dimMu.Lock()
	db.dims[name] = d
	db.dimMu.Unlock()
	return d, nil
}

// Collections returns the names of every collection in ascending byte order.
func (db *DB) Collections() ([]string, error) {
	if err := db.rlock("Collections"); err != nil {
		return nil, err
	}
	defer db.mu.RUnlock()
	var names **C.char
	var n C.size_t
	var msg *C.char
	if err := check("Collections", C.akgo_collection_list(db.h, &names, &n, &msg), msg); err != nil {
		return nil, err
	}
	return takeStrings(unsafe.Pointer(names), int(n)), nil
}

// takeStrings copies a library-allocated array of n C strings (one
// allocation) into Go and frees it.
func takeStrings(arr unsafe.Pointer, n int) []string {
	if arr == nil {
		return []string{}
	}
	defer C.akidb_free(arr)
	out := make([]string, n)
	for i := range out {
		out[i] = C.GoString((*C.char)(C.akgo_index(arr, C.size_t(i))))
	}
	return out
}

// Checkpoint writes collection name ("" = every collection) as a
// checkpoint and empties its write-ahead log.
func (db *DB) Checkpoint(name string) error {
	if err := noNUL("Checkpoint", "name", name); err != nil {
		return err
	}
	if err := db.rlock("Checkpoint"); err != nil {
		return err
	}
	defer db.mu.RUnlock()
	var cname *C.char
	if name != "" {
		cname = C.CString(name)
		defer C.free(unsafe.Pointer(cname))
	}
	var msg *C.char
	return check("Checkpoint", C.akgo_checkpoint(db.h, cname, &msg), msg)
}

// IndexWait waits until every acknowledged document of collection name
// ("" = of every collection) is linked into its HNSW graph (index lag 0).
// Searches do not need it (they scan the unlinked tail exactly); it is for
// tests and benchmarks that want the complete graph.  timeout Never = no
// limit; when the timeout passes first the error matches ErrBusy.
func (db *DB) IndexWait(name string, timeout time.Duration) error {
	if err := noNUL("IndexWait", "name", name); err != nil {
		return err
	}
	ms := C.uint32_t(C.AKIDB_NEVER)
	if timeout != Never {
		if timeout < 0 || timeout/time.Millisecond >= C.AKIDB_NEVER {
			return newError("IndexWait", ErrInvalid, "timeout %v is out of range", timeout)
		}
		ms = C.uint32_t(timeout / time.Millisecond)
	}
	if err := db.rlock("IndexWait"); err != nil {
		return err
	}
	defer db.mu.RUnlock()
	var cname *C.char
	if name != "" {
		cname = C.CString(name)
		defer C.free(unsafe.Pointer(cname))
	}
	var msg *C.char
	return check("IndexWait", C.akgo_index_wait(db.h, cname, ms, &msg), msg)
}

// Metrics returns every metric in the Prometheus text exposition format.
func (db *DB) Metrics() (string, error) {
	if err := db.rlock("Metrics"); err != nil {
		return "", err
	}
	defer db.mu.RUnlock()
	var text, msg *C.char
	if err := check("Metrics", C.akgo_metrics_render(db.h, &text, &msg), msg); err != nil {
		return "", err
	}
	defer C.akidb_free(unsafe.Pointer(text))
	return C.GoString(text), nil
}

// MetricValue returns one metric, e.g. "akidb_searches_total".
func (db *DB) MetricValue(name string) (int64, error) {
	if err := noNUL("MetricValue", "name", name); err != nil {
		return 0, err
	}
	if err := db.rlock("MetricValue"); err != nil {
		return 0, err
	}
	defer db.mu.RUnlock()
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var v C.int64_t
	var msg *C.char
	if err := check("MetricValue", C.akgo_metric_value(db.h, cname, &v, &msg), msg); err != nil {
		return 0, err
	}
	return int64(v), nil
}

// Version returns the linked library's version, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.akidb_version()) }
