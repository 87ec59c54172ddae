from __future__ import annotations

import os

from hemiface.core.quiet import quiet_fds


def test_quiet_fds_captures_what_the_fd_receives(capfd) -> None:
    with quiet_fds(2) as captured:
        os.write(2, b"native noise\n")
    assert captured == ["native noise\n"]
    assert "native noise" not in capfd.readouterr().err


def test_quiet_fds_defaults_to_both(capfd) -> None:
    with quiet_fds() as captured:
        os.write(1, b"out\n")
        os.write(2, b"err\n")
    assert captured[0].splitlines() == ["out", "err"]
    seen = capfd.readouterr()
    assert "out" not in seen.out and "err" not in seen.err
