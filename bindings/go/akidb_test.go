package akidb

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTemp(t *testing.T, opts *Options) (*DB, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir
}

func mustCollection(t *testing.T, db *DB, name string, cfg CollectionConfig) *Collection {
	t.Helper()
	c, err := db.CreateCollection(name, cfg)
	if err != nil {
		t.Fatalf("CreateCollection(%s): %v", name, err)
	}
	return c
}

func wantCode(t *testing.T, err error, code Code) *Error {
	t.Helper()
	if !errors.Is(err, code) {
		t.Fatalf("got %v, want %s", err, code.Error())
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not an *akidb.Error", err)
	}
	return e
}

func TestEveryLibraryCodeIsKnown(t *testing.T) {
	lib := libraryCodes()
	if len(lib) < 13 {
		t.Fatalf("library reports %d codes", len(lib))
	}
	known := map[Code]bool{}
	for _, c := range knownCodes {
		known[c] = true
	}
	for _, c := range lib {
		if !known[c] {
			t.Errorf("library code %d (%s) has no Err* constant in errors.go", int(c), c.Error())
		}
	}
	if ErrNotFound.Error() != "AKIDB_NOTFOUND" || ErrNotFound.Text() != "not found" {
		t.Errorf("ErrNotFound: %q / %q", ErrNotFound.Error(), ErrNotFound.Text())
	}
}

func TestCollectionsLifecycle(t *testing.T) {
	db, _ := openTemp(t, nil)
	names, err := db.Collections()
	if err != nil || len(names) != 0 {
		t.Fatalf("Collections on a new DB: %v %v", names, err)
	}
	mustCollection(t, db, "b", CollectionConfig{Dim: 3, Metric: L2})
	mustCollection(t, db, "a", CollectionConfig{Dim: 5, Metric: Dot, M: 8, EfConstruction: 50, EfSearch: 20})
	names, _ = db.Collections()
	if strings.Join(names, ",") != "a,b" {
		t.Fatalf("Collections = %v", names)
	}
	a, err := db.Collection("a")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := a.Config()
	if err != nil || cfg != (CollectionConfig{Dim: 5, Metric: Dot, M: 8, EfConstruction: 50, EfSearch: 20,
		Storage: F32}) {
		t.Fatalf("Config = %+v, %v", cfg, err)
	}
	_, err = db.CreateCollection("a", CollectionConfig{Dim: 5})
	wantCode(t, err, ErrExists)
	e := wantCode(t, func() error { _, err := db.CreateCollection("bad name!", CollectionConfig{Dim: 2}); return err }(), ErrInvalid)
	if !strings.Contains(e.Message, "bad name!") || e.Op != "CreateCollection" {
		t.Errorf("error %+v does not name the collection", e)
	}
	_, err = db.CreateCollection("big", CollectionConfig{Dim: 5000})
	wantCode(t, err, ErrInvalid)
	_, err = db.CreateCollection("nul\x00name", CollectionConfig{Dim: 2})
	wantCode(t, err, ErrInvalid)
	if err := db.DropCollection("a"); err != nil {
		t.Fatal(err)
	}
	_, err = db.Collection("a")
	wantCode(t, err, ErrNotFound)
	wantCode(t, db.DropCollection("a"), ErrNotFound)
}

func TestInsertSearchGet(t *testing.T) {
	db, _ := openTemp(t, nil)
	c := mustCollection(t, db, "docs", CollectionConfig{Dim: 4, Metric: L2})
	ids, err := c.Insert([]Document{
		{Vector: []float32{1, 0, 0, 0}, ExternalID: "a", Metadata: json.RawMessage(`{"title":"alpha"}`)},
		{Vector: []float32{0, 1, 0, 0}},
		{Vector: []float32{0.9, 0.1, 0, 0}, ExternalID: "c"},
	})
	if err != nil || len(ids) != 3 || ids[0] != 1 || ids[2] != 3 {
		t.Fatalf("Insert = %v, %v", ids, err)
	}
	n, err := c.Count()
	if err != nil || n != 3 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	hits, err := c.Search([]float32{1, 0.05, 0, 0}, 2, &SearchOptions{Documents: true})
	if err != nil || len(hits) != 2 {
		t.Fatalf("Search = %v, %v", hits, err)
	}
	if hits[0].ID != 1 || hits[0].ExternalID != "a" || string(hits[0].Metadata) != `{"title":"alpha"}` ||
		hits[1].ID != 3 || math.Abs(float64(hits[0].Distance)-0.0025) > 1e-6 {
		t.Fatalf("hits = %+v", hits)
	}
	bare, _ := c.Search([]float32{0, 1, 0, 0}, 10, &SearchOptions{Exact: true})
	if len(bare) != 3 || bare[0].ID != 2 || bare[0].ExternalID != "" {
		t.Fatalf("exact = %+v", bare)
	}
	doc, err := c.Get(3)
	if err != nil || doc.ExternalID != "c" || doc.Metadata != nil || len(doc.Vector) != 4 ||
		doc.Vector[0] != 0.9 || time.Since(doc.InsertedAt) > 10*time.Minute {
		t.Fatalf("Get = %+v, %v", doc, err)
	}
	id, err := c.Lookup("c")
	if err != nil || id != 3 {
		t.Fatalf("Lookup = %d, %v", id, err)
	}
	_, err = c.Lookup("zz")
	wantCode(t, err, ErrNotFound)
	_, err = c.Get(99)
	wantCode(t, err, ErrNotFound)
	if err := c.Delete(1); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Delete(1), ErrNotFound)
	hits, _ = c.Search([]float32{1, 0, 0, 0}, 3, nil)
	for _, h := range hits {
		if h.ID == 1 {
			t.Fatal("deleted document returned")
		}
	}
	if err := db.IndexWait("docs", Never); err != nil {
		t.Fatalf("IndexWait = %v", err)
	}
	if st, err := c.Stats(); err != nil || st.IndexLag != 0 {
		t.Fatalf("after IndexWait: Stats = %+v, %v", st, err)
	}
	wantCode(t, db.IndexWait("nope", time.Second), ErrNotFound)
	wantCode(t, db.IndexWait("docs", -time.Second), ErrInvalid)
}

// Storage kinds: F16 and Int8 walk a compact copy and, with exact vectors
// in RAM or in the checkpoint file, answer with exact distances;
// ExactInFile (after a checkpoint) and NoExactVectors hold less.
func TestStorageKinds(t *testing.T) {
	db, _ := openTemp(t, nil)
	docs := make([]Document, 5000) // past the 4096 vectors int8 trains on
	seed := uint64(11)
	for i := range docs {
		v := make([]float32, 32)
		for j := range v {
			seed = seed*6364136223846793005 + 1442695040888963407
			v[j] = float32(seed>>40)/float32(1<<24) - 0.5
		}
		docs[i] = Document{Vector: v}
	}
	stats := map[string]CollectionStats{}
	for _, k := range []struct {
		name    string
		storage Storage
		none    bool
		file    bool
	}{{"f32", F32, false, false}, {"f16", F16, false, false}, {"i8", Int8, false, false},
		{"i8file", Int8, false, true}, {"i8none", Int8, true, false}} {
		c := mustCollection(t, db, k.name, CollectionConfig{Dim: 32, Metric: L2, Storage: k.storage,
			NoExactVectors: k.none, ExactInFile: k.file, Rerank: 3})
		ids, err := c.Insert(docs)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.IndexWait(k.name, Never); err != nil {
			t.Fatal(err)
		}
		if err := db.Checkpoint(k.name); err != nil {
			t.Fatal(err)
		}
		cfg, err := c.Config()
		if err != nil || cfg.Storage != k.storage || cfg.NoExactVectors != k.none ||
			cfg.ExactInFile != k.file {
			t.Fatalf("%s: Config = %+v, %v", k.name, cfg, err)
		}
		hits, err := c.Search(docs[17].Vector, 3, nil)
		if err != nil || len(hits) == 0 || hits[0].ID != ids[17] {
			t.Fatalf("%s: Search = %+v, %v", k.name, hits, err)
		}
		if !k.none && hits[0].Distance != 0 {
			t.Fatalf("%s: distance %v to itself, want exactly 0", k.name, hits[0].Distance)
		}
		st, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Bytes != st.VectorBytes+st.CompactBytes+st.GraphBytes+st.DocumentBytes {
			t.Fatalf("%s: Bytes %d is not the sum of its parts %+v", k.name, st.Bytes, st)
		}
		stats[k.name] = st
	}
	if stats["f32"].CompactBytes != 0 || stats["i8"].CompactBytes < 5000*32 ||
		stats["i8none"].VectorBytes >= stats["i8"].VectorBytes ||
		stats["i8file"].VectorBytes*4 >= stats["i8"].VectorBytes {
		t.Fatalf("bytes by kind: %+v", stats)
	}
	_, err := db.CreateCollection("bad", CollectionConfig{Dim: 4, Storage: 9})
	wantCode(t, err, ErrInvalid)
	_, err = db.CreateCollection("bad", CollectionConfig{Dim: 4, Storage: Int8, Rerank: 65})
	wantCode(t, err, ErrInvalid)
	_, err = db.CreateCollection("bad", CollectionConfig{Dim: 4, Storage: Int8, ExactInFile: true,
		NoExactVectors: true})
	wantCode(t, err, ErrInvalid)
}

// MaxIndexLag: with a small bound every insert returns with the tail
// within it (writers link the rest themselves); with NoLagBound a large
// insert returns before the indexer could have linked it.
func TestMaxIndexLag(t *testing.T) {
	vecs := func(n int, seed uint64) []Document {
		docs := make([]Document, n)
		for i := range docs {
			v := make([]float32, 32)
			for j := range v {
				seed = seed*6364136223846793005 + 1442695040888963407
				v[j] = float32(seed>>40)/float32(1<<24) - 0.5
			}
			docs[i] = Document{Vector: v}
		}
		return docs
	}
	cfg := CollectionConfig{Dim: 32, Metric: L2, EfConstruction: 200}
	db, _ := openTemp(t, &Options{MaxIndexLag: 1024})
	c := mustCollection(t, db, "bounded", cfg)
	batches := make([][]Document, 6) // made first: the inserts run back to back
	for b := range batches {
		batches[b] = vecs(1000, uint64(b+1))
	}
	for b := range batches {
		if _, err := c.Insert(batches[b]); err != nil {
			t.Fatal(err)
		}
		st, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.IndexLag > 1024 {
			t.Fatalf("batch %d: index lag %d past the bound 1024", b, st.IndexLag)
		}
	}
	db2, _ := openTemp(t, &Options{MaxIndexLag: NoLagBound})
	c2 := mustCollection(t, db2, "bulk", cfg)
	if _, err := c2.Insert(vecs(6000, 99)); err != nil {
		t.Fatal(err)
	}
	st, err := c2.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.IndexLag <= 1024 {
		t.Fatalf("no bound: index lag %d right after inserting 6000 (writers linked?)", st.IndexLag)
	}
	if err := db2.IndexWait("bulk", Never); err != nil {
		t.Fatal(err)
	}
}

func TestBadInputs(t *testing.T) {
	db, _ := openTemp(t, nil)
	c := mustCollection(t, db, "b", CollectionConfig{Dim: 3, Metric: L2})
	if _, err := c.Insert([]Document{{Vector: []float32{1, 2, 3}, ExternalID: "taken"}}); err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	cases := []struct {
		docs []Document
		code Code
	}{
		{[]Document{{Vector: []float32{1, 2}}}, ErrInvalid},
		{[]Document{{Vector: []float32{1, nan, 3}}}, ErrInvalid},
		{[]Document{{Vector: []float32{1, 2, 3}, ExternalID: "taken"}}, ErrExists},
		{[]Document{{Vector: []float32{1, 2, 3}, ExternalID: "d"}, {Vector: []float32{1, 2, 3}, ExternalID: "d"}}, ErrInvalid},
		{[]Document{{Vector: []float32{1, 2, 3}, ExternalID: "x\x00y"}}, ErrInvalid},
		{[]Document{{Vector: []float32{1, 2, 3}, ExternalID: strings.Repeat("x", 1025)}}, ErrInvalid},
		{[]Document{{Vector: []float32{1, 2, 3}, Metadata: json.RawMessage(`{not json`)}}, ErrInvalid},
		{[]Document{{Vector: []float32{1, 1, 1}, ExternalID: "ok"}, {Vector: []float32{1, nan, 1}}}, ErrInvalid},
	}
	for i, tc := range cases {
		if _, err := c.Insert(tc.docs); !errors.Is(err, tc.code) {
			t.Errorf("case %d: got %v, want %s", i, err, tc.code.Error())
		}
	}
	if n, _ := c.Count(); n != 1 {
		t.Fatalf("a failed batch left documents behind: count %d", n)
	}
	_, err := c.Search([]float32{1, 2}, 1, nil)
	wantCode(t, err, ErrInvalid)
	for _, k := range []int{0, -1, MaxK + 1} {
		_, err = c.Search([]float32{1, 2, 3}, k, nil)
		wantCode(t, err, ErrInvalid)
	}
	_, err = c.Upsert([]Document{{Vector: []float32{1, 2, 3}}})
	wantCode(t, err, ErrInvalid)
	ids, err := c.Insert(nil)
	if err != nil || len(ids) != 0 {
		t.Fatalf("empty insert: %v %v", ids, err)
	}
}

func TestUpsertCosine(t *testing.T) {
	db, _ := openTemp(t, nil)
	c := mustCollection(t, db, "u", CollectionConfig{Dim: 2}) // Cosine by default
	ids, err := c.Upsert([]Document{{Vector: []float32{3, 4}, ExternalID: "a", Metadata: json.RawMessage(`1`)}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Upsert([]Document{{Vector: []float32{0, 5}, ExternalID: "a", Metadata: json.RawMessage(`2`)}})
	if err != nil || again[0] != ids[0] {
		t.Fatalf("Upsert kept id? %v %v %v", ids, again, err)
	}
	doc, _ := c.Get(ids[0])
	if string(doc.Metadata) != "2" || doc.Vector[0] != 0 || doc.Vector[1] != 1 {
		t.Fatalf("after upsert: %+v", doc)
	}
	_, err = c.Insert([]Document{{Vector: []float32{0, 0}}})
	wantCode(t, err, ErrInvalid)
	st, err := c.Stats()
	if err != nil || st.Count != 1 || st.Dim != 2 || st.Metric != Cosine || st.Tier != Hot ||
		st.Bytes != st.VectorBytes+st.GraphBytes+st.DocumentBytes {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
}

func TestReopenReadOnlyBusyClosed(t *testing.T) {
	db, dir := openTemp(t, &Options{SyncMode: SyncInterval})
	c := mustCollection(t, db, "r", CollectionConfig{Dim: 2, Metric: L2})
	if _, err := c.Insert([]Document{{Vector: []float32{1, 2}, ExternalID: "é"}}); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, nil)
	wantCode(t, err, ErrBusy)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = c.Count()
	wantCode(t, err, ErrMisuse)

	ro, err := Open(dir, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rc, err := ro.Collection("r")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := rc.Lookup("é"); err != nil || id != 1 {
		t.Fatalf("after reopen: %d %v", id, err)
	}
	_, err = rc.Insert([]Document{{Vector: []float32{3, 4}}})
	wantCode(t, err, ErrReadOnly)
	_, err = Open(filepath.Join(t.TempDir(), "no", "parent"), nil)
	wantCode(t, err, ErrIO)
	_, err = Open(dir+"2", &Options{FileMode: os.ModeSetuid | 0644})
	wantCode(t, err, ErrInvalid)
}

func TestSnapshotsParquetRecordsMetrics(t *testing.T) {
	db, dir := openTemp(t, nil)
	c := mustCollection(t, db, "s", CollectionConfig{Dim: 3, Metric: L2})
	if _, err := c.Insert([]Document{{Vector: []float32{1, 2, 3}, ExternalID: "a"},
		{Vector: []float32{4, 5, 6}, ExternalID: "b", Metadata: json.RawMessage(`{"m":2}`)}}); err != nil {
		t.Fatal(err)
	}
	id, err := c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := c.Snapshots()
	if err != nil || len(snaps) != 1 || snaps[0].ID != id || snaps[0].Rows != 2 || len(snaps[0].SHA256) != 64 {
		t.Fatalf("Snapshots = %+v, %v", snaps, err)
	}
	c.Insert([]Document{{Vector: []float32{7, 8, 9}}})
	if err := c.Restore(id); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Count(); n != 2 {
		t.Fatalf("after restore: %d documents", n)
	}
	path := filepath.Join(filepath.Dir(dir), "out.parquet")
	if err := c.ExportParquet(path); err != nil {
		t.Fatal(err)
	}
	rows, err := db.ImportParquet("copy", path, nil)
	if err != nil || rows != 2 {
		t.Fatalf("ImportParquet = %d, %v", rows, err)
	}
	cp, _ := db.Collection("copy")
	hits, err := cp.Search([]float32{4, 5, 6}, 1, &SearchOptions{Documents: true})
	if err != nil || hits[0].ExternalID != "b" || string(hits[0].Metadata) != `{"m":2}` {
		t.Fatalf("imported search = %+v, %v", hits, err)
	}
	// a cosine collection's export comes back cosine, not L2
	cos := mustCollection(t, db, "cos", CollectionConfig{Dim: 3, Metric: Cosine})
	if _, err := cos.Insert([]Document{{Vector: []float32{1, 2, 3}}}); err != nil {
		t.Fatal(err)
	}
	cpath := filepath.Join(filepath.Dir(dir), "cos.parquet")
	if err := cos.ExportParquet(cpath); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ImportParquet("cos_copy", cpath, nil); err != nil {
		t.Fatal(err)
	}
	cc, _ := db.Collection("cos_copy")
	if cfg, err := cc.Config(); err != nil || cfg.Metric != Cosine {
		t.Fatalf("imported cosine export: %+v, %v", cfg, err)
	}
	// the storage kind of a collection the import creates
	if _, err := db.ImportParquet("i8_copy", cpath, &ImportOptions{Storage: Int8, ExactInFile: true,
		Rerank: 3}); err != nil {
		t.Fatal(err)
	}
	ic, _ := db.Collection("i8_copy")
	if cfg, err := ic.Config(); err != nil || cfg.Storage != Int8 || !cfg.ExactInFile || cfg.Rerank != 3 {
		t.Fatalf("imported with storage: %+v, %v", cfg, err)
	}
	_, err = db.ImportParquet("i8_copy", cpath, &ImportOptions{Storage: F16})
	wantCode(t, err, ErrInvalid)
	if err := c.DeleteSnapshot(id); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Restore(id), ErrNotFound)

	if err := db.PutRecord("app", "k", []byte("v\x00w")); err != nil {
		t.Fatal(err)
	}
	v, err := db.GetRecord("app", "k")
	if err != nil || string(v) != "v\x00w" {
		t.Fatalf("GetRecord = %q, %v", v, err)
	}
	keys, _ := db.RecordKeys("app")
	if len(keys) != 1 || keys[0] != "k" {
		t.Fatalf("RecordKeys = %v", keys)
	}
	wantCode(t, db.DeleteRecord("app", "zz"), ErrNotFound)
	wantCode(t, db.PutRecord("bad ns!", "k", nil), ErrInvalid)

	c.Search([]float32{1, 2, 3}, 1, nil)
	n, err := db.MetricValue("akidb_searches_total")
	if err != nil || n < 1 {
		t.Fatalf("MetricValue = %d, %v", n, err)
	}
	text, err := db.Metrics()
	if err != nil || !strings.Contains(text, "# TYPE akidb_searches_total counter") {
		t.Fatalf("Metrics: %v", err)
	}
	_, err = db.MetricValue("nope")
	wantCode(t, err, ErrNotFound)
}

func TestMockStoreFaults(t *testing.T) {
	store, err := NewMockStore()
	if err != nil {
		t.Fatal(err)
	}
	db, _ := openTemp(t, &Options{Store: store})
	c := mustCollection(t, db, "m", CollectionConfig{Dim: 2})
	c.Insert([]Document{{Vector: []float32{1, 0}}})
	if err := store.Inject(MockOpPut, "", Mock403, 10, 0); err != nil {
		t.Fatal(err)
	}
	_, err = c.Snapshot()
	if e := wantCode(t, err, ErrInvalid); !strings.Contains(e.Message, "403") {
		t.Fatalf("message %q does not name the 403", e.Message)
	}
	store.ClearFaults()
	if _, err := c.Snapshot(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, store.Close(), ErrMisuse)
	db.Close()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
}

// Goroutines share one DB: searches, inserts and failing calls at once.
// Each failing call must report its own message, although goroutines
// migrate between OS threads and the library's message is per thread.
func TestConcurrentUseAndErrorMessages(t *testing.T) {
	db, _ := openTemp(t, &Options{SyncMode: SyncNone})
	const dim = 16
	c := mustCollection(t, db, "conc", CollectionConfig{Dim: dim, Metric: L2})
	rng := rand.New(rand.NewSource(1))
	base := make([]Document, 300)
	for i := range base {
		v := make([]float32, dim)
		for j := range v {
			v[j] = rng.Float32()
		}
		base[i] = Document{Vector: v, ExternalID: "b" + string(rune('A'+i%26)) + strings.Repeat("x", i/26)}
	}
	if _, err := c.Insert(base); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 1000)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(g)))
			for i := 0; i < 200; i++ {
				k := r.Intn(len(base))
				hits, err := c.Search(base[k].Vector, 1, &SearchOptions{Exact: true, Documents: true})
				if err != nil || hits[0].ExternalID != base[k].ExternalID {
					errs <- "search: wrong result"
				}
			}
		}(g)
	}
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			name := "missing-" + string(rune('a'+g))
			for i := 0; i < 300; i++ {
				_, err := db.Collection(name)
				var e *Error
				if !errors.As(err, &e) || !strings.Contains(e.Message, name) {
					errs <- "wrong message: " + err.Error()
				}
			}
		}(g)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 300; i++ {
			_, err := c.Insert([]Document{{Vector: append([]float32{float32(math.Inf(1))}, make([]float32, dim-1)...)}})
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(e.Message, "inf") {
				errs <- "wrong message for inf: " + err.Error()
			}
			if _, err := c.Insert([]Document{{Vector: make([]float32, dim)}}); err != nil {
				errs <- "insert: " + err.Error()
			}
		}
	}()
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n, _ := c.Count(); n != 300+300 {
		t.Fatalf("count %d", n)
	}
}

// Close waits for a call in progress instead of freeing the handle under it.
func TestCloseWaitsForCalls(t *testing.T) {
	db, _ := openTemp(t, nil)
	c := mustCollection(t, db, "cl", CollectionConfig{Dim: 32, Metric: L2, EfConstruction: 300})
	docs := make([]Document, 2000)
	rng := rand.New(rand.NewSource(3))
	for i := range docs {
		v := make([]float32, 32)
		for j := range v {
			v[j] = rng.Float32()
		}
		docs[i].Vector = v
	}
	done := make(chan error)
	go func() {
		_, err := c.Insert(docs)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("insert racing Close: %v", err)
	}
	_, err := c.Count()
	wantCode(t, err, ErrMisuse)
}

// ---------------------------------------------------------------- tiering

func tierVectors(n int, seed int64) []Document {
	r := rand.New(rand.NewSource(seed))
	docs := make([]Document, n)
	for i := range docs {
		v := make([]float32, 8)
		for d := range v {
			v[d] = r.Float32() - 0.5
		}
		docs[i] = Document{Vector: v, ExternalID: fmt.Sprintf("d%d", i),
			Metadata: []byte(fmt.Sprintf(`{"i": %d}`, i))}
	}
	return docs
}

func tierOf(t *testing.T, c *Collection) Tier {
	t.Helper()
	tier, err := c.Tier()
	if err != nil {
		t.Fatalf("Tier(%s): %v", c.Name(), err)
	}
	return tier
}

// The worker thread is off (TierInterval: Never): the tests run its cycles.
func TestTierColdAndBackOnSearch(t *testing.T) {
	db, dir := openTemp(t, &Options{TierInterval: Never})
	c := mustCollection(t, db, "c", CollectionConfig{Dim: 8, Metric: L2})
	docs := tierVectors(200, 1)
	if _, err := c.Insert(docs); err != nil {
		t.Fatal(err)
	}
	q := docs[17].Vector
	opts := &SearchOptions{Documents: true}
	before, err := c.Search(q, 5, opts)
	if err != nil || len(before) != 5 || before[0].ExternalID != "d17" {
		t.Fatalf("search: %v %v", before, err)
	}
	if got := tierOf(t, c); got != Hot || got.String() != "hot" {
		t.Fatalf("new collection is %v", got)
	}
	if err := c.SetTier(Cold); err != nil {
		t.Fatal(err)
	}
	if got := tierOf(t, c); got != Cold {
		t.Fatalf("after SetTier(Cold): %v", got)
	}
	ti, err := c.TierInfo()
	if err != nil || ti.Tier != Cold || ti.LocalBytes != 0 || ti.ColdBytes == 0 || ti.HotBytes == 0 ||
		ti.Pinned || ti.Busy || ti.LastError != 0 || ti.LastErrorMessage != "" || ti.LastAccess.IsZero() {
		t.Fatalf("TierInfo: %+v %v", ti, err)
	}
	st, err := db.TierStats()
	if err != nil || st.Collections[Cold] != 1 || st.Collections[Hot] != 0 || st.Bytes[Cold] == 0 ||
		st.TransitionsOK[TierTransition{Hot, Warm}] != 1 ||
		st.TransitionsOK[TierTransition{Warm, Cold}] != 1 || len(st.TransitionsFailed) != 0 {
		t.Fatalf("TierStats: %+v %v", st, err)
	}
	loads := st.Loads
	// Count answers from the catalog; the search loads it, same answers.
	if n, err := c.Count(); err != nil || n != 200 || tierOf(t, c) != Cold {
		t.Fatalf("Count on a cold collection: %d %v", n, err)
	}
	after, err := c.Search(q, 5, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d hits after the load, %d before", len(after), len(before))
	}
	for i := range before {
		if after[i].ID != before[i].ID || after[i].Distance != before[i].Distance ||
			string(after[i].Metadata) != string(before[i].Metadata) {
			t.Fatalf("hit %d: %+v after the load, %+v before", i, after[i], before[i])
		}
	}
	if got := tierOf(t, c); got != Hot {
		t.Fatalf("after the search: %v", got)
	}
	if st, _ := db.TierStats(); st.Loads != loads+1 || st.Collections[Hot] != 1 {
		t.Fatalf("TierStats after the load: %+v", st)
	}
	// Cold survives a reopen.
	if err := c.SetTier(Cold); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db2, err := Open(dir, &Options{TierInterval: Never})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	c2, err := db2.Collection("c")
	if err != nil {
		t.Fatal(err)
	}
	if tierOf(t, c2) != Cold {
		t.Fatal("not cold after reopen")
	}
	if hits, err := c2.Search(q, 1, nil); err != nil || hits[0].ID != before[0].ID || tierOf(t, c2) != Hot {
		t.Fatalf("search after reopen: %v %v", hits, err)
	}
}

func TestTierBadValues(t *testing.T) {
	db, _ := openTemp(t, &Options{TierInterval: Never})
	c := mustCollection(t, db, "b", CollectionConfig{Dim: 8})
	for _, bad := range []Tier{0, 4, -1, 1 << 40} {
		wantCode(t, c.SetTier(bad), ErrInvalid)
	}
	if tierOf(t, c) != Hot {
		t.Fatal("a refused SetTier moved the collection")
	}
	ghost := &Collection{db: db, name: "ghost"}
	_, err := ghost.Tier()
	wantCode(t, err, ErrNotFound)
	wantCode(t, ghost.SetTier(Cold), ErrNotFound)
	wantCode(t, ghost.Pin(), ErrNotFound)
	_, err = (&Collection{db: db, name: "bad name!"}).TierInfo()
	wantCode(t, err, ErrInvalid)
	// A collection policy may not set a database-only field.
	wantCode(t, c.SetTierPolicy(TierPolicy{MemoryBudget: 1, Set: PolicyMemoryBudget}), ErrInvalid)
	wantCode(t, db.SetTierPolicy(TierPolicy{Set: PolicyPromotePerHour}), ErrInvalid)
	wantCode(t, db.SetTierPolicy(TierPolicy{HotTTL: -time.Second, Set: PolicyHotTTL}), ErrInvalid)
	for _, o := range []Options{{TierHotTTL: -time.Second}, {TierInterval: -1},
		{TierInterval: 50 * 24 * time.Hour}} {
		if _, err := Open(filepath.Join(t.TempDir(), "x"), &o); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Open(%+v): %v", o, err)
		}
	}
}

func TestTierPinBlocksDemotion(t *testing.T) {
	db, dir := openTemp(t, &Options{TierInterval: Never})
	p := mustCollection(t, db, "p", CollectionConfig{Dim: 8, Metric: L2})
	q := mustCollection(t, db, "q", CollectionConfig{Dim: 8, Metric: L2})
	for i, c := range []*Collection{p, q} {
		if _, err := c.Insert(tierVectors(100, int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Pin(); err != nil {
		t.Fatal(err)
	}
	if ti, _ := p.TierInfo(); !ti.Pinned {
		t.Fatal("TierInfo does not show the pin")
	}
	if st, _ := p.Stats(); !st.Pinned {
		t.Fatal("Stats does not show the pin")
	}
	// A one-byte memory budget: the worker demotes what it may.
	if err := db.SetTierPolicy(TierPolicy{MemoryBudget: 1, Set: PolicyMemoryBudget}); err != nil {
		t.Fatal(err)
	}
	if pol, err := db.TierPolicy(); err != nil || pol.MemoryBudget != 1 {
		t.Fatalf("TierPolicy: %+v %v", pol, err)
	}
	if err := db.TierRunOnce(); err != nil {
		t.Fatal(err)
	}
	if tierOf(t, p) != Hot || tierOf(t, q) == Hot {
		t.Fatalf("after a cycle under the budget: p %v (pinned), q %v", tierOf(t, p), tierOf(t, q))
	}
	// A pin only stops the worker: SetTier still moves it.
	if err := p.SetTier(Warm); err != nil || tierOf(t, p) != Warm {
		t.Fatalf("SetTier(Warm) on a pinned collection: %v", err)
	}
	if e := wantCode(t, p.SetTier(Hot), ErrQuota); !strings.Contains(e.Message, "budget") {
		t.Fatalf("quota message %q", e.Message)
	}
	db.SetTierPolicy(TierPolicy{MemoryBudget: 0, Set: PolicyMemoryBudget})
	if err := p.SetTier(Hot); err != nil {
		t.Fatal(err)
	}
	if err := p.Unpin(); err != nil {
		t.Fatal(err)
	}
	db.SetTierPolicy(TierPolicy{MemoryBudget: 1, Set: PolicyMemoryBudget})
	if err := db.TierRunOnce(); err != nil {
		t.Fatal(err)
	}
	if tierOf(t, p) == Hot {
		t.Fatal("unpinned, p was not demoted under the budget")
	}
	if st, _ := db.TierStats(); st.WorkerCycles != 2 {
		t.Fatalf("WorkerCycles %d, want 2", st.WorkerCycles)
	}
	// The pin is durable; a read-only handle refuses tier changes.
	p.Pin()
	db.Close()
	ro, err := Open(dir, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rp, _ := ro.Collection("p")
	if ti, err := rp.TierInfo(); err != nil || !ti.Pinned {
		t.Fatalf("pin lost across reopen: %+v %v", ti, err)
	}
	wantCode(t, rp.Unpin(), ErrReadOnly)
	wantCode(t, ro.TierRunOnce(), ErrReadOnly)
}

func TestTierOptionsAndPolicies(t *testing.T) {
	db, _ := openTemp(t, &Options{TierInterval: Never, TierHotTTL: time.Second, TierWarmTTL: Never,
		TierPromotePerHour: 4, SnapshotRetention: 2, MaxCollections: 2, StoreQuota: 1 << 40})
	pol, err := db.TierPolicy()
	if err != nil || pol.HotTTL != time.Second || pol.WarmTTL != Never || pol.PromotePerHour != 4 ||
		pol.SnapshotRetention != 2 || pol.MaxCollections != 2 || pol.StoreQuota != 1<<40 ||
		pol.Disabled {
		t.Fatalf("policy from the options: %+v %v", pol, err)
	}
	c := mustCollection(t, db, "t", CollectionConfig{Dim: 8})
	k := mustCollection(t, db, "k", CollectionConfig{Dim: 8})
	_, err = db.CreateCollection("third", CollectionConfig{Dim: 8})
	wantCode(t, err, ErrQuota)
	c.Insert(tierVectors(20, 3))
	k.Insert(tierVectors(20, 4))
	if err := k.SetTierPolicy(TierPolicy{Disabled: true, Set: PolicyDisabled}); err != nil {
		t.Fatal(err)
	}
	if kp, err := k.TierPolicy(); err != nil || kp.Set != PolicyDisabled || !kp.Disabled {
		t.Fatalf("collection policy: %+v %v", kp, err)
	}
	time.Sleep(1200 * time.Millisecond) // past the one-second hot TTL
	if err := db.TierRunOnce(); err != nil {
		t.Fatal(err)
	}
	if tierOf(t, c) != Warm || tierOf(t, k) != Hot {
		t.Fatalf("after the hot TTL: t %v, k %v (tiering disabled)", tierOf(t, c), tierOf(t, k))
	}
	db.TierRunOnce()
	if tierOf(t, c) != Warm {
		t.Fatal("demoted to cold although the warm TTL is Never")
	}
	if err := k.SetTierPolicy(TierPolicy{Reset: PolicyDisabled}); err != nil {
		t.Fatal(err)
	}
	if kp, _ := k.TierPolicy(); kp.Set != 0 {
		t.Fatalf("override not removed: %+v", kp)
	}
}

func TestTierStoreFailure(t *testing.T) {
	store, err := NewMockStore()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db, _ := openTemp(t, &Options{TierInterval: Never, Store: store})
	defer db.Close()
	c := mustCollection(t, db, "f", CollectionConfig{Dim: 8})
	c.Insert(tierVectors(50, 5))
	store.Inject(MockOpPut, "", Mock503, 100, 0)
	wantCode(t, c.SetTier(Cold), ErrUnavailable)
	if tierOf(t, c) == Cold {
		t.Fatal("cold although the upload failed")
	}
	ti, _ := c.TierInfo()
	if ti.LastError != ErrUnavailable || ti.LastErrorMessage == "" {
		t.Fatalf("TierInfo after the failure: %+v", ti)
	}
	if st, _ := db.TierStats(); len(st.TransitionsFailed) == 0 {
		t.Fatal("no failed transition counted")
	}
	store.ClearFaults()
	if err := c.SetTier(Cold); err != nil || tierOf(t, c) != Cold {
		t.Fatalf("SetTier(Cold) after the store recovered: %v", err)
	}
}
