"""`hemiface sign`: sign a published model set, under the set's lock (TensorFlow-free).

Signing runs under the lock a convert holds while it publishes (`publish.model_set_lock`),
so the signature covers a set that a convert published whole; what an interrupted convert
left is removed first. `convert --sign-key` signs the same way, after its own publish.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from hemiface.convert.publish import model_set_lock
from hemiface.core.errors import HemifaceError


def sign_published_set(
    out: Path, private_key: Path, password: str | None = None
) -> tuple[Path, str | None]:
    """(signature, note): sign OUT with `private_key` while holding its lock; the note says
    what an interrupted convert left and was removed first (None: nothing)."""
    from hemiface.runtime.signing import sign_model_set

    with model_set_lock(out) as note:
        return sign_model_set(out, private_key, password), note


def key_password(variable: str | None) -> str | None:
    """The private key's password from the environment variable named (never an option's
    value: a command line is visible to every user of the machine)."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if value is None:
        raise HemifaceError(f"--password-env {variable}: that environment variable is not set")
    return value


def sign(
    model_set: Annotated[Path, typer.Argument(help="The model-set folder (hemiface.json).")],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="EC private key (PEM, e.g. P-256) to sign with."),
    ] = None,
    password_env: Annotated[
        str | None,
        typer.Option(
            "--password-env", help="Environment variable holding the private key's password."
        ),
    ] = None,
    sigstore: Annotated[
        bool,
        typer.Option(
            "--sigstore",
            help="Keyless Sigstore signing instead of a key (an OIDC login and the public "
            "transparency log; needs the network; not tested by hemiface).",
        ),
    ] = False,
) -> None:
    """Sign every file of a model set (OpenSSF model-signing format, SET/model.sig)."""
    from rich.console import Console

    from hemiface.runtime.signing import SIGNATURE_NAME, sign_model_set_keyless

    if (key is None) == (not sigstore):
        raise HemifaceError("give exactly one of --key PRIVATE.pem and --sigstore")
    if not (model_set / "hemiface.json").is_file():
        raise HemifaceError(f"{model_set}: not a model set (no hemiface.json)")
    out = Console(highlight=False, soft_wrap=True)
    if key is None:
        with model_set_lock(model_set):
            signature = sign_model_set_keyless(model_set)
        out.print(f"signed {model_set} with Sigstore: {signature}", markup=False)
        return
    signature, note = sign_published_set(model_set, key, key_password(password_env))
    if note:
        out.print(f"note: {note}", markup=False)
    out.print(
        f"signed {model_set} with {key}: {signature} (every file but {SIGNATURE_NAME} and "
        "convert's lock and cache)",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(sign)
