"""Model sets signed in the OpenSSF model-signing format, and checked before they run.

The manifest's sha256 values catch a damaged file, not a swapped set: whoever can write the
folder can replace a model and rewrite the manifest to match. A signature made with the
owner's private key over every file of the folder closes that: a device given the public
key runs only sets whose files are, byte for byte, the ones signed.

Signing and verifying go through the `model_signing` library (the `signing` extra); its
signature is a detached Sigstore bundle, `model.sig` inside the set (the library's own
default name), whose DSSE envelope holds an in-toto statement listing each file and its
sha256. The library is imported only when a set is signed or a signature is checked: it
costs about a second to import.

Not covered by the signature, by name: the signature itself and the files convert keeps
for its own work (its lock and its cache, `UNSIGNED_FILES`); the runtime reads none of them.
Everything else in the folder is: a file changed, added or removed since signing is refused.

`signature_status` reads the bundle's statement without checking who signed it (no key,
no library): what `hemiface info` shows when no trusted key is given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from hemiface.runtime.errors import HemifaceError, MissingExtraError
from hemiface.runtime.manifest_schema import MANIFEST_NAME

SIGNATURE_NAME = "model.sig"
# convert.publish.LOCK_NAME and convert.pipeline.CACHE_NAME (a test holds them equal):
# workstation files that convert rewrites in the set and the runtime never reads.
CONVERT_LOCK_NAME = ".hemiface-convert.lock"
CONVERT_CACHE_NAME = ".hemiface-convert-cache.json"
UNSIGNED_FILES = (SIGNATURE_NAME, CONVERT_LOCK_NAME, CONVERT_CACHE_NAME)
# A bundle for a set of a few dozen files is a few KB; anything this large is not one.
MAX_SIGNATURE_BYTES = 4 << 20
KEY_SUFFIXES = (".pem", ".pub")
SIGNING_EXTRA = "pip install 'hemiface[signing]'"


class SignatureError(HemifaceError):
    """A set that a trusted key was asked for and that does not pass (or cannot be signed)."""


@dataclass(frozen=True)
class SignatureStatus:
    """What is known of a set's signature: `state` is "unsigned", "signed, not checked",
    "verified" or "does not cover the set" (a file changed since signing); `detail` says
    more in one line."""

    state: str
    detail: str
    signature: Path | None = None
    key: Path | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "state": self.state,
            "detail": self.detail,
            "signature": None if self.signature is None else str(self.signature),
            "key": None if self.key is None else str(self.key),
        }


@dataclass(frozen=True)
class VerifiedSet:
    """A set that passed: the key that signed it and the signed sha256 of its manifest
    (the runtime then loads only a manifest with exactly those bytes)."""

    folder: Path
    key: Path
    manifest_sha256: str


def signature_path(folder: Path) -> Path:
    return Path(folder) / SIGNATURE_NAME


def config_keys_folder() -> Path:
    """$XDG_CONFIG_HOME/hemiface/trusted-keys (default ~/.config/hemiface/trusted-keys)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hemiface" / "trusted-keys"


def trusted_keys(given: Sequence[Path] = ()) -> list[Path]:
    """The public keys to check sets against: those given (--trusted-key), else the .pem /
    .pub files of the trusted-keys folder in the user's config; none: no check."""
    if given:
        return [Path(key) for key in given]
    folder = config_keys_folder()
    try:
        return sorted(p for p in folder.iterdir() if p.suffix in KEY_SUFFIXES and p.is_file())
    except OSError:  # no folder (the usual case), or one that cannot be read
        return []


def require_library() -> None:
    """MissingExtraError in one line unless the model-signing library imports."""
    try:
        import model_signing  # noqa: F401
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "model_signing"
        raise MissingExtraError(
            f"signing and checking signatures needs the model-signing library ({missing!r} is "
            f"not importable): {SIGNING_EXTRA}"
        ) from None


def _read_regular(path: Path, limit: int, what: str) -> bytes:
    """A regular file's bytes, at most `limit` (a FIFO or a device is refused unread)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SignatureError(f"{path}: no {what} here") from None
    except OSError as exc:
        raise SignatureError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise SignatureError(f"{path}: the {what} is not a regular file")
    if info.st_size > limit:
        raise SignatureError(f"{path}: {info.st_size:,} bytes is too large for a {what}")
    try:
        with open(path, "rb") as handle:
            return handle.read(limit + 1)[:limit]
    except OSError as exc:
        raise SignatureError(f"{path}: cannot read the {what} ({exc.strerror})") from None


def _statement(signature: Path) -> dict[str, Any]:
    """The in-toto statement inside the bundle, unchecked; SignatureError when unreadable."""
    content = _read_regular(signature, MAX_SIGNATURE_BYTES, "signature")
    try:
        bundle = json.loads(content)
        payload = base64.b64decode(bundle["dsseEnvelope"]["payload"], validate=True)
        statement = json.loads(payload)
        if not isinstance(statement, dict) or not isinstance(statement.get("predicate"), dict):
            raise ValueError("no predicate")
        return statement
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise SignatureError(
            f"{signature}: not a model-signing signature (truncated or damaged)"
        ) from None


def _signed_files(statement: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """({file: sha256}, ignored paths) as the statement lists them."""
    predicate = statement["predicate"]
    files = {
        str(item["name"]): str(item["digest"])
        for item in predicate.get("resources", [])
        if isinstance(item, dict) and "name" in item and "digest" in item
    }
    serialization = predicate.get("serialization") or {}
    ignored = [str(p) for p in serialization.get("ignore_paths", [])]
    return files, ignored


def _is_ignored(relative: PurePosixPath, ignored: Sequence[str]) -> bool:
    return any(
        relative == PurePosixPath(p) or PurePosixPath(p) in relative.parents for p in ignored
    )


def _folder_files(folder: Path, ignored: Sequence[str]) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder` that the signature would cover."""
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            relative = PurePosixPath(path.relative_to(folder).as_posix())
            if _is_ignored(relative, ignored):
                continue
            digest = hashlib.sha256()
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):  # a FIFO would block, a link
                    found[str(relative)] = "not a regular file"  # is refused by the library
                    continue
                with open(path, "rb") as handle:
                    while block := handle.read(1 << 20):
                        digest.update(block)
            except OSError:
                found[str(relative)] = "unreadable"
                continue
            found[str(relative)] = digest.hexdigest()
    return found


def differences(folder: Path, statement: dict[str, Any]) -> list[tuple[str, str]]:
    """What changed in `folder` since the statement was signed: (file, "changed" |
    "added" | "removed")."""
    signed, ignored = _signed_files(statement)
    actual = _folder_files(folder, ignored)
    changes = [(n, "changed") for n in sorted(signed) if n in actual and actual[n] != signed[n]]
    changes += [(name, "added") for name in sorted(set(actual) - set(signed))]
    changes += [(name, "removed") for name in sorted(set(signed) - set(actual))]
    return changes


def signature_status(folder: Path) -> SignatureStatus:
    """Unsigned, or signed and (without checking who signed) whether it covers the set."""
    signature = signature_path(folder)
    if not signature.exists() and not signature.is_symlink():
        return SignatureStatus("unsigned", f"no {SIGNATURE_NAME} in the set")
    try:
        changes = differences(Path(folder), _statement(signature))
    except SignatureError as exc:
        return SignatureStatus("does not cover the set", str(exc), signature)
    if changes:
        shown = ", ".join(f"{name} {what}" for name, what in changes[:3])
        shown += f" and {len(changes) - 3} more" if len(changes) > 3 else ""
        return SignatureStatus(
            "does not cover the set",
            f"{shown} since signing: re-sign with hemiface sign",
            signature,
        )
    return SignatureStatus(
        "signed, not checked",
        "the files match the signature; who signed it is not checked without a trusted key",
        signature,
    )


def sign_model_set(folder: Path, private_key: Path, password: str | None = None) -> Path:
    """Sign every file of the set with an EC private key (PEM); returns the signature."""
    require_library()
    from model_signing import hashing, signing

    folder = Path(folder)
    _read_regular(Path(private_key), 1 << 20, "private key")
    if not (folder / MANIFEST_NAME).is_file():
        raise SignatureError(f"{folder}: not a model set (no {MANIFEST_NAME})")
    target = signature_path(folder)
    tmp = folder / f".{SIGNATURE_NAME}.tmp"
    config = hashing.Config().set_ignored_paths(paths=[*UNSIGNED_FILES, tmp.name])  # type: ignore[no-untyped-call]
    try:
        signer = signing.Config().use_elliptic_key_signer(  # type: ignore[no-untyped-call]
            private_key=private_key, password=password
        )
        signer.set_hashing_config(config).sign(folder, tmp)
        os.replace(tmp, target)  # readers see the old signature or the new one, whole
    except (ValueError, TypeError, OSError) as exc:
        raise SignatureError(f"{private_key}: cannot sign {folder} ({_first_line(exc)})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def sign_model_set_keyless(folder: Path) -> Path:
    """Keyless Sigstore signing (an OIDC login, the public transparency log): passed to
    the library as it is; needs the network, so it is not exercised by this project's tests."""
    require_library()
    from model_signing import hashing, signing

    folder = Path(folder)
    config = hashing.Config().set_ignored_paths(paths=list(UNSIGNED_FILES))  # type: ignore[no-untyped-call]
    signing.Config().use_sigstore_signer().set_hashing_config(config).sign(  # type: ignore[no-untyped-call]
        folder, signature_path(folder)
    )
    return signature_path(folder)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def verify_model_set(folder: Path, keys: Sequence[Path]) -> VerifiedSet:
    """Check that `folder` was signed by one of `keys` and that no file changed since.

    Raises SignatureError in one line naming the file: the signature missing or damaged,
    signed by none of the keys, a file changed, added or removed, or a manifest the
    signature does not cover.
    """
    if not keys:
        raise SignatureError("no trusted key to check the model set against")
    folder = Path(folder)
    signature = signature_path(folder)
    if not signature.exists() and not signature.is_symlink():
        raise SignatureError(
            f"{signature}: the model set is unsigned and a trusted key is set: refusing it "
            "(sign it with hemiface sign)"
        )
    statement = _statement(signature)  # a damaged file is named before the library runs
    require_library()
    from model_signing import verifying

    not_ours: list[str] = []
    for key in keys:
        _read_regular(Path(key), 1 << 20, "public key")
        try:
            verifying.Config().use_elliptic_key_verifier(public_key=key).verify(folder, signature)  # type: ignore[no-untyped-call]
        except Exception as exc:  # noqa: BLE001 - any failure of a check refuses the set
            message = _first_line(exc)
            if message.startswith("Key mismatch"):
                not_ours.append(str(key))
                continue
            if message.startswith("Signature mismatch"):
                changes = differences(folder, statement)
                if not changes:
                    raise SignatureError(f"{folder}: {message}; refusing the set") from None
                name, what = changes[0]
                raise SignatureError(
                    f"{folder / name}: {what} since the set was signed "
                    f"({len(changes)} difference(s)); refusing the set"
                ) from None
            raise SignatureError(
                f"{signature}: the signature does not verify ({message})"
            ) from None
        return _covered(folder, statement, Path(key))
    raise SignatureError(
        f"{signature}: signed by a key that is not trusted here (tried {', '.join(not_ours)})"
    )


def _covered(folder: Path, statement: dict[str, Any], key: Path) -> VerifiedSet:
    """The manifest must be among the signed files: it vouches for everything loaded."""
    signed, _ = _signed_files(statement)
    digest = signed.get(MANIFEST_NAME)
    if digest is None:
        raise SignatureError(
            f"{folder / MANIFEST_NAME}: the signature does not cover the manifest; refusing the set"
        )
    return VerifiedSet(folder, key, digest)


def check_status(folder: Path, keys: Sequence[Path]) -> SignatureStatus:
    """`hemiface info`'s view: verified against `keys` when there are any (or why not),
    else what `signature_status` can tell without a key."""
    if not keys:
        return signature_status(folder)
    try:
        verified = verify_model_set(folder, keys)
    except MissingExtraError as exc:
        unchecked = signature_status(folder)
        return SignatureStatus(unchecked.state, f"{unchecked.detail}; {exc}", unchecked.signature)
    except SignatureError as exc:
        return SignatureStatus("refused", str(exc), signature_path(folder))
    return SignatureStatus(
        "verified",
        f"signed with {verified.key}; no file changed, added or removed since",
        signature_path(folder),
        verified.key,
    )
