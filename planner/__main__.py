import sys

try:
    from .cli import main

    code = main()
except KeyboardInterrupt:  # Ctrl-C while the modules load (main handles it afterwards)
    print("interrupted", file=sys.stderr)
    code = 130
sys.exit(code)
