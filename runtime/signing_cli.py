"""`hemiface verify`: check a model set's signature in one command (TensorFlow-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hemiface.runtime.errors import HemifaceError


def verify(
    model_set: Annotated[Path, typer.Argument(help="The model-set folder (hemiface.json).")],
    key: Annotated[
        list[Path] | None,
        typer.Option(
            "--key",
            help="Public key (PEM) the set must be signed with (repeat for several); default: "
            "the keys in ~/.config/hemiface/trusted-keys/.",
        ),
    ] = None,
) -> None:
    """Check that a model set is signed by a trusted key and that no file changed since."""
    from rich.console import Console

    from hemiface.runtime.signing import config_keys_folder, trusted_keys, verify_model_set

    keys = trusted_keys(key or ())
    if not keys:
        raise HemifaceError(
            f"no key to check {model_set} against: give --key PUBLIC.pem or put keys in "
            f"{config_keys_folder()}"
        )
    verified = verify_model_set(model_set, keys)
    Console(highlight=False, soft_wrap=True).print(
        f"{model_set}: verified, signed with {verified.key}; no file changed, added or "
        "removed since",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(verify)
