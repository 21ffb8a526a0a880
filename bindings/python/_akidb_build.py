"""_akidb_build.py - the PEP 517 build backend of the akidb Python package.

Why a backend of our own: pip builds a package in an isolated environment
into which it installs the backend named in pyproject.toml, normally
setuptools, downloaded from PyPI.  AkiDB must install offline (no PyPI on
the machines it is built on), so the backend lives here, in the package's
own directory (`backend-path = ["."]`, `requires = []`), and uses the
standard library only.

What it does: builds libakidb with the project's own Makefile
(`make -C ROOT lib`, ROOT being the repository this directory sits in,
BUILD from the environment as make itself reads it) and ships the shared
library inside the wheel as akidb/libakidb.so.MAJOR, where akidb/_capi.py
looks first.  The wheel is then platform-specific but not tied to a
Python version (ctypes, no extension module): py3-none-<platform>.

Environment:
  AKIDB_SOURCE_DIR  the repository to build the library from (default:
                    found by walking up from this file to include/akidb.h)
  AKIDB_NO_BUNDLE=1 build a pure wheel without the library (it then uses
                    AKIDB_LIBRARY or the system's libakidb at run time)
  BUILD             make's build directory (default build), as in the Makefile

Hooks: build_wheel, build_sdist, prepare_metadata_for_build_wheel and the
get_requires_* pair (nothing is required).  No editable installs: use
PYTHONPATH=bindings/python AKIDB_LIBRARY=build/libakidb.so for development.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile

NAME = "akidb"
SUMMARY = "Python bindings for AkiDB, an embeddable vector database"
HERE = os.path.dirname(os.path.abspath(__file__))
PKG_DIR = os.path.join(HERE, "akidb")
# Fixed timestamp for the archive members, so a wheel's bytes depend on
# its contents only (reproducible builds honour SOURCE_DATE_EPOCH).
EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))


def _log(msg: str) -> None:
    print(f"akidb build: {msg}", file=sys.stderr, flush=True)


def _source_root():
    root = os.environ.get("AKIDB_SOURCE_DIR")
    if root:
        if not os.path.isfile(os.path.join(root, "include", "akidb.h")):
            raise RuntimeError(f"AKIDB_SOURCE_DIR={root} has no include/akidb.h")
        return os.path.abspath(root)
    d = HERE
    for _ in range(4):
        d = os.path.dirname(d)
        if (os.path.isfile(os.path.join(d, "include", "akidb.h"))
                and os.path.isfile(os.path.join(d, "Makefile"))):
            return d
    return None


def _header_version(root):
    with open(os.path.join(root, "include", "akidb.h"), encoding="utf-8") as f:
        text = f.read()
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        m = re.search(r"^#define AKIDB_VERSION_%s\s+(\d+)" % part, text, re.M)
        if not m:
            raise RuntimeError(f"cannot read AKIDB_VERSION_{part} from include/akidb.h")
        parts.append(m.group(1))
    return ".".join(parts)


def _version():
    root = _source_root()
    if root:
        return _header_version(root)
    # An sdist carries its version in PKG-INFO.
    pkg_info = os.path.join(HERE, "PKG-INFO")
    if os.path.isfile(pkg_info):
        with open(pkg_info, encoding="utf-8") as f:
            for line in f:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
    raise RuntimeError("cannot tell the version: no AkiDB source tree and no PKG-INFO")


def _build_library(root, version):
    """Run the project's make; return the path of libakidb.so.VERSION."""
    build = os.environ.get("BUILD", "build")
    env = dict(os.environ)
    # We may run under `make test` (make -> pip -> here -> make): the outer
    # jobserver's file descriptors do not survive pip, so drop its flags
    # instead of letting the inner make warn about them.
    for var in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(var, None)
    cmd = ["make", "-C", root, f"-j{os.cpu_count() or 1}", f"BUILD={build}", "lib"]
    _log(" ".join(cmd))
    res = subprocess.run(cmd, env=env, stdout=sys.stderr, stderr=sys.stderr)
    if res.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {res.returncode}); "
                           "see its output above")
    so = os.path.join(root, build, f"libakidb.so.{version}")
    if not os.path.isfile(so):
        raise RuntimeError(f"make succeeded but {so} does not exist")
    return so


def _metadata(version, bundled):
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {version}",
        f"Summary: {SUMMARY}",
        "License: MIT",
        "Requires-Python: >=3.8",
        "Provides-Extra: numpy",
        'Requires-Dist: numpy; extra == "numpy"',
        "Classifier: Programming Language :: Python :: 3",
        "Classifier: Programming Language :: C",
        "Classifier: Operating System :: POSIX :: Linux",
        "Classifier: Topic :: Database",
    ]
    readme = os.path.join(HERE, "README.md")
    body = ""
    if os.path.isfile(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = f.read()
    return "\n".join(lines) + "\n\n" + body


def _wheel_tag(bundled):
    if not bundled:
        return "py3-none-any"
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"py3-none-{plat}"


def _package_files():
    """(archive name, path) of the package's own files."""
    out = []
    for name in sorted(os.listdir(PKG_DIR)):
        if name.endswith(".py") or name == "py.typed":
            out.append((f"{NAME}/{name}", os.path.join(PKG_DIR, name)))
    return out


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def _zip_write(zf, arcname, data, mode=0o644):
    info = zipfile.ZipInfo(arcname, date_time=time.gmtime(EPOCH)[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | mode) << 16
    zf.writestr(info, data)


def _dist_info_files(version, bundled):
    tag = _wheel_tag(bundled)
    wheel = ("Wheel-Version: 1.0\n"
             "Generator: akidb _akidb_build\n"
             f"Root-Is-Purelib: {'false' if bundled else 'true'}\n"
             f"Tag: {tag}\n")
    return {
        "METADATA": _metadata(version, bundled).encode("utf-8"),
        "WHEEL": wheel.encode("utf-8"),
        "top_level.txt": f"{NAME}\n".encode("utf-8"),
    }


def _will_bundle():
    return os.environ.get("AKIDB_NO_BUNDLE") != "1" and _source_root() is not None


# --------------------------------------------------------------------------
# PEP 517 hooks


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    version = _version()
    dist_info = f"{NAME}-{version}.dist-info"
    path = os.path.join(metadata_directory, dist_info)
    os.makedirs(path, exist_ok=True)
    for name, data in _dist_info_files(version, _will_bundle()).items():
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
    return dist_info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    version = _version()
    root = _source_root()
    bundled = None
    if os.environ.get("AKIDB_NO_BUNDLE") == "1":
        _log("AKIDB_NO_BUNDLE=1: the wheel will use AKIDB_LIBRARY or the system's libakidb")
    elif root is None:
        _log("no AkiDB source tree around this package (set AKIDB_SOURCE_DIR): the wheel "
             "will use AKIDB_LIBRARY or the system's libakidb")
    else:
        bundled = _build_library(root, version)
    major = version.split(".")[0]

    files = []
    for arcname, path in _package_files():
        with open(path, "rb") as f:
            files.append((arcname, f.read(), 0o644))
    files.append((f"{NAME}/_version.py",
                  f'version = "{version}"\nbundled = {bool(bundled)}\n'.encode(), 0o644))
    if bundled:
        with open(bundled, "rb") as f:
            files.append((f"{NAME}/libakidb.so.{major}", f.read(), 0o755))

    dist_info = f"{NAME}-{version}.dist-info"
    for name, data in _dist_info_files(version, bool(bundled)).items():
        files.append((f"{dist_info}/{name}", data, 0o644))

    tag = _wheel_tag(bool(bundled))
    wheel_name = f"{NAME}-{version}-{tag}.whl"
    os.makedirs(wheel_directory, exist_ok=True)
    out = os.path.join(wheel_directory, wheel_name)
    record = []
    with zipfile.ZipFile(out, "w") as zf:
        for arcname, data, mode in files:
            _zip_write(zf, arcname, data, mode)
            record.append(_record_line(arcname, data))
        record.append(f"{dist_info}/RECORD,,")
        _zip_write(zf, f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode())
    _log(f"wrote {wheel_name}" + (f" with {os.path.basename(bundled)}" if bundled else ""))
    return wheel_name


def build_sdist(sdist_directory, config_settings=None):
    """The Python package alone (no C sources): building a wheel from it
    bundles no library unless AKIDB_SOURCE_DIR names an AkiDB tree."""
    version = _version()
    base = f"{NAME}-{version}"
    members = ["pyproject.toml", "_akidb_build.py", "README.md"]
    members += [os.path.relpath(p, HERE) for _, p in _package_files()]
    tests = os.path.join(HERE, "tests")
    if os.path.isdir(tests):
        members += [os.path.join("tests", n) for n in sorted(os.listdir(tests))
                    if n.endswith(".py")]
    name = f"{base}.tar.gz"
    os.makedirs(sdist_directory, exist_ok=True)
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as tf:
        def add(arcname, data):
            info = tarfile.TarInfo(f"{base}/{arcname}")
            info.size = len(data)
            info.mtime = EPOCH
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
        for rel in members:
            path = os.path.join(HERE, rel)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    add(rel, f.read())
        add("PKG-INFO", _metadata(version, False).encode("utf-8"))
    return name
