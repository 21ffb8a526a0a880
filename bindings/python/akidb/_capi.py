"""_capi.py - the C library as ctypes sees it: loading, structs, prototypes.

This is the only module that knows the C ABI (include/akidb.h).  Everything
above it (_db.py) speaks Python.  Why ctypes and not cffi: ctypes is in the
standard library of every CPython, so the package installs offline into any
virtual environment and needs no compiler at install time; cffi is only
available here as Debian's python3-cffi, which pyenv's and venv's
interpreters do not see.  ctypes releases the GIL around every call into a
CDLL, which is what lets searches from several Python threads run in
parallel inside the library.

Library lookup order (first found wins):
  1. the libakidb.so.N bundled into this package by its build;
  2. the file named by the AKIDB_LIBRARY environment variable;
  3. the system's, through ctypes.util.find_library("akidb").

Versioned structs: the header's *_init() functions fill a struct of the
LIBRARY's size, so calling a newer library's init on our (older, smaller)
ctypes struct would write past its end.  We therefore never call the init
functions: we fill the struct ourselves with the version we were written
against and the defaults the header documents.  The library reads only the
fields of the version we declare.

Errors: every fallible function gets an errcheck that turns a non-zero
result into an exception.  ctypes runs errcheck on the calling thread right
after the foreign call returns, before any other akidb_* call can happen on
that thread, so the thread-local akidb_errmsg() it reads belongs to the
call that failed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from ctypes import (POINTER, Structure, c_char_p, c_float, c_int, c_int64,
                    c_size_t, c_uint32, c_uint64, c_void_p)
from typing import Optional

# The ABI major version this binding was written against.  A library of
# another major version may have changed anything and is refused.
ABI_MAJOR = 0

# Versions of the structs below, as in include/akidb.h when this was written.
OPTIONS_VERSION = 3
COLLECTION_CONFIG_VERSION = 2
COLLECTION_STATS_VERSION = 3
DOCUMENT_VERSION = 1
SEARCH_PARAMS_VERSION = 1
S3_CONFIG_VERSION = 1
IMPORT_OPTIONS_VERSION = 3
TIER_POLICY_VERSION = 1
TIER_INFO_VERSION = 1
TIER_STATS_VERSION = 1
SNAPSHOT_ID_LEN = 48

SYNC_ALWAYS, SYNC_INTERVAL, SYNC_NONE = 1, 2, 3
METRIC_L2, METRIC_COSINE, METRIC_DOT = 1, 2, 3
STORAGE_F32, STORAGE_F16, STORAGE_INT8 = 1, 2, 3
EXACT_RAM, EXACT_FILE, EXACT_NONE = 0, 1, 2
TIER_HOT, TIER_WARM, TIER_COLD = 1, 2, 3
TIER_TTL_NEVER = 2**64 - 1     # AKIDB_TIER_TTL_NEVER
NEVER = 0xFFFFFFFF             # AKIDB_NEVER (intervals)
# AKIDB_TIER_P_*: which fields of a TierPolicy are given.
TIER_P_HOT_TTL, TIER_P_WARM_TTL, TIER_P_PROMOTE, TIER_P_DISABLED = 0x01, 0x02, 0x04, 0x08
TIER_P_RETENTION, TIER_P_MEMORY_BUDGET, TIER_P_STORE_QUOTA = 0x10, 0x20, 0x40
TIER_P_MAX_COLLECTIONS = 0x80

CLOCK_FN = ctypes.CFUNCTYPE(c_int64, c_void_p)
LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)
PROGRESS_FN = ctypes.CFUNCTYPE(None, c_void_p, c_uint64, c_uint64)


class Options(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("store", c_void_p),
        ("clock_us", CLOCK_FN),
        ("clock_ctx", c_void_p),
        ("allocator", c_void_p),
        ("sync_mode", c_int),
        ("log_fn", LOG_FN),
        ("log_ctx", c_void_p),
        ("checkpoint_bytes", c_uint64),
        ("upload_concurrency", c_uint32),
        ("dlq_max_attempts", c_uint32),
        ("dlq_retry_interval_ms", c_uint32),
        ("dlq_retry_batch", c_uint32),
        # version 2
        ("read_only", c_int),
        ("file_mode", c_uint32),
        # version 2, tiering (include/akidb.h: the library reads the whole
        # version-2 struct, so the layout must end where the header's does)
        ("tier_hot_ttl_s", c_uint64),
        ("tier_warm_ttl_s", c_uint64),
        ("tier_promote_per_hour", c_uint32),
        ("tier_disabled", c_int),
        ("memory_budget", c_uint64),
        ("store_quota", c_uint64),
        ("snapshot_retention", c_uint32),
        ("max_collections", c_uint32),
        ("tier_interval_ms", c_uint32),
        # version 3
        ("max_index_lag", c_uint32),
    ]


class CollectionConfig(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("dim", c_uint32),
        ("metric", c_int),
        ("hnsw_m", c_uint32),
        ("ef_construction", c_uint32),
        ("ef_search", c_uint32),
        # version 2
        ("storage", c_int),
        ("exact", c_int),
        ("rerank", c_uint32),
    ]


class CollectionStats(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("dim", c_uint32),
        ("metric", c_int),
        ("tier", c_int),
        ("pinned", c_int),
        ("count", c_uint64),
        ("deleted", c_uint64),
        ("bytes", c_uint64),
        ("vector_bytes", c_uint64),
        ("graph_bytes", c_uint64),
        ("document_bytes", c_uint64),
        ("log_bytes", c_uint64),
        ("index_lag", c_uint64),
        ("created_at_us", c_int64),
        # version 2
        ("log_truncated_bytes", c_uint64),
        # version 3
        ("compact_bytes", c_uint64),
    ]


class Document(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("id", c_uint64),
        # c_void_p, not c_char_p: we must free these pointers with
        # akidb_document_clear, and c_char_p would hand us copies only.
        ("external_id", c_void_p),
        ("metadata_json", c_void_p),
        ("inserted_at_us", c_int64),
    ]


class SearchParams(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("ef", c_uint32),
        ("exact", c_int),
    ]


class Hit(Structure):
    _fields_ = [
        ("id", c_uint64),
        ("distance", c_float),
    ]


class SnapshotInfo(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("id", c_char_p),
        ("key", c_char_p),
        ("rows", c_uint64),
        ("bytes", c_uint64),
        ("sha256", c_char_p),
        ("created_at_us", c_int64),
    ]


class TierPolicy(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("set", c_uint32),
        ("reset", c_uint32),
        ("hot_ttl_s", c_uint64),
        ("warm_ttl_s", c_uint64),
        ("promote_per_hour", c_uint32),
        ("disabled", c_int),
        ("snapshot_retention", c_uint32),
        ("memory_budget", c_uint64),
        ("store_quota", c_uint64),
        ("max_collections", c_uint32),
    ]


class TierInfo(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("tier", c_int),
        ("pinned", c_int),
        ("busy", c_int),
        ("last_access_us", c_int64),
        ("accesses", c_uint64),
        ("hot_bytes", c_uint64),
        ("local_bytes", c_uint64),
        ("cold_bytes", c_uint64),
        ("last_error", c_int),
        ("last_error_msg", ctypes.c_char * 256),
    ]


class TierStats(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("collections", c_uint64 * 4),
        ("bytes", c_uint64 * 4),
        ("memory_budget", c_uint64),
        ("store_bytes", c_uint64),
        ("store_quota", c_uint64),
        ("transitions_ok", (c_uint64 * 4) * 4),
        ("transitions_failed", (c_uint64 * 4) * 4),
        ("loads", c_uint64),
        ("load_us_total", c_uint64),
        ("worker_cycles", c_uint64),
    ]


class S3Config(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("endpoint", c_char_p),
        ("region", c_char_p),
        ("bucket", c_char_p),
        ("access_key", c_char_p),
        ("secret_key", c_char_p),
        ("path_style", c_int),
        ("connect_timeout_ms", c_uint32),
        ("request_timeout_ms", c_uint32),
        ("max_concurrency", c_uint32),
        ("multipart_threshold", c_uint64),
        ("part_size", c_uint64),
    ]


class ImportOptions(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("vector_column", c_char_p),
        ("id_column", c_char_p),
        ("metadata_columns", POINTER(c_char_p)),
        ("n_metadata_columns", c_size_t),
        ("metric", c_int),
        ("progress", PROGRESS_FN),
        ("progress_ctx", c_void_p),
        # version 2
        ("skip_rows", c_uint64),
        ("notice", LOG_FN),
        ("notice_ctx", c_void_p),
        ("resume_row_out", c_void_p),
        # version 3
        ("storage", c_int),
        ("exact", c_int),
        ("rerank", c_uint32),
    ]


def _candidates() -> list:
    """Library paths in lookup order, with where each came from."""
    out = []
    here = os.path.dirname(os.path.abspath(__file__))
    bundled = sorted(glob.glob(os.path.join(here, "libakidb.so*")))
    for path in bundled:
        out.append((path, "bundled"))
    env = os.environ.get("AKIDB_LIBRARY")
    if env:
        out.append((env, "AKIDB_LIBRARY"))
    system = ctypes.util.find_library("akidb")
    if system:
        out.append((system, "system"))
    return out


def _load() -> tuple:
    tried = []
    for path, origin in _candidates():
        try:
            return ctypes.CDLL(path), path, origin
        except OSError as e:
            tried.append(f"{path} ({origin}): {e}")
    detail = "; ".join(tried) if tried else "no candidate found"
    raise ImportError(
        "akidb: cannot load libakidb (" + detail + "). Install the package with "
        "`pip install ./bindings/python` from a source tree (it bundles the "
        "library), set AKIDB_LIBRARY to the path of libakidb.so, or install "
        "the library system-wide (`make install`).")


lib, library_path, library_origin = _load()


def _proto(name, restype, argtypes, check=True):
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = argtypes
    if check:
        fn.errcheck = _errcheck
    return fn


# Filled by _errors.py once the exception classes exist (it needs errname
# from here, and we need its raise function: one late binding breaks the
# cycle).
raise_error = None


def _errcheck(result, func, args):
    if result != 0:
        # Same thread, no akidb_* call in between: the message is ours.
        msg = lib.akidb_errmsg(None)
        raise_error(result, msg.decode("utf-8", "replace") if msg else "")
    return result


# Infallible calls.
_proto("akidb_version", c_char_p, [], check=False)
_proto("akidb_version_number", c_int, [], check=False)
_proto("akidb_errstr", c_char_p, [c_int], check=False)
_proto("akidb_errname", c_char_p, [c_int], check=False)
_proto("akidb_errmsg", c_char_p, [c_void_p], check=False)
_proto("akidb_free", None, [c_void_p], check=False)
_proto("akidb_document_clear", None, [POINTER(Document)], check=False)
_proto("akidb_store_close", None, [c_void_p], check=False)
_proto("akidb_store_mock_clear_faults", None, [c_void_p], check=False)
_proto("akidb_store_mock_set_latency", None, [c_void_p, c_uint32], check=False)

# Fallible calls: int result, raised by errcheck.
_proto("akidb_open", c_int, [c_char_p, POINTER(Options), POINTER(c_void_p)])
_proto("akidb_close", c_int, [c_void_p])
_proto("akidb_checkpoint", c_int, [c_void_p, c_char_p])
_proto("akidb_index_wait", c_int, [c_void_p, c_char_p, c_uint32])
_proto("akidb_metric_value", c_int, [c_void_p, c_char_p, POINTER(c_int64)])
_proto("akidb_metrics_render", c_int, [c_void_p, POINTER(c_void_p)])
_proto("akidb_collection_create", c_int, [c_void_p, c_char_p, POINTER(CollectionConfig)])
_proto("akidb_collection_drop", c_int, [c_void_p, c_char_p])
_proto("akidb_collection_count", c_int, [c_void_p, c_char_p, POINTER(c_uint64)])
_proto("akidb_collection_info", c_int, [c_void_p, c_char_p, POINTER(CollectionConfig)])
_proto("akidb_collection_list", c_int, [c_void_p, POINTER(c_void_p), POINTER(c_size_t)])
_proto("akidb_collection_stat", c_int, [c_void_p, c_char_p, POINTER(CollectionStats)])
_proto("akidb_insert", c_int, [c_void_p, c_char_p, c_size_t, c_void_p, c_void_p, c_void_p,
                               POINTER(c_uint64)])
_proto("akidb_upsert", c_int, [c_void_p, c_char_p, c_size_t, c_void_p, c_void_p, c_void_p,
                               POINTER(c_uint64)])
_proto("akidb_delete", c_int, [c_void_p, c_char_p, c_uint64])
_proto("akidb_lookup", c_int, [c_void_p, c_char_p, c_char_p, POINTER(c_uint64)])
_proto("akidb_document_get", c_int, [c_void_p, c_char_p, c_uint64, c_void_p, POINTER(Document)])
_proto("akidb_search", c_int, [c_void_p, c_char_p, c_void_p, c_uint32, POINTER(SearchParams),
                               POINTER(Hit), POINTER(c_uint32)])
_proto("akidb_kv_put", c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t])
_proto("akidb_kv_get", c_int, [c_void_p, c_char_p, c_char_p, POINTER(c_void_p), POINTER(c_size_t)])
_proto("akidb_kv_delete", c_int, [c_void_p, c_char_p, c_char_p])
_proto("akidb_kv_list", c_int, [c_void_p, c_char_p, POINTER(c_void_p), POINTER(c_size_t)])
_proto("akidb_snapshot_create", c_int, [c_void_p, c_char_p, c_char_p, c_size_t])
_proto("akidb_snapshot_list", c_int, [c_void_p, c_char_p, POINTER(c_void_p), POINTER(c_size_t)])
_proto("akidb_snapshot_restore", c_int, [c_void_p, c_char_p, c_char_p])
_proto("akidb_snapshot_delete", c_int, [c_void_p, c_char_p, c_char_p])
_proto("akidb_export_parquet", c_int, [c_void_p, c_char_p, c_char_p])
_proto("akidb_import_parquet", c_int, [c_void_p, c_char_p, c_char_p, POINTER(ImportOptions),
                                       POINTER(c_uint64)])
_proto("akidb_parquet_inspect", c_int, [c_char_p, POINTER(c_void_p)])
_proto("akidb_store_local_open", c_int, [c_char_p, POINTER(c_void_p)])
_proto("akidb_store_mock_open", c_int, [POINTER(c_void_p)])
_proto("akidb_store_mock_inject", c_int, [c_void_p, ctypes.c_uint, c_char_p, c_int, c_uint32,
                                          c_uint32])
_proto("akidb_store_s3_open", c_int, [POINTER(S3Config), POINTER(c_void_p)])
_proto("akidb_upload_wait", c_int, [c_void_p])
# Tiering.  Like every CDLL call, these release the GIL while they run (a
# transition or a load from the store can take seconds).
_proto("akidb_tier_get", c_int, [c_void_p, c_char_p, POINTER(c_int)])
_proto("akidb_tier_set", c_int, [c_void_p, c_char_p, c_int])
_proto("akidb_tier_pin", c_int, [c_void_p, c_char_p, c_int])
_proto("akidb_tier_run_once", c_int, [c_void_p])
_proto("akidb_tier_policy_apply", c_int, [c_void_p, c_char_p, POINTER(TierPolicy)])
_proto("akidb_tier_policy_get", c_int, [c_void_p, c_char_p, POINTER(TierPolicy)])
_proto("akidb_tier_info_get", c_int, [c_void_p, c_char_p, POINTER(TierInfo)])
_proto("akidb_tier_stats_get", c_int, [c_void_p, POINTER(TierStats)])


def errname(rc: int) -> str:
    return lib.akidb_errname(rc).decode("ascii")


def take_string(ptr: c_void_p) -> Optional[str]:
    """Copy a library-allocated C string into Python and free it."""
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        lib.akidb_free(ptr)


def take_string_list(ptr: c_void_p, n: int) -> list:
    """Copy a library-allocated array of n strings (one allocation) and free it."""
    if not ptr:
        return []
    try:
        arr = ctypes.cast(ptr, POINTER(c_char_p))
        return [arr[i].decode("utf-8") for i in range(n)]
    finally:
        lib.akidb_free(ptr)


def default_options() -> Options:
    o = Options()
    o.version = OPTIONS_VERSION
    o.sync_mode = SYNC_ALWAYS
    return o


def default_config(dim: int, metric: int) -> CollectionConfig:
    # The defaults akidb_collection_config_init documents.
    c = CollectionConfig()
    c.version = COLLECTION_CONFIG_VERSION
    c.dim = dim
    c.metric = metric
    c.hnsw_m = 16
    c.ef_construction = 200
    c.ef_search = 64
    c.storage = STORAGE_F32
    c.exact = EXACT_RAM
    return c


def default_s3_config() -> S3Config:
    # The defaults akidb_s3_config_init sets.
    c = S3Config()
    c.version = S3_CONFIG_VERSION
    c.path_style = 1
    c.connect_timeout_ms = 5000
    c.request_timeout_ms = 60000
    c.max_concurrency = 8
    c.multipart_threshold = 16 << 20
    c.part_size = 8 << 20
    return c


def check_abi() -> None:
    major = lib.akidb_version_number() // 10000
    if major != ABI_MAJOR:
        raise ImportError(
            f"akidb: {library_path} is libakidb {lib.akidb_version().decode()} "
            f"(ABI {major}); this package needs ABI {ABI_MAJOR}")


check_abi()
