"""One rank of a distributed `python -m bench run` or `finetune` that fails on purpose, for tests/test_distributed.py:
`cli_rank.py die|hang ARGS...` runs the real CLI, but when training starts this rank exits (die) or
stops answering (hang), as a crashed or stuck worker would."""

import os
import sys
import time

import bench.finetune
import bench.runner
from bench.cli import main

mode, argv = sys.argv[1], sys.argv[2:]


def broken_train(*args, **kwargs):
    if mode == "die":
        os._exit(3)
    time.sleep(3600)


bench.runner.train = bench.finetune.train = broken_train
sys.exit(main(argv))
