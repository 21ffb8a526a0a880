"""_errors.py - the exception hierarchy, derived from the library's result codes.

Every failing call raises a subclass of akidb.Error carrying the code (int),
its C name ("AKIDB_NOTFOUND", from akidb_errname) and the calling thread's
detailed message (akidb_errmsg).  The classes with friendly names are
listed in _NAMES below; the codes themselves come from the loaded library
(akidb_errname for 1, 2, ... until "AKIDB_UNKNOWN"), and a code the table
does not name still gets its own class, generated here (AKIDB_FOO -> Foo),
so a code added to the library can never fall through to a bare Error.
The test suite checks that the table names every code the library has.
"""

from __future__ import annotations

from typing import Dict, Type

from . import _capi


class Error(Exception):
    """Base class of every error the library reports.

    Attributes:
        code: the numeric result code (akidb_result).
        name: its C name, e.g. "AKIDB_NOTFOUND".
        message: the library's detailed message for the failed call.
    """

    code: int = 1
    name: str = "AKIDB_ERROR"

    def __init__(self, message: str = "", code: int | None = None):
        if code is not None:
            self.code = code
            self.name = _capi.errname(code)
        self.message = message
        super().__init__(f"{self.name}: {message}" if message else self.name)


class InternalError(Error):
    """AKIDB_ERROR: an internal error that fits no other code."""


class OutOfMemory(Error, MemoryError):
    """AKIDB_NOMEM: an allocation failed; nothing was changed."""


class Misuse(Error):
    """AKIDB_MISUSE: the API was used wrongly (e.g. a closed handle)."""


class InvalidArgument(Error, ValueError):
    """AKIDB_INVALID: an argument or input value is not acceptable."""


class NotFound(Error, LookupError):
    """AKIDB_NOTFOUND: the collection, document, snapshot or key does not exist."""


class AlreadyExists(Error):
    """AKIDB_EXISTS: the thing being created already exists."""


class IoError(Error):
    """AKIDB_IOERR: the operating system reported an I/O error."""


class Corrupt(Error):
    """AKIDB_CORRUPT: stored data failed a consistency check."""


class Conflict(Error):
    """AKIDB_CONFLICT: a concurrent change made the request fail."""


class Busy(Error):
    """AKIDB_BUSY: a lock is held elsewhere (another process has the database open)."""


class QuotaExceeded(Error):
    """AKIDB_QUOTA: a configured limit would be exceeded."""


class Unavailable(Error):
    """AKIDB_UNAVAILABLE: a remote service (object store) cannot be reached now."""


class ReadOnly(Error):
    """AKIDB_READONLY: a write on a database opened read-only."""


# C name -> class.  Add a line here when the library gains a code.
_NAMES: Dict[str, Type[Error]] = {
    "AKIDB_ERROR": InternalError,
    "AKIDB_NOMEM": OutOfMemory,
    "AKIDB_MISUSE": Misuse,
    "AKIDB_INVALID": InvalidArgument,
    "AKIDB_NOTFOUND": NotFound,
    "AKIDB_EXISTS": AlreadyExists,
    "AKIDB_IOERR": IoError,
    "AKIDB_CORRUPT": Corrupt,
    "AKIDB_CONFLICT": Conflict,
    "AKIDB_BUSY": Busy,
    "AKIDB_QUOTA": QuotaExceeded,
    "AKIDB_UNAVAILABLE": Unavailable,
    "AKIDB_READONLY": ReadOnly,
}

# Result codes never exceed this; the scan stops at the first unknown code.
_MAX_CODE = 1000


def _library_codes() -> Dict[int, str]:
    codes = {}
    for rc in range(1, _MAX_CODE):
        name = _capi.errname(rc)
        if name == "AKIDB_UNKNOWN":
            break
        codes[rc] = name
    return codes


#: Every error code of the loaded library: code -> C name.
CODES: Dict[int, str] = _library_codes()

#: code -> exception class, for every code in CODES.
CLASSES: Dict[int, Type[Error]] = {}

#: Classes generated for codes the table above does not name (normally empty).
GENERATED: Dict[str, Type[Error]] = {}

for _rc, _name in CODES.items():
    _cls = _NAMES.get(_name)
    if _cls is None:
        _pretty = "".join(p.capitalize() for p in _name[len("AKIDB_"):].split("_"))
        _cls = type(_pretty, (Error,), {"__doc__": f"{_name} (generated from the library's codes)."})
        GENERATED[_pretty] = _cls
    _cls.code = _rc
    _cls.name = _name
    CLASSES[_rc] = _cls


def error_for(rc: int, message: str) -> Error:
    cls = CLASSES.get(rc)
    if cls is None:
        return Error(message, code=rc)
    return cls(message)


def _raise(rc: int, message: str) -> None:
    raise error_for(rc, message)


_capi.raise_error = _raise
