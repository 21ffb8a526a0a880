package akidb_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	akidb "github.com/akidb/akidb-go"
)

// The quickstart of docs/GETTING_STARTED.md, checked by go test.
func Example() {
	tmp, _ := os.MkdirTemp("", "akidb-example-")
	defer os.RemoveAll(tmp)

	db, err := akidb.Open(filepath.Join(tmp, "db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	docs, err := db.CreateCollection("docs", akidb.CollectionConfig{Dim: 4, Metric: akidb.L2})
	if err != nil {
		log.Fatal(err)
	}
	_, err = docs.Insert([]akidb.Document{
		{Vector: []float32{1, 0, 0, 0}, ExternalID: "a", Metadata: json.RawMessage(`{"title":"alpha"}`)},
		{Vector: []float32{0, 1, 0, 0}, ExternalID: "b", Metadata: json.RawMessage(`{"title":"beta"}`)},
		{Vector: []float32{0.9, 0.1, 0, 0}, ExternalID: "c"},
	})
	if err != nil {
		log.Fatal(err)
	}
	hits, err := docs.Search([]float32{1, 0.05, 0, 0}, 2, &akidb.SearchOptions{Documents: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range hits {
		fmt.Printf("%d %s %.4f %s\n", h.ID, h.ExternalID, h.Distance, h.Metadata)
	}
	// Output:
	// 1 a 0.0025 {"title":"alpha"}
	// 3 c 0.0125
}

func ExampleError() {
	tmp, _ := os.MkdirTemp("", "akidb-example-")
	defer os.RemoveAll(tmp)
	db, err := akidb.Open(filepath.Join(tmp, "db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	_, err = db.Collection("nope")
	var e *akidb.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code == akidb.ErrNotFound, e.Code.Error())
	}
	// Output:
	// true AKIDB_NOTFOUND
}
