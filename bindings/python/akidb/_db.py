"""_db.py - the Pythonic layer: Database, Collection, stores, hits, documents.

Design points (the why; the what is in the docstrings):

- Handle lifetime.  The C API forbids akidb_close() racing with any other
  call on the handle, and a Python program cannot be trusted to order its
  threads.  Every call therefore enters the Database (a counter under a
  condition variable), and close() waits for the calls in flight, then
  refuses new ones with akidb.Misuse instead of touching freed memory.
- Vector buffers.  akidb_insert/akidb_search take a bare float pointer and
  read n*dim floats from it, with dim the collection's.  We check every
  buffer against the collection's dim, which we cache.  Operations that
  can change which dim a name has (create, drop, import) run exclusively:
  they wait for calls in flight and hold new ones back, then clear the
  cache, so no call ever passes a buffer sized for another dim.
- Zero copy.  A C-contiguous float32 numpy array (or any C-contiguous
  writable buffer of C floats, e.g. array.array("f")) is handed to the
  library as it is; anything else is converted once into one float32
  buffer.  The GIL is released for the duration of each C call (ctypes
  does that for CDLL functions), so Python threads search in parallel.
- Metadata is any JSON-serialisable value (usually a dict); the library
  stores the JSON text and we decode it again on the way out.
"""

from __future__ import annotations

import array
import atexit
import ctypes
import dataclasses
import math
import struct
import weakref
import datetime as _dt
import json
import os
import sys
import threading
from ctypes import byref, c_char_p, c_int64, c_size_t, c_uint32, c_uint64, c_void_p
from typing import (Any, Callable, Dict, Iterable, Iterator, List, MutableMapping,
                    NamedTuple, Optional, Sequence, Tuple, Union)

from . import _capi
from ._capi import lib
from ._errors import AlreadyExists, InvalidArgument, Misuse, NotFound

__all__ = [
    "open", "Database", "Collection", "Hit", "Document", "CollectionStats",
    "Snapshot", "Store", "LocalStore", "MockStore", "S3Store", "inspect_parquet",
    "TierInfo", "TierStats", "TierPolicy", "NEVER", "TIERS",
]

_METRICS = {"l2": _capi.METRIC_L2, "cosine": _capi.METRIC_COSINE, "dot": _capi.METRIC_DOT}
_METRIC_NAMES = {v: k for k, v in _METRICS.items()}
_STORAGE = {"f32": _capi.STORAGE_F32, "f16": _capi.STORAGE_F16, "int8": _capi.STORAGE_INT8}
_STORAGE_NAMES = {v: k for k, v in _STORAGE.items()}
_EXACT = {"ram": _capi.EXACT_RAM, "file": _capi.EXACT_FILE, "none": _capi.EXACT_NONE}
_EXACT_NAMES = {v: k for k, v in _EXACT.items()}
_TIER_NAMES = {_capi.TIER_HOT: "hot", _capi.TIER_WARM: "warm", _capi.TIER_COLD: "cold"}
_TIERS = {v: k for k, v in _TIER_NAMES.items()}
#: The tier names, hottest first.
TIERS = ("hot", "warm", "cold")
#: "Never" for the tier TTLs, tier_interval_ms and max_index_lag (math.inf works too).
NEVER = math.inf
_SYNC = {"always": _capi.SYNC_ALWAYS, "interval": _capi.SYNC_INTERVAL, "none": _capi.SYNC_NONE}

# The most hits one search may ask for (akidb_search's limit).
MAX_K = 1000000

# akidb_hit as it lies in memory: uint64 id, float distance, padding.
_HIT = struct.Struct("=Qf4x")
assert _HIT.size == ctypes.sizeof(_capi.Hit)


def _utc(us: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(us / 1e6, tz=_dt.timezone.utc)


def _cstr(value: Any, what: str) -> bytes:
    """A str argument as the NUL-terminated UTF-8 the library wants."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str):
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidArgument(f"{what} is not valid UTF-8: {e}") from None
    else:
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if b"\0" in raw:
        raise InvalidArgument(f"{what} contains a NUL character")
    return raw


def _metadata_text(value: Any, row: int) -> Optional[bytes]:
    if value is None:
        return None
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"metadata of row {row} is not JSON-serialisable: {e}") from None


def _metadata_value(ptr: Optional[int]) -> Any:
    if not ptr:
        return None
    text = ctypes.string_at(ptr).decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        # Written before the library validated JSON: hand back the text.
        return text


class _Matrix:
    """n rows of dim float32s at address `ptr`, kept alive by `owner`."""

    __slots__ = ("ptr", "n", "dim", "owner", "copied")

    def __init__(self, ptr: int, n: int, dim: int, owner: Any, copied: bool):
        self.ptr = ptr
        self.n = n
        self.dim = dim
        self.owner = owner
        self.copied = copied


def _as_matrix(x: Any, dim: int, what: str = "vectors") -> _Matrix:
    """Rows of `dim` floats from a numpy array, a float buffer or nested sequences.

    A 1-D input of exactly dim values is one row.  C-contiguous float32
    input is used in place (copied False); everything else is converted
    once into a fresh float32 buffer.
    """
    np = sys.modules.get("numpy")
    if np is not None and isinstance(x, np.ndarray):
        a = x
        shape = a.shape
        if len(shape) == 1:         # one vector
            if shape[0] != dim:
                raise InvalidArgument(f"{what}: a 1-D array must hold one vector of "
                                      f"{dim} values, not {shape[0]}")
            rows = 1
        elif len(shape) == 2 and shape[1] == dim:
            rows = shape[0]
        else:
            raise InvalidArgument(f"{what}: expected shape (n, {dim}), got {shape}")
        copied = False
        if a.dtype != np.float32 or not a.flags.c_contiguous:
            try:
                a = np.ascontiguousarray(a, dtype=np.float32)
            except (TypeError, ValueError) as e:
                raise InvalidArgument(f"{what}: cannot convert to float32: {e}") from None
            copied = True
        return _Matrix(a.__array_interface__["data"][0], rows, dim, a, copied)

    mv = None
    if not isinstance(x, (list, tuple, str, bytes)):
        try:
            mv = memoryview(x)
        except TypeError:
            pass
    if mv is not None:
        if mv.format == "f" and mv.c_contiguous and not mv.readonly and mv.itemsize == 4:
            flat = mv.cast("B").cast("f") if mv.ndim != 1 else mv
            count = len(flat)
            if count % dim or (mv.ndim == 2 and mv.shape[1] != dim):
                raise InvalidArgument(f"{what}: {count} floats are not rows of {dim}")
            if count == 0:
                return _Matrix(0, 0, dim, None, False)
            buf = (ctypes.c_float * count).from_buffer(flat)
            return _Matrix(ctypes.addressof(buf), count // dim, dim, (buf, flat), False)
        x = mv.tolist()

    if isinstance(x, (str, bytes)):
        raise TypeError(f"{what} must be numbers, not {type(x).__name__}")
    try:
        rows = list(x)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of vectors or an array, "
                        f"not {type(x).__name__}") from None
    if rows and isinstance(rows[0], (int, float)) or (
            rows and np is not None and isinstance(rows[0], np.number)):
        rows = [rows]
    buf = array.array("f")
    for i, row in enumerate(rows):
        try:
            n_row = len(row)
        except TypeError:
            raise TypeError(f"{what}: row {i} is not a sequence of numbers") from None
        if n_row != dim:
            raise InvalidArgument(f"{what}: row {i} has {n_row} values, the collection "
                                  f"has dim {dim}")
        try:
            buf.extend(row)
        except TypeError:
            try:
                buf.extend(float(v) for v in row)
            except (TypeError, ValueError) as e:
                raise InvalidArgument(f"{what}: row {i}: {e}") from None
    if not rows:
        return _Matrix(0, 0, dim, None, True)
    ptr, _ = buf.buffer_info()
    return _Matrix(ptr, len(rows), dim, buf, True)


class Hit(NamedTuple):
    """One search result.  Smaller distance is closer (see the metric)."""

    id: int
    distance: float
    external_id: Optional[str] = None
    metadata: Any = None


class Document(NamedTuple):
    """A stored document as Collection.get returns it."""

    id: int
    external_id: Optional[str]
    metadata: Any
    vector: Optional[List[float]]
    inserted_at: _dt.datetime


class CollectionStats(NamedTuple):
    """What a collection holds (akidb_collection_stat).  Byte counts are RAM."""

    dim: int
    metric: str
    tier: str
    pinned: bool
    count: int
    deleted: int
    bytes: int
    vector_bytes: int
    graph_bytes: int
    document_bytes: int
    log_bytes: int
    index_lag: int
    created_at: _dt.datetime
    compact_bytes: int = 0    #: f16/int8 rows the graph is walked on (0 for f32)


class Snapshot(NamedTuple):
    """One snapshot of a collection in the object store."""

    id: str
    key: str
    rows: int
    bytes: int
    sha256: str
    created_at: _dt.datetime


@dataclasses.dataclass(frozen=True)
class TierInfo:
    """The tiering state of one collection (akidb_tier_info_get).

    tier: "hot", "warm" or "cold"; pinned: never demoted by the worker;
    busy: a transition is running now; last_access: when it was last
    accessed (None: never since created); accesses: in the current hour
    window; hot_bytes: RAM it holds when HOT (as of its last demotion if
    not HOT); local_bytes: checkpoint + log on local disk; cold_bytes: its
    newest tier snapshot in the store (0 if none); last_error: the C name
    of the last failed transition's code (None if none) and
    last_error_msg its message ("" if none).
    """

    tier: str
    pinned: bool
    busy: bool
    last_access: Optional[_dt.datetime]
    accesses: int
    hot_bytes: int
    local_bytes: int
    cold_bytes: int
    last_error: Optional[str]
    last_error_msg: str


@dataclasses.dataclass(frozen=True)
class TierStats:
    """The database's tiers at one moment (akidb_tier_stats_get).

    collections and bytes map "hot"/"warm"/"cold" to a count and to bytes
    (HOT: RAM, WARM: local files, COLD: objects).  transitions_ok and
    transitions_failed map (from, to) tier-name pairs to counts since
    open (only pairs that happened).  memory_budget and store_quota are
    0 when unlimited; loads counts promotions to HOT and load_seconds
    their total time.
    """

    collections: Dict[str, int]
    bytes: Dict[str, int]
    memory_budget: int
    store_bytes: int
    store_quota: int
    transitions_ok: Dict[Tuple[str, str], int]
    transitions_failed: Dict[Tuple[str, str], int]
    loads: int
    load_seconds: float
    worker_cycles: int


@dataclasses.dataclass(frozen=True)
class TierPolicy:
    """A tiering policy in effect (akidb_tier_policy_get).

    TTLs in seconds (math.inf: never); promote_per_hour: accesses within an
    hour at which the worker brings a WARM or COLD collection back;
    memory_budget, store_quota, max_collections: 0 = unlimited (the
    database's, also shown for a collection).  overrides: for a
    collection, the names of the fields it overrides (for the database:
    every field).
    """

    hot_ttl_s: float
    warm_ttl_s: float
    promote_per_hour: int
    disabled: bool
    snapshot_retention: int
    memory_budget: int
    store_quota: int
    max_collections: int
    overrides: Tuple[str, ...]


# Policy field -> (AKIDB_TIER_P_* bit, kind).  "db" fields are the database's only.
_POLICY_FIELDS = {
    "hot_ttl_s": (_capi.TIER_P_HOT_TTL, "ttl"),
    "warm_ttl_s": (_capi.TIER_P_WARM_TTL, "ttl"),
    "promote_per_hour": (_capi.TIER_P_PROMOTE, "u32"),
    "disabled": (_capi.TIER_P_DISABLED, "bool"),
    "snapshot_retention": (_capi.TIER_P_RETENTION, "u32"),
    "memory_budget": (_capi.TIER_P_MEMORY_BUDGET, "u64"),
    "store_quota": (_capi.TIER_P_STORE_QUOTA, "u64"),
    "max_collections": (_capi.TIER_P_MAX_COLLECTIONS, "u32"),
}


def _tier_value(tier: Any) -> int:
    """"hot"/"warm"/"cold" (any case) as akidb_tier; InvalidArgument otherwise."""
    if isinstance(tier, str) and tier.lower() in _TIERS:
        return _TIERS[tier.lower()]
    raise InvalidArgument(f"tier must be one of {list(TIERS)}, not {tier!r}")


def _uint(value: Any, what: str, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise InvalidArgument(f"{what} must be an int in 0..2^{bits}-1, not {value!r}")
    return value


def _u32_or_never(value: Any, what: str) -> int:
    """A uint32 option where 0 means "default" and AKIDB_NEVER "never":
    NEVER (math.inf) gives AKIDB_NEVER; 0 and the raw AKIDB_NEVER value are
    refused, as None and NEVER say those."""
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return _capi.NEVER
    v = _uint(value, what, 32)
    if v == 0 or v == _capi.NEVER:
        raise InvalidArgument(f"{what} must be in 1..2^32-2 (or NEVER)")
    return v


def _ttl(value: Any, what: str) -> int:
    """Seconds (int, or a float rounded up; math.inf = never) as a C TTL."""
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return _capi.TIER_TTL_NEVER
    if isinstance(value, float) and value > 0 and not math.isnan(value):
        value = math.ceil(value)
    return _uint(value, what, 64)


def _ttl_out(value: int) -> float:
    return math.inf if value == _capi.TIER_TTL_NEVER else value


def _policy_struct(fields: Dict[str, Any], reset: Iterable[str] = ()) -> Any:
    p = _capi.TierPolicy()
    p.version = _capi.TIER_POLICY_VERSION
    for name, value in fields.items():
        if name not in _POLICY_FIELDS:
            raise TypeError(f"unknown tier policy field {name!r} "
                            f"(one of {sorted(_POLICY_FIELDS)})")
        if value is None:
            continue
        bit, kind = _POLICY_FIELDS[name]
        if kind == "ttl":
            value = _ttl(value, name)
        elif kind == "bool":
            value = 1 if value else 0
        else:
            value = _uint(value, name, 64 if kind == "u64" else 32)
        setattr(p, name, value)
        p.set |= bit
    if isinstance(reset, str):
        reset = (reset,)
    for name in reset:
        if name not in _POLICY_FIELDS:
            raise InvalidArgument(f"unknown tier policy field {name!r} in reset")
        p.reset |= _POLICY_FIELDS[name][0]
    return p


def _policy_value(p: Any) -> TierPolicy:
    return TierPolicy(
        hot_ttl_s=_ttl_out(p.hot_ttl_s), warm_ttl_s=_ttl_out(p.warm_ttl_s),
        promote_per_hour=p.promote_per_hour, disabled=bool(p.disabled),
        snapshot_retention=p.snapshot_retention, memory_budget=p.memory_budget,
        store_quota=p.store_quota, max_collections=p.max_collections,
        overrides=tuple(n for n, (bit, _k) in _POLICY_FIELDS.items() if p.set & bit))


# --------------------------------------------------------------------------
# Object stores


class Store:
    """An object store for snapshots, uploads and the cold tier.

    Pass it to akidb.open(path, store=...).  A store may serve several
    databases; it cannot be closed while one of them is open.
    """

    def __init__(self, handle: int):
        self._h: Optional[int] = handle
        self._users = 0
        self._lock = threading.Lock()

    def _attach(self) -> int:
        with self._lock:
            if self._h is None:
                raise Misuse("the store is closed")
            self._users += 1
            return self._h

    def _detach(self) -> None:
        with self._lock:
            self._users -= 1

    def close(self) -> None:
        """Destroy the store.  Raises Misuse while an open database uses it."""
        with self._lock:
            if self._h is None:
                return
            if self._users:
                raise Misuse(f"the store is in use by {self._users} open database(s)")
            h, self._h = self._h, None
        lib.akidb_store_close(h)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if self._h is not None and not self._users:
                self.close()
        except Exception:
            pass


class LocalStore(Store):
    """A store in a local directory (created if missing; its parent must exist)."""

    def __init__(self, directory: Union[str, os.PathLike]):
        h = c_void_p()
        lib.akidb_store_local_open(_cstr(directory, "directory"), byref(h))
        super().__init__(h.value)


class MockStore(Store):
    """An in-memory store with simulated latency and injected faults, for tests."""

    FAULTS = {"503": 1, "timeout": 2, "403": 3, "partial_write": 4, "corrupt_read": 5}
    OPS = {"get": 1, "size": 2, "put": 4, "delete": 8, "list": 16, "any": 31}

    def __init__(self) -> None:
        h = c_void_p()
        lib.akidb_store_mock_open(byref(h))
        super().__init__(h.value)

    def inject(self, fault: str, *, ops: Iterable[str] = ("any",), key_glob: Optional[str] = None,
               count: int = 1, retry_after_ms: int = 0) -> None:
        """Make the next `count` matching calls fail with `fault`
        ("503", "timeout", "403", "partial_write", "corrupt_read")."""
        try:
            f = self.FAULTS[fault]
            mask = 0
            for op in ops:
                mask |= self.OPS[op]
        except KeyError as e:
            raise InvalidArgument(f"unknown fault or operation {e}") from None
        h = self._attach()
        try:
            lib.akidb_store_mock_inject(h, mask, None if key_glob is None else
                                        _cstr(key_glob, "key_glob"), f, count, retry_after_ms)
        finally:
            self._detach()

    def clear_faults(self) -> None:
        h = self._attach()
        try:
            lib.akidb_store_mock_clear_faults(h)
        finally:
            self._detach()

    def set_latency(self, ms: int) -> None:
        h = self._attach()
        try:
            lib.akidb_store_mock_set_latency(h, ms)
        finally:
            self._detach()


class S3Store(Store):
    """A store in an S3 bucket (AWS, Ceph RGW, MinIO).  No request is made until used."""

    def __init__(self, endpoint: str, bucket: str, *, access_key: Optional[str] = None,
                 secret_key: Optional[str] = None, region: Optional[str] = None,
                 path_style: bool = True, connect_timeout_ms: Optional[int] = None,
                 request_timeout_ms: Optional[int] = None, max_concurrency: Optional[int] = None,
                 multipart_threshold: Optional[int] = None, part_size: Optional[int] = None):
        cfg = _capi.default_s3_config()
        cfg.endpoint = _cstr(endpoint, "endpoint")
        cfg.bucket = _cstr(bucket, "bucket")
        if region is not None:
            cfg.region = _cstr(region, "region")
        if access_key is not None:
            cfg.access_key = _cstr(access_key, "access_key")
        if secret_key is not None:
            cfg.secret_key = _cstr(secret_key, "secret_key")
        cfg.path_style = 1 if path_style else 0
        for name, value in (("connect_timeout_ms", connect_timeout_ms),
                            ("request_timeout_ms", request_timeout_ms),
                            ("max_concurrency", max_concurrency),
                            ("multipart_threshold", multipart_threshold),
                            ("part_size", part_size)):
            if value is not None:
                setattr(cfg, name, value)
        h = c_void_p()
        lib.akidb_store_s3_open(byref(cfg), byref(h))
        super().__init__(h.value)


# --------------------------------------------------------------------------
# Database


def open(path: Union[str, os.PathLike], *, sync: str = "always", read_only: bool = False,
         file_mode: Optional[int] = None, checkpoint_bytes: int = 0, store: Optional[Store] = None,
         upload_concurrency: int = 0, dlq_max_attempts: int = 0, dlq_retry_interval_ms: int = 0,
         dlq_retry_batch: int = 0,
         log: Optional[Callable[[int, str], None]] = None,
         tier_hot_ttl_s: Optional[float] = None, tier_warm_ttl_s: Optional[float] = None,
         tier_promote_per_hour: Optional[int] = None, tier_disabled: bool = False,
         memory_budget: Optional[int] = None, store_quota: Optional[int] = None,
         snapshot_retention: Optional[int] = None, max_collections: Optional[int] = None,
         tier_interval_ms: Optional[float] = None,
         max_index_lag: Optional[float] = None) -> "Database":
    """Open (creating if needed) the database in directory `path`.

    Options (all optional):
        sync: "always" (fsync per write, default), "interval" (group commit)
            or "none" (leave flushing to the OS).
        read_only: open without writing anything; writes raise ReadOnly.
        file_mode: permission bits of created files (e.g. 0o600); default 0o644.
        checkpoint_bytes: checkpoint a collection's log past this size (0 = 64 MiB).
        store: a Store for snapshots and uploads (default: DIR/objects).
        upload_concurrency, dlq_max_attempts, dlq_retry_interval_ms,
            dlq_retry_batch: background upload settings (0 = defaults).
        log: called as log(level, message) from the library's threads
            (level 1 error .. 4 debug).

    Tiering (docs/TIERING.md; None = the library's default):
        tier_hot_ttl_s: idle seconds before HOT -> WARM (6 h; NEVER: never).
        tier_warm_ttl_s: idle seconds before WARM -> COLD (7 d; NEVER: never).
        tier_promote_per_hour: accesses per hour at which the worker brings
            a WARM or COLD collection back (10).
        tier_disabled: the worker moves nothing.
        memory_budget: bytes of HOT data the handle keeps (unlimited).
        store_quota: bytes of snapshots in the store (unlimited).
        snapshot_retention: tier snapshots kept per collection (3).
        max_collections: collections the database may hold (unlimited).
        tier_interval_ms: how often the worker runs (60000); NEVER: no
            worker thread (call db.tier_run_once() yourself).

    Indexing (None = the library's default):
        max_index_lag: documents a collection may hold unlinked (its
            "tail", which every search scans) before writes link nodes
            themselves and slow to the indexing rate (default: 8 MiB of
            vectors); NEVER: no bound (a bulk load; wait with index_wait()).

    Raises Busy if another handle (this process or another) has it open,
    Corrupt, IoError, InvalidArgument.  Use as a context manager to close it.
    """
    return Database(path, sync=sync, read_only=read_only, file_mode=file_mode,
                    checkpoint_bytes=checkpoint_bytes, store=store,
                    upload_concurrency=upload_concurrency, dlq_max_attempts=dlq_max_attempts,
                    dlq_retry_interval_ms=dlq_retry_interval_ms, dlq_retry_batch=dlq_retry_batch,
                    log=log, tier_hot_ttl_s=tier_hot_ttl_s, tier_warm_ttl_s=tier_warm_ttl_s,
                    tier_promote_per_hour=tier_promote_per_hour, tier_disabled=tier_disabled,
                    memory_budget=memory_budget, store_quota=store_quota,
                    snapshot_retention=snapshot_retention, max_collections=max_collections,
                    tier_interval_ms=tier_interval_ms, max_index_lag=max_index_lag)


class Database:
    """An open AkiDB database (one akidb handle).  Thread safe.

    Create it with akidb.open(); close it with close() or a `with` block.
    """

    def __init__(self, path: Union[str, os.PathLike], *, sync: str = "always",
                 read_only: bool = False, file_mode: Optional[int] = None,
                 checkpoint_bytes: int = 0, store: Optional[Store] = None,
                 upload_concurrency: int = 0, dlq_max_attempts: int = 0,
                 dlq_retry_interval_ms: int = 0, dlq_retry_batch: int = 0,
                 log: Optional[Callable[[int, str], None]] = None,
                 tier_hot_ttl_s: Optional[float] = None, tier_warm_ttl_s: Optional[float] = None,
                 tier_promote_per_hour: Optional[int] = None, tier_disabled: bool = False,
                 memory_budget: Optional[int] = None, store_quota: Optional[int] = None,
                 snapshot_retention: Optional[int] = None, max_collections: Optional[int] = None,
                 tier_interval_ms: Optional[float] = None,
                 max_index_lag: Optional[float] = None):
        self._h: Optional[int] = None
        self._cv = threading.Condition(threading.Lock())
        self._active = 0           # calls in flight
        self._exclusive = False    # an exclusive operation runs or waits
        self._dims: Dict[str, int] = {}
        self._store: Optional[Store] = None
        self._log_cb = None
        self.path = os.fspath(path)

        o = _capi.default_options()
        try:
            o.sync_mode = _SYNC[sync]
        except KeyError:
            raise InvalidArgument(f"sync must be one of {sorted(_SYNC)}, not {sync!r}") from None
        o.read_only = 1 if read_only else 0
        if file_mode is not None:
            o.file_mode = file_mode
        o.checkpoint_bytes = checkpoint_bytes
        o.upload_concurrency = upload_concurrency
        o.dlq_max_attempts = dlq_max_attempts
        o.dlq_retry_interval_ms = dlq_retry_interval_ms
        o.dlq_retry_batch = dlq_retry_batch
        # Tiering: None leaves the field 0, the library's default.  The
        # struct's 0 also means "default", so an explicit 0 is refused
        # where it would silently not mean what it says.
        for name, value in (("tier_hot_ttl_s", tier_hot_ttl_s),
                            ("tier_warm_ttl_s", tier_warm_ttl_s)):
            if value is not None:
                v = _ttl(value, name)
                if v == 0:
                    raise InvalidArgument(f"{name} must be >= 1 second (or NEVER)")
                setattr(o, name, v)
        for name, value, bits in (("tier_promote_per_hour", tier_promote_per_hour, 32),
                                  ("memory_budget", memory_budget, 64),
                                  ("store_quota", store_quota, 64),
                                  ("snapshot_retention", snapshot_retention, 32),
                                  ("max_collections", max_collections, 32)):
            if value is not None:
                setattr(o, name, _uint(value, name, bits))
        o.tier_disabled = 1 if tier_disabled else 0
        for name, value in (("tier_interval_ms", tier_interval_ms),
                            ("max_index_lag", max_index_lag)):
            if value is not None:
                setattr(o, name, _u32_or_never(value, name))
        if log is not None:
            def _log(_ctx: Any, level: int, msg: bytes) -> None:
                log(level, msg.decode("utf-8", "replace"))
            self._log_cb = _capi.LOG_FN(_log)
            o.log_fn = self._log_cb
        if store is not None:
            if not isinstance(store, Store):
                raise TypeError("store must be an akidb.Store")
            o.store = store._attach()
            self._store = store
        h = c_void_p()
        try:
            lib.akidb_open(_cstr(path, "path"), byref(o), byref(h))
        except BaseException:
            if self._store is not None:
                self._store._detach()
                self._store = None
            raise
        self._h = h.value
        _open_databases.add(self)

    # -- handle guard -------------------------------------------------------

    def _enter(self) -> int:
        cv = self._cv
        with cv:
            while self._exclusive:
                cv.wait()
            if self._h is None:
                raise Misuse("the database is closed")
            self._active += 1
            return self._h

    def _leave(self) -> None:
        cv = self._cv
        with cv:
            self._active -= 1
            if self._active == 0 and self._exclusive:
                cv.notify_all()

    def _enter_exclusive(self) -> int:
        cv = self._cv
        with cv:
            while self._exclusive:
                cv.wait()
            if self._h is None:
                raise Misuse("the database is closed")
            self._exclusive = True
            while self._active:
                cv.wait()
            self._dims.clear()
            return self._h

    def _leave_exclusive(self) -> None:
        with self._cv:
            self._exclusive = False
            self._cv.notify_all()

    def _dim(self, h: int, name: str, cname: bytes) -> int:
        dim = self._dims.get(name)
        if dim is None:
            cfg = _capi.default_config(0, 0)
            lib.akidb_collection_info(h, cname, byref(cfg))
            dim = self._dims[name] = cfg.dim
        return dim

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Close the database, checkpointing collections whose log holds
        records.  Waits for calls in flight in other threads; later calls
        raise Misuse.  Closing twice is a no-op."""
        cv = self._cv
        with cv:
            while self._exclusive:
                cv.wait()
            if self._h is None:
                return
            self._exclusive = True
            while self._active:
                cv.wait()
            h, self._h = self._h, None
        try:
            lib.akidb_close(h)
        finally:
            with cv:
                self._exclusive = False
                cv.notify_all()
            if self._store is not None:
                self._store._detach()
                self._store = None

    @property
    def closed(self) -> bool:
        return self._h is None

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_h", None) is not None:
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._h is None else "open"
        return f"<akidb.Database {self.path!r} {state}>"

    # -- collections --------------------------------------------------------

    def create_collection(self, name: str, dim: int, metric: str = "cosine", *,
                          m: Optional[int] = None, ef_construction: Optional[int] = None,
                          ef_search: Optional[int] = None, storage: str = "f32",
                          exact_vectors: str = "ram", rerank: Optional[int] = None,
                          exist_ok: bool = False) -> "Collection":
        """Create collection `name` ([A-Za-z0-9_-]{1,64}) of `dim` dimensions.

        metric: "cosine" (1 - cos; vectors normalised on insert), "l2"
        (squared Euclidean) or "dot" (negative inner product).
        m, ef_construction, ef_search: HNSW parameters (defaults 16, 200, 64).
        storage: what the graph search walks on: "f32" (the vectors), "f16"
            (2 bytes a dimension) or "int8" (1 byte, trained on the first
            4096 vectors).
        exact_vectors: for f16/int8, "ram" keeps the f32 vectors too and
            re-ranks the best rerank x k candidates on them (exact distances,
            f32 recall); "file" reads them from the collection's checkpoint
            file instead (the same results, far less RAM once a checkpoint
            holds them; a system call per re-ranked vector); "none" keeps
            only the compact copy (least memory, approximate distances).
            See akidb_exact_vectors in akidb.h.
        rerank: candidates re-ranked per hit (1..64; None = 2).
        exist_ok: return the existing collection if it has this dim and
        metric instead of raising AlreadyExists.
        """
        try:
            metric_id = _METRICS[metric]
        except KeyError:
            raise InvalidArgument(f"metric must be one of {sorted(_METRICS)}, "
                                  f"not {metric!r}") from None
        if not isinstance(dim, int) or isinstance(dim, bool) or not 0 < dim < 2**32:
            raise InvalidArgument(f"dim must be a positive int, not {dim!r}")
        cfg = _capi.default_config(dim, metric_id)
        try:
            cfg.storage = _STORAGE[storage]
        except (KeyError, TypeError):
            raise InvalidArgument(f"storage must be one of {sorted(_STORAGE)}, "
                                  f"not {storage!r}") from None
        try:
            cfg.exact = _EXACT[exact_vectors]
        except (KeyError, TypeError):
            raise InvalidArgument(f"exact_vectors must be one of {sorted(_EXACT)}, "
                                  f"not {exact_vectors!r}") from None
        for field, value in (("hnsw_m", m), ("ef_construction", ef_construction),
                             ("ef_search", ef_search), ("rerank", rerank)):
            if value is not None:
                if not isinstance(value, int) or not 0 < value < 2**32:
                    raise InvalidArgument(f"{field} must be a positive int, not {value!r}")
                setattr(cfg, field, value)
        cname = _cstr(name, "collection name")
        h = self._enter_exclusive()
        try:
            try:
                lib.akidb_collection_create(h, cname, byref(cfg))
            except AlreadyExists:
                if not exist_ok:
                    raise
                have = _capi.default_config(0, 0)
                lib.akidb_collection_info(h, cname, byref(have))
                if have.dim != dim or have.metric != metric_id:
                    raise AlreadyExists(
                        f"collection {name} exists with dim {have.dim}, metric "
                        f"{_METRIC_NAMES.get(have.metric, have.metric)}, not dim {dim}, "
                        f"metric {metric}") from None
        finally:
            self._leave_exclusive()
        return Collection(self, name)

    def collection(self, name: str) -> "Collection":
        """The existing collection `name`; raises NotFound if there is none."""
        cname = _cstr(name, "collection name")
        h = self._enter()
        try:
            self._dim(h, name, cname)
        finally:
            self._leave()
        return Collection(self, name)

    __getitem__ = collection

    def __contains__(self, name: str) -> bool:
        try:
            self.collection(name)
            return True
        except NotFound:
            return False

    def collections(self) -> List[str]:
        """Names of every collection, in ascending byte order."""
        names = c_void_p()
        n = c_size_t()
        h = self._enter()
        try:
            lib.akidb_collection_list(h, byref(names), byref(n))
        finally:
            self._leave()
        return _capi.take_string_list(names.value, n.value)

    def drop_collection(self, name: str) -> None:
        """Drop collection `name` with all its documents and files."""
        cname = _cstr(name, "collection name")
        h = self._enter_exclusive()
        try:
            lib.akidb_collection_drop(h, cname)
        finally:
            self._leave_exclusive()

    def checkpoint(self, name: Optional[str] = None) -> None:
        """Checkpoint collection `name` (None = all) and empty its log."""
        cname = None if name is None else _cstr(name, "collection name")
        h = self._enter()
        try:
            lib.akidb_checkpoint(h, cname)
        finally:
            self._leave()

    def index_wait(self, name: Optional[str] = None, timeout_ms: Optional[int] = None) -> None:
        """Wait until every acknowledged document of collection `name`
        (None = all) is linked into its HNSW graph (index_lag 0).  Searches
        do not need this (they scan the unlinked tail); it is for tests and
        benchmarks that want the complete graph.  timeout_ms None = no
        limit; when it passes first, raises Busy.  The GIL is released
        while it waits."""
        cname = None if name is None else _cstr(name, "collection name")
        t = _capi.NEVER if timeout_ms is None else _uint(timeout_ms, "timeout_ms", 32)
        h = self._enter()
        try:
            lib.akidb_index_wait(h, cname, t)
        finally:
            self._leave()

    def import_parquet(self, name: str, path: Union[str, os.PathLike], *,
                       vector_column: str = "vector", id_column: Optional[str] = None,
                       metadata_columns: Optional[Sequence[str]] = None,
                       metric: Optional[str] = None,
                       progress: Optional[Callable[[int, int], None]] = None,
                       storage: Optional[str] = None, exact_vectors: str = "ram",
                       rerank: Optional[int] = None) -> int:
        """Import the Parquet file `path` into collection `name` (created
        with the file's dimension if missing, and `metric`: None = the
        file's akidb.metric (a file AkiDB exported), else "l2"; a metric
        that contradicts the file or an existing collection raises
        InvalidArgument; rows whose external id exists are replaced).
        progress(rows_done, rows_total) is called after each batch.
        storage, exact_vectors, rerank: for a collection the import
        creates, as in create_collection; storage None = the file's
        akidb.storage (a file AkiDB wrote from an f16/int8 collection),
        else "f32"; into an existing collection only its own storage.
        Returns the number of rows imported."""
        opts = _capi.ImportOptions()
        opts.version = _capi.IMPORT_OPTIONS_VERSION
        opts.vector_column = _cstr(vector_column, "vector_column")
        if id_column is not None:
            opts.id_column = _cstr(id_column, "id_column")
        keep: List[Any] = []
        if metadata_columns is not None:
            cols = [_cstr(c, "metadata column") for c in metadata_columns]
            arr = (c_char_p * len(cols))(*cols)
            keep.append(arr)
            opts.metadata_columns = ctypes.cast(arr, ctypes.POINTER(c_char_p))
            opts.n_metadata_columns = len(cols)
        try:
            opts.metric = 0 if metric is None else _METRICS[metric]
        except KeyError:
            raise InvalidArgument(f"metric must be one of {sorted(_METRICS)}") from None
        try:
            opts.storage = 0 if storage is None else _STORAGE[storage]
            opts.exact = _EXACT[exact_vectors]
        except (KeyError, TypeError):
            raise InvalidArgument(f"storage must be None or one of {sorted(_STORAGE)}, "
                                  f"exact_vectors one of {sorted(_EXACT)}") from None
        if rerank is not None:
            if not isinstance(rerank, int) or isinstance(rerank, bool) or not 1 <= rerank <= 64:
                raise InvalidArgument(f"rerank must be an int in 1..64, not {rerank!r}")
            opts.rerank = rerank
        if progress is not None:
            cb = _capi.PROGRESS_FN(lambda _ctx, done, total: progress(done, total))
            keep.append(cb)
            opts.progress = cb
        rows = c_uint64()
        cname = _cstr(name, "collection name")
        cpath = _cstr(path, "path")
        h = self._enter_exclusive()
        try:
            lib.akidb_import_parquet(h, cname, cpath, byref(opts), byref(rows))
        finally:
            self._leave_exclusive()
        return rows.value

    # -- metrics and records ------------------------------------------------

    def metrics_text(self) -> str:
        """Every metric in the Prometheus text exposition format."""
        text = c_void_p()
        h = self._enter()
        try:
            lib.akidb_metrics_render(h, byref(text))
        finally:
            self._leave()
        return _capi.take_string(text.value) or ""

    def metrics(self) -> Dict[str, float]:
        """Every metric sample: {"name" or "name{labels}": value}."""
        out: Dict[str, float] = {}
        for line in self.metrics_text().splitlines():
            if not line or line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            try:
                out[series] = float(value)
            except ValueError:
                continue
        return out

    def metric(self, name: str) -> int:
        """One metric's value, e.g. db.metric("akidb_searches_total")."""
        v = c_int64()
        cname = _cstr(name, "metric name")
        h = self._enter()
        try:
            lib.akidb_metric_value(h, cname, byref(v))
        finally:
            self._leave()
        return v.value

    def records(self, namespace: str) -> "Records":
        """The application records of `namespace` as a mutable mapping
        str -> bytes (durable key/value records kept in the catalog)."""
        return Records(self, namespace)

    def upload_wait(self) -> None:
        """Wait until every queued background upload has finished."""
        h = self._enter()
        try:
            lib.akidb_upload_wait(h)
        finally:
            self._leave()

    # -- tiering ------------------------------------------------------------

    def tier_stats(self) -> TierStats:
        """Collections and bytes per tier, transitions, loads (akidb_tier_stats_get)."""
        st = _capi.TierStats()
        st.version = _capi.TIER_STATS_VERSION
        h = self._enter()
        try:
            lib.akidb_tier_stats_get(h, byref(st))
        finally:
            self._leave()
        names = _TIER_NAMES

        def pairs(m: Any) -> Dict[Tuple[str, str], int]:
            return {(names[a], names[b]): m[a][b] for a in names for b in names if m[a][b]}

        return TierStats(
            collections={names[t]: st.collections[t] for t in names},
            bytes={names[t]: st.bytes[t] for t in names},
            memory_budget=st.memory_budget, store_bytes=st.store_bytes,
            store_quota=st.store_quota, transitions_ok=pairs(st.transitions_ok),
            transitions_failed=pairs(st.transitions_failed), loads=st.loads,
            load_seconds=st.load_us_total / 1e6, worker_cycles=st.worker_cycles)

    def tier_run_once(self) -> None:
        """Run one cycle of the tiering worker now, in this thread (TTLs,
        promotions, the memory budget; the GIL is released meanwhile).
        Failed transitions do not raise: see Collection.tier_info()."""
        h = self._enter()
        try:
            lib.akidb_tier_run_once(h)
        finally:
            self._leave()

    def tier_policy(self) -> TierPolicy:
        """The database's tiering policy in effect."""
        p = _capi.TierPolicy()
        p.version = _capi.TIER_POLICY_VERSION
        h = self._enter()
        try:
            lib.akidb_tier_policy_get(h, None, byref(p))
        finally:
            self._leave()
        return _policy_value(p)

    def set_tier_policy(self, *, hot_ttl_s: Optional[float] = None,
                        warm_ttl_s: Optional[float] = None,
                        promote_per_hour: Optional[int] = None,
                        disabled: Optional[bool] = None,
                        snapshot_retention: Optional[int] = None,
                        memory_budget: Optional[int] = None, store_quota: Optional[int] = None,
                        max_collections: Optional[int] = None) -> None:
        """Change the database's tiering policy for this handle (the next
        open starts from its options again); only the fields given change.
        TTLs in seconds (NEVER: never); memory_budget, store_quota and
        max_collections 0 = unlimited.  Takes effect at the next worker
        cycle.  Raises InvalidArgument for a bad value."""
        p = _policy_struct(dict(hot_ttl_s=hot_ttl_s, warm_ttl_s=warm_ttl_s,
                                promote_per_hour=promote_per_hour, disabled=disabled,
                                snapshot_retention=snapshot_retention,
                                memory_budget=memory_budget, store_quota=store_quota,
                                max_collections=max_collections))
        h = self._enter()
        try:
            lib.akidb_tier_policy_apply(h, None, byref(p))
        finally:
            self._leave()


class Records(MutableMapping):
    """Durable key/value records of one namespace (akidb_kv_*).

    Keys are str (1..1024 bytes of UTF-8), values bytes (a str value is
    stored as UTF-8); at most 1 MiB each.
    """

    def __init__(self, db: Database, namespace: str):
        self._db = db
        self.namespace = namespace
        self._ns = _cstr(namespace, "namespace")

    def __getitem__(self, key: str) -> bytes:
        value = c_void_p()
        n = c_size_t()
        ckey = _cstr(key, "key")
        h = self._db._enter()
        try:
            try:
                lib.akidb_kv_get(h, self._ns, ckey, byref(value), byref(n))
            except NotFound:
                raise KeyError(key) from None
        finally:
            self._db._leave()
        try:
            return ctypes.string_at(value.value, n.value)
        finally:
            lib.akidb_free(value.value)

    def __setitem__(self, key: str, value: Union[bytes, str]) -> None:
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("a record's value must be bytes or str")
        value = bytes(value)
        ckey = _cstr(key, "key")
        h = self._db._enter()
        try:
            lib.akidb_kv_put(h, self._ns, ckey, value, len(value))
        finally:
            self._db._leave()

    def __delitem__(self, key: str) -> None:
        ckey = _cstr(key, "key")
        h = self._db._enter()
        try:
            try:
                lib.akidb_kv_delete(h, self._ns, ckey)
            except NotFound:
                raise KeyError(key) from None
        finally:
            self._db._leave()

    def keys_list(self) -> List[str]:
        keys = c_void_p()
        n = c_size_t()
        h = self._db._enter()
        try:
            lib.akidb_kv_list(h, self._ns, byref(keys), byref(n))
        finally:
            self._db._leave()
        return _capi.take_string_list(keys.value, n.value)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_list())

    def __len__(self) -> int:
        return len(self.keys_list())


# --------------------------------------------------------------------------
# Collection


class Collection:
    """A collection of documents in an open Database.  Thread safe.

    Get one from db.create_collection() or db.collection(); it stays valid
    as long as the database is open and the collection exists.
    """

    def __init__(self, db: Database, name: str):
        self.db = db
        self.name = name
        self._cname = _cstr(name, "collection name")

    def __repr__(self) -> str:
        return f"<akidb.Collection {self.name!r}>"

    @property
    def dim(self) -> int:
        """Number of dimensions of the vectors."""
        h = self.db._enter()
        try:
            return self.db._dim(h, self.name, self._cname)
        finally:
            self.db._leave()

    def config(self) -> Dict[str, Any]:
        """The collection's settings: dim, metric, m, ef_construction, ef_search,
        storage, exact_vectors, rerank (0: the default)."""
        cfg = _capi.default_config(0, 0)
        h = self.db._enter()
        try:
            lib.akidb_collection_info(h, self._cname, byref(cfg))
        finally:
            self.db._leave()
        return {"dim": cfg.dim, "metric": _METRIC_NAMES.get(cfg.metric, str(cfg.metric)),
                "m": cfg.hnsw_m, "ef_construction": cfg.ef_construction,
                "ef_search": cfg.ef_search,
                "storage": _STORAGE_NAMES.get(cfg.storage or _capi.STORAGE_F32, str(cfg.storage)),
                "exact_vectors": _EXACT_NAMES.get(cfg.exact, str(cfg.exact)),
                "rerank": cfg.rerank}

    @property
    def metric(self) -> str:
        """"l2", "cosine" or "dot"."""
        return self.config()["metric"]

    def stats(self) -> CollectionStats:
        """Counts and memory use (akidb_collection_stat)."""
        st = _capi.CollectionStats()
        st.version = _capi.COLLECTION_STATS_VERSION
        h = self.db._enter()
        try:
            lib.akidb_collection_stat(h, self._cname, byref(st))
        finally:
            self.db._leave()
        return CollectionStats(
            dim=st.dim, metric=_METRIC_NAMES.get(st.metric, str(st.metric)),
            tier=_TIER_NAMES.get(st.tier, str(st.tier)), pinned=bool(st.pinned),
            count=st.count, deleted=st.deleted, bytes=st.bytes, vector_bytes=st.vector_bytes,
            graph_bytes=st.graph_bytes, document_bytes=st.document_bytes,
            log_bytes=st.log_bytes, index_lag=st.index_lag, created_at=_utc(st.created_at_us),
            compact_bytes=st.compact_bytes)

    def __len__(self) -> int:
        n = c_uint64()
        h = self.db._enter()
        try:
            lib.akidb_collection_count(h, self._cname, byref(n))
        finally:
            self.db._leave()
        return n.value

    count = __len__

    # -- writes -------------------------------------------------------------

    def _write(self, fn: Any, vectors: Any, external_ids: Any, metadata: Any,
               upsert: bool) -> List[int]:
        h = self.db._enter()
        try:
            dim = self.db._dim(h, self.name, self._cname)
            mat = _as_matrix(vectors, dim)
            n = mat.n
            if isinstance(external_ids, (str, bytes)):
                external_ids = [external_ids]
            if metadata is not None and not isinstance(metadata, (list, tuple)):
                # One value for one row; any other iterable is the rows'.
                if isinstance(metadata, (dict, str, int, float)) or n == 1:
                    metadata = [metadata]
                else:
                    metadata = list(metadata)
            ext_arr = meta_arr = None
            if external_ids is not None:
                external_ids = list(external_ids)
                if len(external_ids) != n:
                    raise InvalidArgument(f"{len(external_ids)} external ids for {n} vectors")
                ext = [None if e is None else _cstr(e, f"external id of row {i}")
                       for i, e in enumerate(external_ids)]
                if upsert and any(e is None for e in ext):
                    raise InvalidArgument("upsert needs an external id for every row")
                ext_arr = (c_char_p * n)(*ext) if n else None
            elif upsert and n:
                raise InvalidArgument("upsert needs external_ids")
            if metadata is not None:
                if len(metadata) != n:
                    raise InvalidArgument(f"{len(metadata)} metadata entries for {n} vectors")
                meta = [_metadata_text(m, i) for i, m in enumerate(metadata)]
                meta_arr = (c_char_p * n)(*meta) if n else None
            ids = (c_uint64 * max(n, 1))()
            fn(h, self._cname, n, mat.ptr or None, ext_arr, meta_arr, ids)
            return list(ids[:n])
        finally:
            self.db._leave()

    def insert(self, vectors: Any, external_ids: Optional[Sequence[Optional[str]]] = None,
               metadata: Optional[Sequence[Any]] = None) -> List[int]:
        """Insert documents; returns their new ids.

        vectors: an (n, dim) array (numpy, zero-copy when C-contiguous
            float32), a sequence of n sequences of dim numbers, or one
            vector of dim numbers.
        external_ids: None, or n unique str (None entries allowed).
        metadata: None, or n JSON-serialisable values (usually dicts).
        The batch is atomic: on any error nothing is inserted.
        Raises InvalidArgument (NaN, wrong shape, bad external id...),
        AlreadyExists (external id taken), NotFound, ReadOnly, IoError.
        """
        return self._write(lib.akidb_insert, vectors, external_ids, metadata, False)

    def upsert(self, vectors: Any, external_ids: Sequence[str],
               metadata: Optional[Sequence[Any]] = None) -> List[int]:
        """Insert or replace documents keyed by external id (required for
        every row); a replaced document keeps its id.  Returns the ids."""
        return self._write(lib.akidb_upsert, vectors, external_ids, metadata, True)

    def delete(self, ids: Union[int, Iterable[int]]) -> None:
        """Delete one document id or each of several (one durable write per
        id: not atomic across ids).  Raises NotFound for an id that is not
        a live document (the ids before it are deleted)."""
        if isinstance(ids, int):
            ids = (ids,)
        h = self.db._enter()
        try:
            for i in ids:
                lib.akidb_delete(h, self._cname, _as_id(i))
        finally:
            self.db._leave()

    # -- reads --------------------------------------------------------------

    def lookup(self, external_id: str) -> int:
        """The id of the live document with `external_id` (NotFound if none)."""
        out = c_uint64()
        cext = _cstr(external_id, "external id")
        h = self.db._enter()
        try:
            lib.akidb_lookup(h, self._cname, cext, byref(out))
        finally:
            self.db._leave()
        return out.value

    def get(self, id: int, *, vector: bool = True) -> Document:
        """Document `id` with its external id, metadata and (unless
        vector=False) its stored vector (normalised for cosine)."""
        h = self.db._enter()
        try:
            vec = None
            if vector:
                vec = (ctypes.c_float * self.db._dim(h, self.name, self._cname))()
            doc = _capi.Document()
            doc.version = _capi.DOCUMENT_VERSION
            try:
                lib.akidb_document_get(h, self._cname, _as_id(id), vec, byref(doc))
                ext = ctypes.string_at(doc.external_id).decode("utf-8") \
                    if doc.external_id else None
                meta = _metadata_value(doc.metadata_json)
            finally:
                lib.akidb_document_clear(byref(doc))
        finally:
            self.db._leave()
        return Document(id=doc.id, external_id=ext, metadata=meta,
                        vector=list(vec) if vec is not None else None,
                        inserted_at=_utc(doc.inserted_at_us))

    def _hits(self, h: int, hits: Any, n: int, documents: bool) -> List[Hit]:
        # One unpack of the C array instead of a ctypes object per field.
        pairs = _HIT.iter_unpack(memoryview(hits).cast("B")[:n * _HIT.size])
        if not documents:
            return [Hit(i, d) for i, d in pairs]
        out = []
        doc = _capi.Document()
        for hid, dist in pairs:
            doc.version = _capi.DOCUMENT_VERSION
            try:
                lib.akidb_document_get(h, self._cname, hid, None, byref(doc))
            except NotFound:
                continue    # deleted since the search: it is no longer a result
            try:
                ext = ctypes.string_at(doc.external_id).decode("utf-8") \
                    if doc.external_id else None
                meta = _metadata_value(doc.metadata_json)
            finally:
                lib.akidb_document_clear(byref(doc))
            out.append(Hit(hid, dist, ext, meta))
        return out

    @staticmethod
    def _params(ef: Optional[int], exact: bool) -> Any:
        if ef is None and not exact:
            return None     # the library's defaults
        p = _capi.SearchParams()
        p.version = _capi.SEARCH_PARAMS_VERSION
        if ef is not None:
            if not isinstance(ef, int) or not 0 < ef < 2**32:
                raise InvalidArgument(f"ef must be a positive int, not {ef!r}")
            p.ef = ef
        p.exact = 1 if exact else 0
        return p

    @staticmethod
    def _check_k(k: int) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise InvalidArgument(f"k must be an int in 1..{MAX_K}, not {k!r}")

    def search(self, query: Any, k: int = 10, *, ef: Optional[int] = None,
               exact: bool = False, documents: bool = True) -> List[Hit]:
        """The k documents nearest to `query` (dim numbers), closest first.

        ef: HNSW candidate list size (None = the collection's ef_search).
        exact: scan every document instead of walking the graph.
        documents: fill each hit's external_id and metadata (one extra
            library call per hit); False returns ids and distances only.
        Fewer than k hits come back when the collection holds fewer live
        documents.  Use search_batch for a 2-D array of queries.
        """
        self._check_k(k)
        params = self._params(ef, exact)
        h = self.db._enter()
        try:
            dim = self.db._dim(h, self.name, self._cname)
            np = sys.modules.get("numpy")
            if np is not None and isinstance(query, np.ndarray) and query.ndim != 1:
                raise InvalidArgument(f"query must be 1-D of {dim} values (got shape "
                                      f"{query.shape}); use search_batch for several")
            mat = _as_matrix(query, dim, "query")
            if mat.n != 1:
                raise InvalidArgument(f"query must be one vector of {dim} values; "
                                      "use search_batch for several")
            hits = (_capi.Hit * k)()
            n = c_uint32()
            lib.akidb_search(h, self._cname, mat.ptr, k, params, hits, byref(n))
            return self._hits(h, hits, n.value, documents)
        finally:
            self.db._leave()

    def search_batch(self, queries: Any, k: int = 10, *, ef: Optional[int] = None,
                     exact: bool = False, documents: bool = True,
                     workers: int = 1) -> List[List[Hit]]:
        """search() for each row of `queries` ((n, dim) array or n vectors).

        workers > 1 runs that many searches at once on a thread pool (the
        library searches in parallel; the GIL is released during each).
        Returns one list of hits per query, in order.
        """
        self._check_k(k)
        params = self._params(ef, exact)
        h = self.db._enter()
        try:
            dim = self.db._dim(h, self.name, self._cname)
            mat = _as_matrix(queries, dim, "queries")
            row_bytes = dim * 4

            def one(i: int) -> List[Hit]:
                hits = (_capi.Hit * k)()
                n = c_uint32()
                lib.akidb_search(h, self._cname, mat.ptr + i * row_bytes, k, params,
                                 hits, byref(n))
                return self._hits(h, hits, n.value, documents)

            if workers <= 1 or mat.n <= 1:
                return [one(i) for i in range(mat.n)]
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(max_workers=workers) as pool:
                return list(pool.map(one, range(mat.n)))
        finally:
            self.db._leave()

    # -- tiering ------------------------------------------------------------

    @property
    def tier(self) -> str:
        """Where the data lives now: "hot" (RAM), "warm" (local file) or
        "cold" (object store).  Does not load the collection."""
        out = ctypes.c_int()
        h = self.db._enter()
        try:
            lib.akidb_tier_get(h, self._cname, byref(out))
        finally:
            self.db._leave()
        return _TIER_NAMES.get(out.value, str(out.value))

    def set_tier(self, tier: str) -> None:
        """Move the collection to `tier` ("hot", "warm" or "cold") now and
        return once it is there (from cold: once its local copy is
        durable).  Pinned collections move too (a pin only stops the
        worker).  The GIL is released during the transition.

        Raises InvalidArgument (a ValueError) for another tier value;
        QuotaExceeded (memory budget or store quota), Unavailable (the
        store), Corrupt, IoError, ReadOnly.  On an error the collection
        stays where it was.
        """
        t = _tier_value(tier)
        h = self.db._enter()
        try:
            lib.akidb_tier_set(h, self._cname, t)
        finally:
            self.db._leave()

    def _pin(self, pinned: int) -> None:
        h = self.db._enter()
        try:
            lib.akidb_tier_pin(h, self._cname, pinned)
        finally:
            self.db._leave()

    def pin(self) -> None:
        """Pin the collection: the tiering worker and the memory budget never
        demote it (set_tier still moves it).  Durable."""
        self._pin(1)

    def unpin(self) -> None:
        """Undo pin(): the policy applies to the collection again."""
        self._pin(0)

    @property
    def pinned(self) -> bool:
        """Whether the collection is pinned."""
        return self.tier_info().pinned

    def tier_info(self) -> TierInfo:
        """The collection's tiering state (akidb_tier_info_get); does not load it."""
        ti = _capi.TierInfo()
        ti.version = _capi.TIER_INFO_VERSION
        h = self.db._enter()
        try:
            lib.akidb_tier_info_get(h, self._cname, byref(ti))
        finally:
            self.db._leave()
        return TierInfo(
            tier=_TIER_NAMES.get(ti.tier, str(ti.tier)), pinned=bool(ti.pinned),
            busy=bool(ti.busy),
            last_access=_utc(ti.last_access_us) if ti.last_access_us else None,
            accesses=ti.accesses, hot_bytes=ti.hot_bytes, local_bytes=ti.local_bytes,
            cold_bytes=ti.cold_bytes,
            last_error=_capi.errname(ti.last_error) if ti.last_error else None,
            last_error_msg=ti.last_error_msg.decode("utf-8", "replace"))

    def tier_policy(self) -> TierPolicy:
        """The tiering policy in effect for this collection (its overrides
        over the database's values; .overrides names them)."""
        p = _capi.TierPolicy()
        p.version = _capi.TIER_POLICY_VERSION
        h = self.db._enter()
        try:
            lib.akidb_tier_policy_get(h, self._cname, byref(p))
        finally:
            self.db._leave()
        return _policy_value(p)

    def set_tier_policy(self, *, hot_ttl_s: Optional[float] = None,
                        warm_ttl_s: Optional[float] = None,
                        promote_per_hour: Optional[int] = None,
                        disabled: Optional[bool] = None,
                        snapshot_retention: Optional[int] = None,
                        reset: Iterable[str] = ()) -> None:
        """Override the database's tiering policy for this collection
        (saved in the catalog); only the fields given change, and the
        fields named in `reset` go back to the database's value.  TTLs in
        seconds (NEVER: never).  Raises InvalidArgument, ReadOnly."""
        p = _policy_struct(dict(hot_ttl_s=hot_ttl_s, warm_ttl_s=warm_ttl_s,
                                promote_per_hour=promote_per_hour, disabled=disabled,
                                snapshot_retention=snapshot_retention), reset)
        h = self.db._enter()
        try:
            lib.akidb_tier_policy_apply(h, self._cname, byref(p))
        finally:
            self.db._leave()

    # -- snapshots ----------------------------------------------------------

    def snapshot(self) -> str:
        """Snapshot the collection to the object store; returns the snapshot id."""
        buf = ctypes.create_string_buffer(_capi.SNAPSHOT_ID_LEN)
        h = self.db._enter()
        try:
            lib.akidb_snapshot_create(h, self._cname, buf, len(buf))
        finally:
            self.db._leave()
        return buf.value.decode("ascii")

    def snapshots(self) -> List[Snapshot]:
        """The collection's snapshots, newest first."""
        arr = c_void_p()
        n = c_size_t()
        h = self.db._enter()
        try:
            lib.akidb_snapshot_list(h, self._cname, byref(arr), byref(n))
        finally:
            self.db._leave()
        if not arr.value:
            return []
        try:
            ptrs = ctypes.cast(arr, ctypes.POINTER(ctypes.POINTER(_capi.SnapshotInfo)))
            out = []
            for i in range(n.value):
                e = ptrs[i].contents
                out.append(Snapshot(id=e.id.decode(), key=e.key.decode(), rows=e.rows,
                                    bytes=e.bytes, sha256=e.sha256.decode(),
                                    created_at=_utc(e.created_at_us)))
            return out
        finally:
            lib.akidb_free(arr.value)

    def restore(self, snapshot_id: Optional[str] = None) -> None:
        """Replace the collection's contents with snapshot `snapshot_id`
        (None: the newest that verifies).  Raises Corrupt for a damaged
        snapshot (the collection is left as it was)."""
        sid = None if snapshot_id is None else _cstr(snapshot_id, "snapshot id")
        h = self.db._enter()
        try:
            lib.akidb_snapshot_restore(h, self._cname, sid)
        finally:
            self.db._leave()

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Delete snapshot `snapshot_id` (the object and its catalog entry)."""
        sid = _cstr(snapshot_id, "snapshot id")
        h = self.db._enter()
        try:
            lib.akidb_snapshot_delete(h, self._cname, sid)
        finally:
            self.db._leave()

    def export_parquet(self, path: Union[str, os.PathLike]) -> None:
        """Write the collection to the local Parquet file `path`."""
        cpath = _cstr(path, "path")
        h = self.db._enter()
        try:
            lib.akidb_export_parquet(h, self._cname, cpath)
        finally:
            self.db._leave()

    def checkpoint(self) -> None:
        """Write a checkpoint of this collection and empty its log."""
        self.db.checkpoint(self.name)

    def index_wait(self, timeout_ms: Optional[int] = None) -> None:
        """Wait until this collection's graph holds every acknowledged
        document (Database.index_wait)."""
        self.db.index_wait(self.name, timeout_ms)


# Databases still open at interpreter exit are closed then, while Python
# still runs: close() checkpoints, and the library's background threads stop
# before they could call a log callback into a finalised interpreter.
_open_databases: "weakref.WeakSet[Database]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for db in list(_open_databases):
        try:
            db.close()
        except Exception:
            pass


def _as_id(i: Any) -> int:
    np = sys.modules.get("numpy")
    if np is not None and isinstance(i, np.integer):
        i = int(i)
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < 2**64:
        raise InvalidArgument(f"a document id must be an int in 0..2^64-1, not {i!r}")
    return i


def inspect_parquet(path: Union[str, os.PathLike]) -> str:
    """Describe a Parquet file (schema, row groups, codecs) as text."""
    text = c_void_p()
    lib.akidb_parquet_inspect(_cstr(path, "path"), byref(text))
    return _capi.take_string(text.value) or ""
