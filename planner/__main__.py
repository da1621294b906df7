import os
import sys

try:
    from .cli import main

    code = main()
except KeyboardInterrupt:  # Ctrl-C while the modules load (main handles it afterwards)
    print("interrupted", file=sys.stderr)
    code = 130
if code == 130:
    # CPython ends a process whose KeyboardInterrupt escaped code run by a C extension (through PyRun_String)
    # by re-raising SIGINT at exit, whatever status was asked for; the interrupt was handled, so leave now
    # (stderr, where "interrupted" went, is line-buffered; output still buffered for stdout is dropped).
    os._exit(130)
sys.exit(code)
