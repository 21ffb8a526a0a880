"""test_numpy.py - numpy input: zero copy for C-contiguous float32, one
conversion for everything else, shapes checked, batch search on 2-D arrays.
Skipped without numpy, except where make test requires it."""

import unittest

import akidb
from akidb import _db
from _util import DBTest, numpy_or_skip


class NumpyTest(DBTest):
    def setUp(self):
        self.np = numpy_or_skip(self)
        super().setUp()

    def test_zero_copy_for_contiguous_float32(self):
        np = self.np
        a = np.arange(12, dtype=np.float32).reshape(3, 4)
        m = _db._as_matrix(a, 4)
        self.assertFalse(m.copied)
        self.assertEqual(m.ptr, a.ctypes.data)       # the array's own memory
        self.assertEqual(m.n, 3)
        # One vector as a 1-D array is a view too.
        m1 = _db._as_matrix(a[1], 4)
        self.assertEqual((m1.ptr, m1.n, m1.copied), (a[1].ctypes.data, 1, False))
        # A read-only array is still used in place (we never write to it).
        ro = a.copy()
        ro.setflags(write=False)
        self.assertEqual(_db._as_matrix(ro, 4).ptr, ro.ctypes.data)

    def test_other_layouts_are_converted_once(self):
        np = self.np
        for a in (np.arange(12, dtype=np.float64).reshape(3, 4),
                  np.arange(12, dtype=np.int32).reshape(3, 4),
                  np.arange(24, dtype=np.float32).reshape(3, 8)[:, ::2],   # strided
                  np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))):
            with self.subTest(dtype=a.dtype, strides=a.strides):
                m = _db._as_matrix(a, 4)
                self.assertTrue(m.copied)
                self.assertEqual(m.owner.dtype, np.float32)
                self.assertTrue(m.owner.flags.c_contiguous)
                np.testing.assert_array_equal(m.owner, a.astype(np.float32))

    def test_insert_and_search_arrays(self):
        np = self.np
        rng = np.random.default_rng(7)
        data = rng.standard_normal((500, 16)).astype(np.float32)
        col = self.db.create_collection("np", 16, metric="l2")
        ids = col.insert(data, external_ids=[f"r{i}" for i in range(500)],
                         metadata=[{"i": i} for i in range(500)])
        self.assertEqual(ids, list(range(1, 501)))
        # float64 input gives the same vectors.
        col2 = self.db.create_collection("np64", 16, metric="l2")
        col2.insert(data.astype(np.float64))
        np.testing.assert_array_equal(np.array(col2.get(17).vector, dtype=np.float32), data[16])
        for i in (0, 123, 499):
            hits = col.search(data[i], k=3, exact=True)
            self.assertEqual(hits[0].id, i + 1)
            self.assertEqual(hits[0].external_id, f"r{i}")
            self.assertEqual(hits[0].metadata, {"i": i})
            self.assertAlmostEqual(hits[0].distance, 0.0, places=5)
        # Numpy scalars as ids, numpy query of another dtype.
        self.assertEqual(col.get(np.int64(5)).external_id, "r4")
        self.assertEqual(col.search(data[4].astype(np.float16).astype(np.float64), k=1)[0].id, 5)

    def test_search_batch(self):
        np = self.np
        rng = np.random.default_rng(11)
        data = rng.standard_normal((300, 8)).astype(np.float32)
        col = self.db.create_collection("batch", 8, metric="l2")
        col.insert(data)
        queries = data[[5, 50, 250]]
        results = col.search_batch(queries, k=2, exact=True)
        self.assertEqual([r[0].id for r in results], [6, 51, 251])
        # A strided view of the data is converted, then searched the same.
        strided = data[::100]
        self.assertFalse(strided.flags.c_contiguous)
        got = col.search_batch(strided, k=1, exact=True, documents=False)
        self.assertEqual([r[0].id for r in got], [1, 101, 201])
        # Parallel workers return the same answers in the same order.
        many = data[:64]
        serial = col.search_batch(many, k=5, documents=False)
        parallel = col.search_batch(many, k=5, documents=False, workers=4)
        self.assertEqual(serial, parallel)
        # Lists of lists work too, and agree with the array.
        self.assertEqual(col.search_batch(queries.tolist(), k=2, exact=True), results)

    def test_bad_shapes(self):
        np = self.np
        col = self.db.create_collection("shape", 4, metric="l2")
        for bad in (np.zeros((2, 3), np.float32), np.zeros(5, np.float32),
                    np.zeros((2, 2, 4), np.float32), np.array([["a"] * 4])):
            with self.subTest(shape=bad.shape, dtype=bad.dtype):
                with self.assertRaises(akidb.InvalidArgument):
                    col.insert(bad)
        with self.assertRaises(akidb.InvalidArgument):
            col.search(np.zeros((2, 4), np.float32))
        with self.assertRaises(akidb.InvalidArgument):
            col.insert(np.array([[1, np.nan, 0, 0]], np.float32))
        self.assertEqual(col.insert(np.zeros((0, 4), np.float32)), [])
        self.assertEqual(len(col), 0)


if __name__ == "__main__":
    unittest.main()
