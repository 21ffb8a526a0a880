package akidb

// #include "shim.h"
import "C"

import (
	"encoding/json"
	"time"
	"unsafe"
)

// Metric is a collection's distance; smaller is always closer.
type Metric int

const (
	L2     Metric = C.AKIDB_METRIC_L2     // squared Euclidean distance
	Cosine Metric = C.AKIDB_METRIC_COSINE // 1 - cos(a, b); vectors are normalised on insert
	Dot    Metric = C.AKIDB_METRIC_DOT    // negative inner product
)

func (m Metric) String() string {
	switch m {
	case L2:
		return "l2"
	case Cosine:
		return "cosine"
	case Dot:
		return "dot"
	}
	return "unknown"
}

// Tier is where a collection's data lives.
type Tier int

const (
	Hot  Tier = C.AKIDB_TIER_HOT  // vectors and graph in RAM
	Warm Tier = C.AKIDB_TIER_WARM // in a local file; RAM released
	Cold Tier = C.AKIDB_TIER_COLD // only in the object store
)

func (t Tier) String() string {
	switch t {
	case Hot:
		return "hot"
	case Warm:
		return "warm"
	case Cold:
		return "cold"
	}
	return "unknown"
}

// Storage is what a collection's graph search walks on (akidb_storage).
type Storage int

const (
	F32  Storage = C.AKIDB_STORAGE_F32  // the float vectors (default)
	F16  Storage = C.AKIDB_STORAGE_F16  // binary16 copy: 2 bytes a dimension
	Int8 Storage = C.AKIDB_STORAGE_INT8 // 8-bit codes trained on the first 4096 vectors
)

func (s Storage) String() string {
	switch s {
	case F32, 0:
		return "f32"
	case F16:
		return "f16"
	case Int8:
		return "int8"
	}
	return "unknown"
}

// CollectionConfig are a collection's settings.  Zero HNSW fields take the
// library's defaults (M 16, EfConstruction 200, EfSearch 64).
type CollectionConfig struct {
	Dim            int
	Metric         Metric // 0 = Cosine
	M              int
	EfConstruction int
	EfSearch       int
	// Storage (0 = F32).  With F16 or Int8 a search re-ranks its best
	// Rerank x k candidates on the exact vectors kept in RAM, so distances
	// are exact; ExactInFile reads them from the collection's checkpoint
	// file instead (the same results, far less RAM once a checkpoint holds
	// them); NoExactVectors keeps only the compact copy (least memory,
	// approximate distances: akidb_exact_vectors in akidb.h).  At most
	// one of the two.
	Storage        Storage
	ExactInFile    bool
	NoExactVectors bool
	Rerank         int // 1..64; 0 = the library's default (2); ignored for F32
}

// CollectionStats is what a collection holds right now.  Byte counts are RAM.
type CollectionStats struct {
	Dim           int
	Metric        Metric
	Tier          Tier
	Pinned        bool
	Count         uint64 // live documents
	Deleted       uint64 // deleted documents whose nodes remain in the graph
	Bytes         uint64 // VectorBytes + CompactBytes + GraphBytes + DocumentBytes
	VectorBytes   uint64 // float vectors held
	CompactBytes  uint64 // F16/Int8 rows the graph is walked on (0 for F32)
	GraphBytes    uint64
	DocumentBytes uint64
	LogBytes      uint64 // write-ahead log not yet folded into a checkpoint
	IndexLag      uint64 // acknowledged documents not yet in the graph
	CreatedAt     time.Time
}

// Document is one stored document.  On insert, ID and InsertedAt are
// ignored, ExternalID "" means none and Metadata nil means none (it must
// be JSON text otherwise).
type Document struct {
	ID         uint64
	ExternalID string
	Vector     []float32
	Metadata   json.RawMessage
	InsertedAt time.Time
}

// Hit is one search result.  ExternalID and Metadata are filled only when
// SearchOptions.Documents is set.
type Hit struct {
	ID         uint64
	Distance   float32
	ExternalID string
	Metadata   json.RawMessage
}

// SearchOptions tune a search; nil means the defaults.
type SearchOptions struct {
	Ef        int  // candidate list size; 0 = the collection's EfSearch
	Exact     bool // scan every document instead of walking the graph
	Documents bool // fill each hit's ExternalID and Metadata (one more call per hit)
}

// Snapshot describes one snapshot in the object store.
type Snapshot struct {
	ID        string
	Key       string
	Rows      uint64
	Bytes     uint64
	SHA256    string
	CreatedAt time.Time
}

// Collection is a handle on one collection of a DB; safe for concurrent use.
type Collection struct {
	db   *DB
	name string
}

func usTime(us C.int64_t) time.Time { return time.UnixMicro(int64(us)).UTC() }

// CreateCollection creates collection name ([A-Za-z0-9_-]{1,64}).
func (db *DB) CreateCollection(name string, cfg CollectionConfig) (*Collection, error) {
	if err := noNUL("CreateCollection", "name", name); err != nil {
		return nil, err
	}
	if cfg.Dim <= 0 || cfg.Dim > 1<<30 {
		return nil, newError("CreateCollection", ErrInvalid, "Dim %d is out of range", cfg.Dim)
	}
	if cfg.Metric == 0 {
		cfg.Metric = Cosine
	}
	var c C.akidb_collection_config
	C.akgo_config_default(&c, C.uint32_t(cfg.Dim), C.int(cfg.Metric))
	for _, v := range []int{cfg.M, cfg.EfConstruction, cfg.EfSearch} {
		if v < 0 || v > 1<<30 {
			return nil, newError("CreateCollection", ErrInvalid, "HNSW parameter %d is out of range", v)
		}
	}
	if cfg.M != 0 {
		c.hnsw_m = C.uint32_t(cfg.M)
	}
	if cfg.EfConstruction != 0 {
		c.ef_construction = C.uint32_t(cfg.EfConstruction)
	}
	if cfg.EfSearch != 0 {
		c.ef_search = C.uint32_t(cfg.EfSearch)
	}
	if cfg.Storage != 0 {
		c.storage = C.akidb_storage(cfg.Storage)
	}
	if cfg.NoExactVectors && cfg.ExactInFile {
		return nil, newError("CreateCollection", ErrInvalid, "ExactInFile and NoExactVectors are exclusive")
	}
	if cfg.NoExactVectors {
		c.exact = C.AKIDB_EXACT_NONE
	}
	if cfg.ExactInFile {
		c.exact = C.AKIDB_EXACT_FILE
	}
	if cfg.Rerank < 0 || cfg.Rerank > 1<<30 {
		return nil, newError("CreateCollection", ErrInvalid, "Rerank %d is out of range", cfg.Rerank)
	}
	c.rerank = C.uint32_t(cfg.Rerank)
	if err := db.lock("CreateCollection"); err != nil {
		return nil, err
	}
	defer db.mu.Unlock()
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var msg *C.char
	if err := check("CreateCollection", C.akgo_collection_create(db.h, cname, &c, &msg), msg); err != nil {
		return nil, err
	}
	return &Collection{db: db, name: name}, nil
}

// Collection returns the existing collection name (ErrNotFound if none).
func (db *DB) Collection(name string) (*Collection, error) {
	if err := noNUL("Collection", "name", name); err != nil {
		return nil, err
	}
	if err := db.rlock("Collection"); err != nil {
		return nil, err
	}
	defer db.mu.RUnlock()
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if _, err := db.dim("Collection", name, cname); err != nil {
		return nil, err
	}
	return &Collection{db: db, name: name}, nil
}

// DropCollection drops collection name with its documents and files.
func (db *DB) DropCollection(name string) error {
	if err := noNUL("DropCollection", "name", name); err != nil {
		return err
	}
	if err := db.lock("DropCollection"); err != nil {
		return err
	}
	defer db.mu.Unlock()
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var msg *C.char
	return check("DropCollection", C.akgo_collection_drop(db.h, cname, &msg), msg)
}

// ImportOptions map a Parquet file's columns (ImportParquet); nil = defaults.
type ImportOptions struct {
	VectorColumn    string   // "" = "vector"
	IDColumn        string   // values become external ids; "" = none
	MetadataColumns []string // each row's metadata becomes a JSON object of these
	Metric          Metric   // for a collection the import creates; 0 = the file's akidb.metric, else L2
	// For a collection the import creates: Storage 0 = the file's
	// akidb.storage, else F32 (into an existing collection only its own
	// kind); ExactInFile, NoExactVectors and Rerank as in CollectionConfig.
	Storage        Storage
	ExactInFile    bool
	NoExactVectors bool
	Rerank         int
}

// ImportParquet imports the Parquet file path into collection name
// (created with the file's dimension if missing; rows whose external id
// exists are replaced) and returns the number of rows imported.
func (db *DB) ImportParquet(name, path string, opts *ImportOptions) (uint64, error) {
	if opts == nil {
		opts = &ImportOptions{}
	}
	for _, v := range append([]string{name, path, opts.VectorColumn, opts.IDColumn},
		opts.MetadataColumns...) {
		if err := noNUL("ImportParquet", "an argument", v); err != nil {
			return 0, err
		}
	}
	metric := opts.Metric // 0 reaches the library: the file's metric
	exact := C.int(C.AKIDB_EXACT_RAM)
	switch {
	case opts.ExactInFile && opts.NoExactVectors:
		return 0, newError("ImportParquet", ErrInvalid, "ExactInFile and NoExactVectors are exclusive")
	case opts.ExactInFile:
		exact = C.AKIDB_EXACT_FILE
	case opts.NoExactVectors:
		exact = C.AKIDB_EXACT_NONE
	}
	if opts.Rerank < 0 || opts.Rerank > 1<<30 {
		return 0, newError("ImportParquet", ErrInvalid, "Rerank %d is out of range", opts.Rerank)
	}
	var strs []*C.char
	cstr := func(s string) *C.char {
		p := C.CString(s)
		strs = append(strs, p)
		return p
	}
	defer func() {
		for _, p := range strs {
			C.free(unsafe.Pointer(p))
		}
	}()
	cname, cpath := cstr(name), cstr(path)
	var vcol, idcol *C.char
	if opts.VectorColumn != "" {
		vcol = cstr(opts.VectorColumn)
	}
	if opts.IDColumn != "" {
		idcol = cstr(opts.IDColumn)
	}
	var meta **C.char
	if len(opts.MetadataColumns) > 0 {
		// The array holds C pointers only, so C may read it from Go memory.
		cols := make([]*C.char, len(opts.MetadataColumns))
		for i, c := range opts.MetadataColumns {
			cols[i] = cstr(c)
		}
		meta = &cols[0]
	}
	if err := db.lock("ImportParquet"); err != nil {
		return 0, err
	}
	defer db.mu.Unlock()
	var rows C.uint64_t
	var msg *C.char
	rc := C.akgo_import_parquet(db.h, cname, cpath, vcol, idcol, meta,
		C.size_t(len(opts.MetadataColumns)), C.int(metric), C.int(opts.Storage), exact,
		C.uint32_t(opts.Rerank), &rows, &msg)
	return uint64(rows), check("ImportParquet", rc, msg)
}

// Name is the collection's name.
func (c *Collection) Name() string { return c.name }

// call runs fn with the DB held shared and the collection's name as a C string.
func (c *Collection) call(op string, fn func(cname *C.char) error) error {
	if err := noNUL(op, "collection name", c.name); err != nil {
		return err
	}
	if err := c.db.rlock(op); err != nil {
		return err
	}
	defer c.db.mu.RUnlock()
	cname := C.CString(c.name)
	defer C.free(unsafe.Pointer(cname))
	return fn(cname)
}

// Config returns the collection's settings.
func (c *Collection) Config() (CollectionConfig, error) {
	var out CollectionConfig
	err := c.call("Config", func(cname *C.char) error {
		var cfg C.akidb_collection_config
		var msg *C.char
		if err := check("Config", C.akgo_collection_info(c.db.h, cname, &cfg, &msg), msg); err != nil {
			return err
		}
		out = CollectionConfig{Dim: int(cfg.dim), Metric: Metric(cfg.metric), M: int(cfg.hnsw_m),
			EfConstruction: int(cfg.ef_construction), EfSearch: int(cfg.ef_search),
			Storage: Storage(cfg.storage), NoExactVectors: cfg.exact == C.AKIDB_EXACT_NONE,
			ExactInFile: cfg.exact == C.AKIDB_EXACT_FILE,
			Rerank:      int(cfg.rerank)}
		return nil
	})
	return out, err
}

// Stats returns counts and memory use.
func (c *Collection) Stats() (CollectionStats, error) {
	var out CollectionStats
	err := c.call("Stats", func(cname *C.char) error {
		var st C.akidb_collection_stats
		var msg *C.char
		if err := check("Stats", C.akgo_collection_stat(c.db.h, cname, &st, &msg), msg); err != nil {
			return err
		}
		out = CollectionStats{Dim: int(st.dim), Metric: Metric(st.metric), Tier: Tier(st.tier),
			Pinned: st.pinned != 0, Count: uint64(st.count), Deleted: uint64(st.deleted),
			Bytes: uint64(st.bytes), VectorBytes: uint64(st.vector_bytes),
			CompactBytes: uint64(st.compact_bytes),
			GraphBytes:   uint64(st.graph_bytes), DocumentBytes: uint64(st.document_bytes),
			LogBytes: uint64(st.log_bytes), IndexLag: uint64(st.index_lag),
			CreatedAt: usTime(st.created_at_us)}
		return nil
	})
	return out, err
}

// Count returns the number of live documents.
func (c *Collection) Count() (uint64, error) {
	var n C.uint64_t
	err := c.call("Count", func(cname *C.char) error {
		var msg *C.char
		return check("Count", C.akgo_collection_count(c.db.h, cname, &n, &msg), msg)
	})
	return uint64(n), err
}

// Insert adds docs (Vector required; ExternalID and Metadata optional) as
// one atomic batch and returns their new ids.
func (c *Collection) Insert(docs []Document) ([]uint64, error) {
	return c.write("Insert", docs, 0)
}

// Upsert inserts or replaces docs keyed by ExternalID (required); a
// replaced document keeps its id.  Atomic like Insert.
func (c *Collection) Upsert(docs []Document) ([]uint64, error) {
	return c.write("Upsert", docs, 1)
}

func (c *Collection) write(op string, docs []Document, upsert C.int) ([]uint64, error) {
	var ids []uint64
	err := c.call(op, func(cname *C.char) error {
		dim, err := c.db.dim(op, c.name, cname)
		if err != nil {
			return err
		}
		n := len(docs)
		if n == 0 {
			ids = []uint64{}
			var msg *C.char
			return check(op, C.akgo_insert(c.db.h, cname, 0, nil, nil, nil, nil, upsert, &msg), msg)
		}
		// One contiguous row-major buffer, as the library reads it.
		vecs := make([]float32, 0, n*dim)
		var ext, meta []*C.char
		var strs []*C.char
		defer func() {
			for _, p := range strs {
				C.free(unsafe.Pointer(p))
			}
		}()
		for i, d := range docs {
			if len(d.Vector) != dim {
				return newError(op, ErrInvalid, "document %d has %d values, the collection has dim %d",
					i, len(d.Vector), dim)
			}
			if err := noNUL(op, "ExternalID", d.ExternalID); err != nil {
				return err
			}
			if d.Metadata != nil && !json.Valid(d.Metadata) {
				// The library checks too (newer versions); checking here
				// keeps the contract with any library version.
				return newError(op, ErrInvalid, "document %d: Metadata is not valid JSON", i)
			}
			vecs = append(vecs, d.Vector...)
			if d.ExternalID != "" {
				if ext == nil {
					ext = make([]*C.char, n)
				}
				ext[i] = C.CString(d.ExternalID)
				strs = append(strs, ext[i])
			} else if upsert != 0 {
				return newError(op, ErrInvalid, "document %d has no ExternalID (Upsert needs one)", i)
			}
			if d.Metadata != nil {
				if meta == nil {
					meta = make([]*C.char, n)
				}
				meta[i] = C.CString(string(d.Metadata))
				strs = append(strs, meta[i])
			}
		}
		var pext, pmeta **C.char
		if ext != nil {
			pext = &ext[0]
		}
		if meta != nil {
			pmeta = &meta[0]
		}
		out := make([]C.uint64_t, n)
		var msg *C.char
		rc := C.akgo_insert(c.db.h, cname, C.size_t(n), (*C.float)(unsafe.Pointer(&vecs[0])),
			pext, pmeta, &out[0], upsert, &msg)
		if err := check(op, rc, msg); err != nil {
			return err
		}
		ids = make([]uint64, n)
		for i := range out {
			ids[i] = uint64(out[i])
		}
		return nil
	})
	return ids, err
}

// Delete deletes document id.
func (c *Collection) Delete(id uint64) error {
	return c.call("Delete", func(cname *C.char) error {
		var msg *C.char
		return check("Delete", C.akgo_delete(c.db.h, cname, C.uint64_t(id), &msg), msg)
	})
}

// Lookup returns the id of the live document with externalID.
func (c *Collection) Lookup(externalID string) (uint64, error) {
	if err := noNUL("Lookup", "externalID", externalID); err != nil {
		return 0, err
	}
	var id C.uint64_t
	err := c.call("Lookup", func(cname *C.char) error {
		cext := C.CString(externalID)
		defer C.free(unsafe.Pointer(cext))
		var msg *C.char
		return check("Lookup", C.akgo_lookup(c.db.h, cname, cext, &id, &msg), msg)
	})
	return uint64(id), err
}

// getDoc reads document id; vec is nil or room for dim floats.
func (c *Collection) getDoc(op string, cname *C.char, id C.uint64_t, vec []float32) (Document, error) {
	var doc C.akidb_document
	var msg *C.char
	var pvec *C.float
	if vec != nil {
		pvec = (*C.float)(unsafe.Pointer(&vec[0]))
	}
	rc := C.akgo_document_get(c.db.h, cname, id, pvec, &doc, &msg)
	defer C.akidb_document_clear(&doc)
	if err := check(op, rc, msg); err != nil {
		return Document{}, err
	}
	out := Document{ID: uint64(doc.id), Vector: vec, InsertedAt: usTime(doc.inserted_at_us)}
	if doc.external_id != nil {
		out.ExternalID = C.GoString(doc.external_id)
	}
	if doc.metadata_json != nil {
		out.Metadata = json.RawMessage(C.GoString(doc.metadata_json))
	}
	return out, nil
}

// Get returns document id with its vector (normalised for Cosine).
func (c *Collection) Get(id uint64) (Document, error) {
	var out Document
	err := c.call("Get", func(cname *C.char) error {
		dim, err := c.db.dim("Get", c.name, cname)
		if err != nil {
			return err
		}
		out, err = c.getDoc("Get", cname, C.uint64_t(id), make([]float32, dim))
		return err
	})
	return out, err
}

// MaxK is the most hits one search may ask for.
const MaxK = 1000000

// Search returns the k documents nearest to query, closest first (fewer
// when the collection holds fewer live documents).
func (c *Collection) Search(query []float32, k int, opts *SearchOptions) ([]Hit, error) {
	if opts == nil {
		opts = &SearchOptions{}
	}
	if k < 1 || k > MaxK {
		return nil, newError("Search", ErrInvalid, "k %d is out of range 1..%d", k, MaxK)
	}
	if opts.Ef < 0 || opts.Ef > 1<<30 {
		return nil, newError("Search", ErrInvalid, "Ef %d is out of range", opts.Ef)
	}
	var out []Hit
	err := c.call("Search", func(cname *C.char) error {
		dim, err := c.db.dim("Search", c.name, cname)
		if err != nil {
			return err
		}
		if len(query) != dim {
			return newError("Search", ErrInvalid, "query has %d values, the collection has dim %d",
				len(query), dim)
		}
		hits := make([]C.akidb_hit, k)
		var n C.uint32_t
		var msg *C.char
		exact := C.int(0)
		if opts.Exact {
			exact = 1
		}
		rc := C.akgo_search(c.db.h, cname, (*C.float)(unsafe.Pointer(&query[0])), C.uint32_t(k),
			C.uint32_t(opts.Ef), exact, &hits[0], &n, &msg)
		if err := check("Search", rc, msg); err != nil {
			return err
		}
		out = make([]Hit, 0, int(n))
		for _, h := range hits[:n] {
			hit := Hit{ID: uint64(h.id), Distance: float32(h.distance)}
			if opts.Documents {
				doc, err := c.getDoc("Search", cname, h.id, nil)
				if errorsIsNotFound(err) {
					continue // deleted since the search: no longer a result
				}
				if err != nil {
					return err
				}
				hit.ExternalID, hit.Metadata = doc.ExternalID, doc.Metadata
			}
			out = append(out, hit)
		}
		return nil
	})
	return out, err
}

func errorsIsNotFound(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Code == ErrNotFound
}

// Snapshot writes a snapshot of the collection to the object store and
// returns its id.
func (c *Collection) Snapshot() (string, error) {
	var id string
	err := c.call("Snapshot", func(cname *C.char) error {
		buf := (*C.char)(C.malloc(C.AKIDB_SNAPSHOT_ID_LEN))
		defer C.free(unsafe.Pointer(buf))
		var msg *C.char
		if err := check("Snapshot", C.akgo_snapshot_create(c.db.h, cname, buf,
			C.AKIDB_SNAPSHOT_ID_LEN, &msg), msg); err != nil {
			return err
		}
		id = C.GoString(buf)
		return nil
	})
	return id, err
}

// Snapshots lists the collection's snapshots, newest first.
func (c *Collection) Snapshots() ([]Snapshot, error) {
	var out []Snapshot
	err := c.call("Snapshots", func(cname *C.char) error {
		var arr **C.akidb_snapshot_info
		var n C.size_t
		var msg *C.char
		if err := check("Snapshots", C.akgo_snapshot_list(c.db.h, cname, &arr, &n, &msg), msg); err != nil {
			return err
		}
		out = []Snapshot{}
		if arr == nil {
			return nil
		}
		defer C.akidb_free(unsafe.Pointer(arr))
		for i := 0; i < int(n); i++ {
			e := (*C.akidb_snapshot_info)(C.akgo_index(unsafe.Pointer(arr), C.size_t(i)))
			out = append(out, Snapshot{ID: C.GoString(e.id), Key: C.GoString(e.key),
				Rows: uint64(e.rows), Bytes: uint64(e.bytes), SHA256: C.GoString(e.sha256),
				CreatedAt: usTime(e.created_at_us)})
		}
		return nil
	})
	return out, err
}

// Restore replaces the collection with snapshot id ("" = the newest that
// verifies).  A damaged snapshot gives ErrCorrupt and changes nothing.
func (c *Collection) Restore(id string) error {
	if err := noNUL("Restore", "id", id); err != nil {
		return err
	}
	return c.call("Restore", func(cname *C.char) error {
		var cid *C.char
		if id != "" {
			cid = C.CString(id)
			defer C.free(unsafe.Pointer(cid))
		}
		var msg *C.char
		return check("Restore", C.akgo_snapshot_restore(c.db.h, cname, cid, &msg), msg)
	})
}

// DeleteSnapshot deletes snapshot id (object and catalog entry).
func (c *Collection) DeleteSnapshot(id string) error {
	if err := noNUL("DeleteSnapshot", "id", id); err != nil {
		return err
	}
	return c.call("DeleteSnapshot", func(cname *C.char) error {
		cid := C.CString(id)
		defer C.free(unsafe.Pointer(cid))
		var msg *C.char
		return check("DeleteSnapshot", C.akgo_snapshot_delete(c.db.h, cname, cid, &msg), msg)
	})
}

// ExportParquet writes the collection to the local Parquet file path.
func (c *Collection) ExportParquet(path string) error {
	if err := noNUL("ExportParquet", "path", path); err != nil {
		return err
	}
	return c.call("ExportParquet", func(cname *C.char) error {
		cpath := C.CString(path)
		defer C.free(unsafe.Pointer(cpath))
		var msg *C.char
		return check("ExportParquet", C.akgo_export_parquet(c.db.h, cname, cpath, &msg), msg)
	})
}
