"""``python tests/stop_before_send.py OPERATION ARGS...``: the CLI (``python -m planner ARGS``)
stopping itself (SIGSTOP) the first time a request of the botocore OPERATION (e.g.
``DeleteObjects``) is signed and about to be sent, until a SIGCONT.

This freezes a deploy exactly between its checks (the lock's ``check()``, the fence's
signature) and its request, the window no client-side check can close: used by
``test_fencing.py``. It wraps botocore's ``Endpoint._do_get_response``, which each attempt
calls with the request already signed (``create_request``) and before any byte is sent.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys


def main() -> None:
    operation, args = sys.argv[1], sys.argv[2:]
    # This file's folder (tests/) is not the tool's: nothing there may shadow its imports.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]

    import botocore.endpoint

    send = botocore.endpoint.Endpoint._do_get_response
    stopped = False

    def stop_first(self, request, operation_model, context):  # type: ignore[no-untyped-def]
        nonlocal stopped
        if operation_model.name == operation and not stopped:
            stopped = True
            os.kill(os.getpid(), signal.SIGSTOP)
        return send(self, request, operation_model, context)

    botocore.endpoint.Endpoint._do_get_response = stop_first  # type: ignore[method-assign]
    sys.argv = ["planner", *args]
    runpy.run_module("planner", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
