"""Long-lived threads fail loudly: an exception that ends one ends the daemon.

A loop thread that dies (the gateway loop, an app-server's writer, the watchdog
observer, the checkpointer) leaves a process that is alive but deaf: no requests
answered, no rollout followed, and a service manager that sees nothing wrong. So the
daemon installs ``install_excepthook``: any uncaught thread exception is logged with
its traceback, and when the thread is long-lived the daemon is told to stop with a
non-zero exit code, which systemd (``Restart=on-failure``) answers with a restart.

A thread counts as long-lived when it was marked with ``long_lived`` or is an
instance of one of the classes given to ``install_excepthook``. Short-lived helpers
(a timer that tells an actor which has just stopped) are only logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

EXIT_THREAD_FAILED = 70  # EX_SOFTWARE: an internal error; a service manager restarts us
_MARK = "_orbitdock_long_lived"

T = TypeVar("T", bound=threading.Thread)


def long_lived(thread: T) -> T:
    """Mark ``thread`` (before it starts) as one whose death must end the daemon."""
    setattr(thread, _MARK, True)
    return thread


def install_excepthook(on_fatal: Callable[[str, BaseException | None], None],
                       long_lived_types: tuple[type[threading.Thread], ...] = ()
                       ) -> Callable[[threading.ExceptHookArgs], Any]:
    """Log every uncaught thread exception; call ``on_fatal(thread name, exception)``
    when the thread is long-lived. ``on_fatal`` runs on the dying thread: it should
    only signal (set an event), not stop things itself. Returns the hook replaced."""

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        thread = args.thread
        name = thread.name if thread is not None else "unknown"
        fatal = thread is not None and (getattr(thread, _MARK, False)
                                        or isinstance(thread, long_lived_types))
        logger.critical(
            "thread %s died: %s%s", name, args.exc_type.__name__,
            "; stopping the daemon (long-lived thread)" if fatal else "",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            extra={"failed_thread": name})
        if fatal:
            on_fatal(name, args.exc_value)

    previous = threading.excepthook
    threading.excepthook = hook
    return previous
