"""Stop points: a hub told to stop at one freezes there, so a crash test can kill
it between two steps of a change.

``PARLEY_STOP_AT=<name>`` in the environment of ``parley serve`` (tests only):
when the process reaches the point ``name`` it writes
``parley stopped at <name>`` to stderr and stops itself with SIGSTOP, between
the two steps; the test then kills it with SIGKILL and starts another hub on
the same store. Unset, a stop point is one comparison.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Final

STOP_AT: Final = os.environ.get("PARLEY_STOP_AT") or None


def stop_point(name: str) -> None:
    if STOP_AT is not None and name == STOP_AT:
        print(f"parley stopped at {name}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)
