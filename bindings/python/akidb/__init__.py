"""akidb - Python bindings for AkiDB, an embeddable vector database.

    import akidb

    with akidb.open("./my-db") as db:
        docs = db.create_collection("docs", dim=4, metric="cosine")
        docs.insert([[1, 0, 0, 0], [0, 1, 0, 0]],
                    external_ids=["a", "b"],
                    metadata=[{"title": "alpha"}, {"title": "beta"}])
        for hit in docs.search([0.9, 0.1, 0, 0], k=2):
            print(hit.id, hit.external_id, hit.distance, hit.metadata)

The package calls libakidb through ctypes (see _capi.py for why and for
where it finds the library).  Every failure raises a subclass of
akidb.Error carrying the C result code name and the library's message.
"""

from . import _capi
from ._db import (Collection, CollectionStats, Database, Document, Hit, LocalStore,
                  MockStore, Records, S3Store, Snapshot, Store, inspect_parquet, open,
                  TierInfo, TierStats, TierPolicy, NEVER, TIERS)
from ._errors import (CODES, AlreadyExists, Busy, Conflict, Corrupt, Error, InternalError,
                      InvalidArgument, IoError, Misuse, NotFound, OutOfMemory,
                      QuotaExceeded, ReadOnly, Unavailable, error_for)
from ._errors import GENERATED as _GENERATED

# Classes made for codes this package does not name yet (normally none).
globals().update(_GENERATED)

try:
    from ._version import version as __version__  # written into the wheel by its build
except ImportError:   # running from the source tree
    __version__ = _capi.lib.akidb_version().decode("ascii")


def library_version() -> str:
    """Version of the loaded libakidb, "MAJOR.MINOR.PATCH"."""
    return _capi.lib.akidb_version().decode("ascii")


def library_path() -> str:
    """Path of the loaded libakidb, and see library_origin()."""
    return _capi.library_path


def library_origin() -> str:
    """Where the library came from: "bundled", "AKIDB_LIBRARY" or "system"."""
    return _capi.library_origin


__all__ = [
    "open", "Database", "Collection", "Hit", "Document", "CollectionStats", "Snapshot",
    "Records", "Store", "LocalStore", "MockStore", "S3Store", "inspect_parquet",
    "TierInfo", "TierStats", "TierPolicy", "NEVER", "TIERS",
    "Error", "InternalError", "OutOfMemory", "Misuse", "InvalidArgument", "NotFound",
    "AlreadyExists", "IoError", "Corrupt", "Conflict", "Busy", "QuotaExceeded",
    "Unavailable", "ReadOnly", "CODES", "error_for", "library_version", "library_path",
    "library_origin", "__version__",
] + sorted(_GENERATED)
