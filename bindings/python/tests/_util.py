"""_util.py - what the test modules share: a temporary database per test."""

import os
import shutil
import tempfile
import unittest

import akidb


class DBTest(unittest.TestCase):
    """Each test gets self.dir (a fresh directory) and self.db (open in it)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="akidb-py-")
        self.dir = os.path.join(self.tmp, "db")
        self.db = akidb.open(self.dir)

    def tearDown(self):
        self.db.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def reopen(self, **options):
        self.db.close()
        self.db = akidb.open(self.dir, **options)
        return self.db


def numpy_or_skip(testcase):
    """numpy, or skip the test; a failure instead when AKIDB_TEST_REQUIRE_NUMPY=1
    (make test sets it for the interpreter that has Debian's python3-numpy,
    so the numpy tests can never be skipped silently there)."""
    try:
        import numpy
        return numpy
    except ImportError:
        if os.environ.get("AKIDB_TEST_REQUIRE_NUMPY") == "1":
            testcase.fail("numpy is required in this run (AKIDB_TEST_REQUIRE_NUMPY=1) "
                          "but cannot be imported")
        testcase.skipTest("numpy is not installed")
