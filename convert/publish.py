"""Publish a model set as one transaction: readers see the old set or the new one, whole.

A model set is read through its manifest: the manifest names each file and its sha256. So
a set stays whole as long as no file the live manifest names is ever changed, and the
manifest itself is swapped in one step. `ModelSetTransaction` does that:

1. it takes an exclusive lock on the folder (`fcntl.flock` on `.hemiface-convert.lock`), so
   a second convert into the same folder refuses at once instead of racing this one; the
   kernel drops the lock when the process dies, however it dies;
2. it finishes what an interrupted earlier run left (see the journal below) and removes its
   staging folders and temporary files;
3. new artifacts are written into a staging folder inside the set (same file system);
4. `commit` gives each staged file a name that no file of the live manifest uses and that
   no file on disk has (its plain name when free, else the name with its sha256), writes
   the journal, moves the files in, swaps the manifest with one `os.replace`, and then
   deletes the files that only the old manifest named.

A signature (`model.sig`, `hemiface sign` or `convert --sign-key`) is made only under the
same lock (`model_set_lock`), after a convert's transaction has published and cleaned up
and released it, and after what an interrupted convert left is removed: so it always
covers one published set, whole, never a staging folder or a half-moved file.

The journal (`.hemiface-publish.json`) lists the files being added and the files the old
manifest named that the new one drops. Whatever kills the writer, the next run deletes
the listed files that the manifest on disk (old or new) does not name: files this module
wrote or owned, never a user's file.

Readers need no lock: a reader that opened the old manifest may find a file gone when a
new set was published in between; `hemiface.runtime.modelset` then reads the manifest
again.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from types import TracebackType
from typing import Any

from hemiface.runtime.errors import HemifaceError, ManifestError
from hemiface.runtime.manifest import (
    MANIFEST_NAME,
    Manifest,
    atomic_write_bytes,
    load_manifest,
    save_manifest,
)
from hemiface.runtime.signing import SIGNATURE_NAME

try:  # POSIX; elsewhere (Windows) concurrent converts into one folder are not detected
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".hemiface-convert.lock"
JOURNAL_NAME = ".hemiface-publish.json"
STAGING_PREFIX = ".hemiface-staging-"
# Left behind only by a killed writer: atomic_write_bytes' and signing's temporary files
# and the probe that checks the folder is writable.
STALE_PREFIXES = (
    f".{MANIFEST_NAME}.",
    f".{JOURNAL_NAME}.",
    ".hemiface-convert-cache.json.",
    f".{SIGNATURE_NAME}.",
)
STALE_PROBE = ".hemiface-probe-"


class ModelSetBusyError(HemifaceError):
    """Another process holds the model set's lock."""


def artifact_files(manifest: Manifest) -> dict[str, str]:
    """{file: sha256} of every file the manifest vouches for.

    Every item of a top-level list of the manifest that has `file` and `sha256` is a file
    of the set (the classifier entries, and any other kind of entry built the same way).
    """
    files: dict[str, str] = {}
    for spec in fields(manifest):
        value = getattr(manifest, spec.name)
        if not isinstance(value, list):
            continue
        for item in value:
            file, sha = getattr(item, "file", None), getattr(item, "sha256", None)
            if isinstance(file, str) and isinstance(sha, str):
                files[file] = sha
    return files


def _file_entries(manifest: Manifest) -> Iterator[Any]:
    for spec in fields(manifest):
        value = getattr(manifest, spec.name)
        if isinstance(value, list):
            yield from (item for item in value if hasattr(item, "file") and hasattr(item, "sha256"))


def _live_files(out: Path) -> dict[str, str] | None:
    """The files the manifest on disk names; None when there is no readable manifest."""
    if not (out / MANIFEST_NAME).exists():
        return {}
    try:
        return artifact_files(load_manifest(out, check_files=False))
    except ManifestError:
        return None


def _fsync_dir(folder: Path) -> None:
    """Make renames in `folder` durable (a power cut then keeps the order we chose)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ModelSetTransaction:
    """The lock, the recovery of an interrupted run, a staging folder and the commit.

    Use as a context manager around everything that reads the old manifest and writes the
    new set; `staging` is where new files go, under the names the manifest entries give.
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.staging = self.out  # set on enter
        self.notes: list[str] = []  # what was cleaned up after an interrupted run
        self._lock_fd: int | None = None
        self._open = False

    def __enter__(self) -> ModelSetTransaction:
        self._lock_fd = _acquire_lock(self.out)
        self._open = True
        try:
            self._recover()
            self.staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.out))
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.staging != self.out:
                shutil.rmtree(self.staging, ignore_errors=True)
        finally:
            self._release()

    def _release(self) -> None:
        self._open = False
        if self._lock_fd is not None:
            _release_lock(self.out, self._lock_fd)
            self._lock_fd = None

    def _recover(self) -> None:
        note = recover_interrupted(self.out)
        if note:
            self.notes.append(note)

    def commit(self, manifest: Manifest) -> Path:
        """Publish the staged files and `manifest`; returns the manifest's path.

        Entries whose file is in the staging folder get their final file name here
        (`entry.file` is updated); other entries must name files already in the set.
        """
        if not self._open:
            raise RuntimeError("commit outside the transaction")
        out = self.out
        live = _live_files(out) or {}
        staged: list[tuple[Any, Path]] = []
        for entry in _file_entries(manifest):
            path = self.staging / entry.file
            if _is_plain_name(entry.file) and path.is_file():
                staged.append((entry, path))
        taken = set(live)
        moves: list[tuple[Path, str]] = []
        for entry, path in staged:
            final, present = _final_name(out, entry.file, entry.sha256, live, taken)
            taken.add(final)
            entry.file = final
            if not present:
                moves.append((path, final))
        dropped = sorted(set(live) - set(artifact_files(manifest)))
        try:
            _write_journal(out, [name for _, name in moves], dropped)
            for path, final in moves:
                _fsync_file(path)
                os.replace(path, out / final)
            _fsync_dir(out)
            manifest_path = save_manifest(manifest, out)
            _fsync_dir(out)
        except BaseException:
            # Not published (or not known to be): take back what we moved in, unless the
            # manifest on disk names it after all.
            _replay_journal(out)
            raise
        _replay_journal(out)  # now deletes what only the old manifest named
        return manifest_path


def recover_interrupted(out: Path) -> str | None:
    """Finish what an interrupted convert left in OUT (its journal, staging folders and
    temporary files); the lock must be held. Returns a note when something was removed."""
    removed = _replay_journal(out)
    stale = 0
    for path in out.iterdir():
        name = path.name
        if name.startswith(STAGING_PREFIX) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            stale += 1
        elif path.is_file() and (
            name.startswith(STALE_PROBE)
            or (name.startswith(STALE_PREFIXES) and name.endswith(".tmp"))
        ):
            path.unlink(missing_ok=True)
            stale += 1
    if not (removed or stale):
        return None
    return (
        f"an earlier convert into {out} was interrupted: removed {removed} "
        f"model file(s) no manifest names and {stale} staging folder(s) or temporary "
        "file(s)"
    )


def _final_name(
    out: Path, file: str, sha256: str, live: dict[str, str], taken: set[str]
) -> tuple[str, bool]:
    """(name, already there): the plain name when free, else one with the sha256 in it.

    Never a name the live manifest uses for other bytes, never a file on disk that the
    live manifest does not name (it may be a user's).
    """
    stem, dot, suffix = file.rpartition(".")
    if not dot:
        stem, suffix = file, ""
    tail = f".{suffix}" if suffix else ""
    for candidate in (file, f"{stem}.{sha256[:12]}{tail}", f"{stem}.{sha256}{tail}"):
        if live.get(candidate) == sha256 and _sha256(out / candidate) == sha256:
            return candidate, True  # the live set already has these bytes under this name
        if candidate not in taken and not (out / candidate).exists():
            return candidate, False
    raise HemifaceError(f"{out}: no free file name for {file} (files named after its sha256 exist)")


def _write_journal(out: Path, adding: list[str], removing: list[str]) -> None:
    text = json.dumps({"adding": adding, "removing": removing}, indent=1) + "\n"
    atomic_write_bytes(out / JOURNAL_NAME, text.encode("utf-8"))
    _fsync_dir(out)


def _replay_journal(out: Path) -> int:
    """Delete the journal's files that the manifest on disk does not name; then the journal.

    Returns how many files were deleted. With no readable manifest nothing is deleted.
    """
    journal = out / JOURNAL_NAME
    if not journal.exists():
        return 0
    try:
        data = json.loads(journal.read_text(encoding="utf-8"))
        names = [str(n) for key in ("adding", "removing") for n in data.get(key, [])]
    except (OSError, ValueError, AttributeError, TypeError):
        names = []
    live = _live_files(out)
    removed = 0
    if live is not None:
        for name in names:
            if _is_plain_name(name) and name not in live and (out / name).is_file():
                (out / name).unlink(missing_ok=True)
                removed += 1
        _fsync_dir(out)
    journal.unlink(missing_ok=True)
    return removed


def _acquire_lock(out: Path) -> int | None:
    """An exclusive lock on OUT/.hemiface-convert.lock, or ModelSetBusyError at once.

    The lock file is removed on release; a process that locked a file that was removed
    meanwhile sees that its inode is no longer the one at the path and tries again.
    """
    if fcntl is None:  # pragma: no cover - not on Linux
        return None
    path = out / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise HemifaceError(f"{path}: cannot create the lock file ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                return fd  # a file system without locks: go on unlocked, as without fcntl
            holder = _lock_holder(fd)
            os.close(fd)
            raise ModelSetBusyError(
                f"{out}: another hemiface convert{holder} is writing this model set; "
                "wait for it to finish, or convert into another folder"
            ) from None
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
        os.close(fd)  # the file was removed between open and lock: take the new one


def _lock_holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).decode().strip())
        return f" (process {pid})"
    return ""


def _release_lock(out: Path, fd: int | None) -> None:
    if fd is None:  # pragma: no cover - not on Linux
        return
    with contextlib.suppress(OSError):
        (out / LOCK_NAME).unlink()
    os.close(fd)


@contextlib.contextmanager
def model_set_lock(out: Path) -> Iterator[str | None]:
    """Hold OUT's lock, as a convert does, after finishing what an interrupted convert
    left; yields that note (or None). ModelSetBusyError at once when a convert holds it.

    Whatever runs inside sees a published set, whole: a convert publishes and cleans up
    entirely within its own hold of this lock (`ModelSetTransaction`).
    """
    fd = _acquire_lock(Path(out))
    try:
        yield recover_interrupted(Path(out))
    finally:
        _release_lock(Path(out), fd)


def refuse_if_busy(out: Path) -> None:
    """ModelSetBusyError at once when another convert holds OUT's lock (nothing to say
    when OUT does not exist yet): checked before any work, so that the second of two
    converts into one folder does not load and convert models only to be refused."""
    if Path(out).is_dir():
        _release_lock(Path(out), _acquire_lock(Path(out)))
