package akidb

// #include "shim.h"
import "C"

import "unsafe"

// Application records: small durable key/value records kept in the
// database's catalog (namespace [A-Za-z0-9_.-]{1,64}, key 1..1024 bytes of
// UTF-8, value up to 1 MiB).  A put is durable when it returns.

// PutRecord creates or replaces record (ns, key).
func (db *DB) PutRecord(ns, key string, value []byte) error {
	return db.record("PutRecord", ns, key, func(cns, ckey *C.char) error {
		var p unsafe.Pointer
		if len(value) > 0 {
			p = C.CBytes(value)
			defer C.free(p)
		}
		var msg *C.char
		return check("PutRecord", C.akgo_kv_put(db.h, cns, ckey, p, C.size_t(len(value)), &msg), msg)
	})
}

// GetRecord reads record (ns, key); ErrNotFound if it does not exist.
func (db *DB) GetRecord(ns, key string) ([]byte, error) {
	var out []byte
	err := db.record("GetRecord", ns, key, func(cns, ckey *C.char) error {
		var v unsafe.Pointer
		var n C.size_t
		var msg *C.char
		if err := check("GetRecord", C.akgo_kv_get(db.h, cns, ckey, &v, &n, &msg), msg); err != nil {
			return err
		}
		defer C.akidb_free(v)
		out = C.GoBytes(v, C.int(n))
		return nil
	})
	return out, err
}

// DeleteRecord deletes record (ns, key); ErrNotFound if it does not exist.
func (db *DB) DeleteRecord(ns, key string) error {
	return db.record("DeleteRecord", ns, key, func(cns, ckey *C.char) error {
		var msg *C.char
		return check("DeleteRecord", C.akgo_kv_delete(db.h, cns, ckey, &msg), msg)
	})
}

// RecordKeys lists the keys of namespace ns in ascending byte order.
func (db *DB) RecordKeys(ns string) ([]string, error) {
	var out []string
	err := db.record("RecordKeys", ns, "", func(cns, _ *C.char) error {
		var keys **C.char
		var n C.size_t
		var msg *C.char
		if err := check("RecordKeys", C.akgo_kv_list(db.h, cns, &keys, &n, &msg), msg); err != nil {
			return err
		}
		out = takeStrings(unsafe.Pointer(keys), int(n))
		return nil
	})
	return out, err
}

func (db *DB) record(op, ns, key string, fn func(cns, ckey *C.char) error) error {
	if err := noNUL(op, "namespace", ns); err != nil {
		return err
	}
	if err := noNUL(op, "key", key); err != nil {
		return err
	}
	if err := db.rlock(op); err != nil {
		return err
	}
	defer db.mu.RUnlock()
	cns, ckey := C.CString(ns), C.CString(key)
	defer C.free(unsafe.Pointer(cns))
	defer C.free(unsafe.Pointer(ckey))
	return fn(cns, ckey)
}
