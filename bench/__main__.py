import sys

from bench.errors import BenchError

try:
    from bench.cli import main
except BenchError as e:  # raised while the registries load: a plug-in of UNLEARNING_BENCH_PLUGINS that fails
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)

sys.exit(main())
