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


def test_threads_that_silence_at_once_leave_the_fds_as_they_were(tmp_path) -> None:
    """Two threads swapping fd 2 at the same time must not restore each other's sink:
    whatever is written after must reach the real stderr (here a file)."""
    import subprocess
    import sys

    code = (
        "import os, threading, time\n"
        "from hemiface.core.quiet import quiet_fds\n"
        "def work():\n"
        "    for _ in range(200):\n"
        "        with quiet_fds(2):\n"
        "            os.write(2, b'chatter')\n"
        "            time.sleep(0.0005)\n"
        "threads = [threading.Thread(target=work) for _ in range(4)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "os.write(2, b'still here')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"still here"
