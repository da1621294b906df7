import os
import sys

from . import interrupt

interrupt.install()
try:
    from .cli import main

    code = main()
except KeyboardInterrupt:  # Ctrl-C while the modules load (main handles it afterwards)
    print("interrupted", file=sys.stderr)
    code = 130
except ImportError:  # an extension's own error for an import that Ctrl-C interrupted (planner.interrupt)
    if not interrupt.seen():
        raise
    print("interrupted", file=sys.stderr)
    code = 130
if code == 130:
    # CPython ends a process whose KeyboardInterrupt escaped code run by a C extension (through PyRun_String)
    # by re-raising SIGINT at exit, whatever status was asked for; the interrupt was handled, so leave now
    # (stderr, where "interrupted" went, is line-buffered; output still buffered for stdout is dropped).
    os._exit(130)
sys.exit(code)
