"""Child processes that never outlive the command that started them.

img2dataset (``curate download``) and Streamlit (``t2iscope dashboard``) run as child Python
processes that start workers of their own. ``run_python`` starts the child as the leader of a new
process group, with a guard thread blocked on a pipe whose write end only the parent holds. When
the parent ends in any way (normal exit, an exception, Ctrl+C, SIGTERM from a service manager,
``kill -9``), the kernel closes that pipe and the guard kills the child's whole group, workers
included. So no orphan keeps a port or an output folder busy, and a rerun starts clean.

The parent forwards SIGTERM/SIGINT/SIGHUP as a polite SIGTERM to the group first, so Streamlit
and img2dataset can shut down; the guard's SIGKILL is the backstop.

Every child starts with ``t2iscope.offline.environment()`` (update checks and telemetry off,
Hugging Face hub offline), which the workers it spawns inherit.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from t2iscope import offline

_GRACE_S = 5.0


def run_python(args: Sequence[str], *, input: str | None = None) -> int:
    """Run ``python ARGS`` (``["-c", code, ...]`` or ``["-m", module, ...]``) as a guarded child.

    ``input`` goes to the child's stdin; its environment is ``offline.environment()``. Returns the
    child's exit status (negative: killed by that signal). Signals that stop the parent stop the
    child's whole process group first.
    """
    if not args or args[0] not in ("-c", "-m") or len(args) < 2:
        raise ValueError(f"run_python takes ['-c', code, ...] or ['-m', module, ...], got {list(args)!r}")
    read_end, write_end = os.pipe()  # both non-inheritable; only read_end is passed on
    cmd = [sys.executable, "-m", "t2iscope.children", str(read_end), *args]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if input is not None else None,
        text=True,
        pass_fds=(read_end,),
        env=offline.environment(),
        start_new_session=True,  # own process group: we can stop it and all its workers as one
    )
    os.close(read_end)
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        # Only record and pass on here: the main thread is inside proc.wait(), holding its lock.
        received.append(signum)
        _kill_group(proc.pid, signal.SIGTERM)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[signum] = signal.signal(signum, forward)
    try:
        if input is not None:
            assert proc.stdin is not None
            try:
                proc.stdin.write(input)
                proc.stdin.close()
            except BrokenPipeError:
                pass  # the child died first; its exit status says why
        code = _wait(proc, received)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _stop(proc)
        os.close(write_end)  # the guard kills whatever is left of the group
    if received:  # now act on the signal as we would have without a child
        signum, handler = received[0], previous.get(received[0], signal.SIG_DFL)
        if callable(handler):
            handler(signum, None)
        elif handler == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
    return code


def _wait(proc: subprocess.Popen, received: list[int]) -> int:
    """Wait for the child; once a signal came, give it a grace period, then SIGKILL its group."""
    deadline = None
    while True:
        try:
            return proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            if received and deadline is None:
                deadline = time.monotonic() + _GRACE_S
            if deadline is not None and time.monotonic() > deadline:
                _kill_group(proc.pid, signal.SIGKILL)


def _stop(proc: subprocess.Popen) -> None:
    """Stop what is left of the child's group: SIGTERM, a grace period, then SIGKILL."""
    if proc.poll() is None:
        _kill_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_GRACE_S)
    _kill_group(proc.pid, signal.SIGKILL)  # the leader may be gone while its workers are not
    proc.wait()


def _kill_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _guard(fd: int) -> None:
    """Block until the parent's end of the pipe closes, then kill this process group."""
    while os.read(fd, 1024):
        pass
    os.killpg(0, signal.SIGKILL)


def _main(argv: list[str]) -> None:
    fd, mode, target, *rest = argv
    threading.Thread(target=_guard, args=(int(fd),), daemon=True, name="t2iscope-parent-guard").start()
    if mode == "-c":
        sys.argv = ["-c", *rest]
        exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
    else:
        sys.argv = [target, *rest]
        runpy.run_module(target, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
