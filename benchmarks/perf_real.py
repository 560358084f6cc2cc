"""`python -m bench perf --real-data DIR`: wall time and peak memory per phase of real-shaped TDEC and TOFU
runs, written to <results>/perf-real.md (the main `bench perf` table is not touched).

DIR holds the real public files as UNLEARNING_BENCH_DATA does: tdec/ (lm_extraction_32_{0..4}.csv,
validation_data/), tofu/ (the configs' JSON files), gpt2-tokenizer/. Each row is one `bench run` of one
epoch through bench/runner.py, in a fresh process, in a temporary results store (nothing is kept but the
table); its run.json `phases` (bench/phases.py) give the numbers:

- TDEC set0, ga+full: a 2-layer GPT-Neo (hidden 64) with the real 50,257-token GPT-2 vocabulary built by
  bench.build_tiny, the real 200-token sequences (the first `sequences` of set0: `--option
  max_sequences`), every utility file of validation_data/ (the first `limit` rows of each), the Reference
  attack scored by the same tiny model, the published thresholds. Untrained, the model misses nearly every
  token: EL_n's worst case. The cost of all 32 sequences is extrapolated (stated in the table): MA and EL_n
  decode each sequence's prefixes independently, so they scale with the number of sequences.
- TOFU forget01, ga+lora r4: a 2-layer Llama (hidden 64) with a 2,000-entry BPE trained on the real
  full.json, used as both target and retain-only model (no fine-tuning: the cost of a run, not its
  numbers), every evaluation set at the real item counts unless `items` caps them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.errors import BenchError

NEEDED = ("tdec/lm_extraction_32_0.csv", "tdec/validation_data", "tofu/forget01.json", "tofu/full.json",
          "gpt2-tokenizer")


def check_real_data(real: Path) -> Path:
    """`real` if it holds the files the real-shaped runs read (NEEDED), else a one-line BenchError naming
    the missing ones."""
    real = Path(real)
    missing = [n for n in NEEDED if not (real / n).exists()]
    if missing:
        raise BenchError(f"--real-data {real} lacks {', '.join(missing)} (expected the real-data directory: tdec/, "
                         f"tofu/, gpt2-tokenizer/, as UNLEARNING_BENCH_DATA)")
    return real


def tdec_layout(real: Path, root: Path) -> Path:
    """The real TDEC files laid out as the knowledge-unlearning repository (symlinks), plus the harness's own
    WikiText rows (retain / held-out / unseen) carved from the repository's validation_data/wikitext.csv
    (documents 0-299 / 300-399 / 400-)."""
    import pandas as pd

    (root / "data" / "main").mkdir(parents=True)
    for i in range(5):
        (root / "data" / "main" / f"lm_extraction_32_{i}.csv").symlink_to(real / "tdec" / f"lm_extraction_32_{i}.csv")
    (root / "validation_data").symlink_to(real / "tdec" / "validation_data")
    docs = pd.read_csv(real / "tdec" / "validation_data" / "wikitext.csv", lineterminator="\n")["text"].dropna()
    for split, part in (("train", docs[:300]), ("validation", docs[300:400]), ("test", docs[400:])):
        (root / f"wikitext_{split}.txt").write_text("".join(line for d in part for line in d.splitlines(keepends=True)))
    return root


def child(suite: str, model: str, split: str, method: str, options: str, data_dir: str, results: str) -> None:
    """One run in this (fresh) process; prints the path of its run.json."""
    import torch

    from bench.runner import run_one
    from bench.spec import RunSpec
    from bench.store import ResultStore
    from suites import SUITES, Context

    torch.set_num_threads(1)
    objective, adapter = method.split("+")
    s = SUITES[suite]
    rank = 4 if adapter in ("lora", "fila") else 0
    spec = RunSpec(suite, model, split, objective, adapter, rank, 0, s.hparams(model).replace(epochs=1),
                   s.check_options(json.loads(options)))
    ctx = Context(store=ResultStore(results), data_dir=data_dir, log=lambda m: None)
    status = run_one(spec, ctx)
    if status != "finished":
        raise SystemExit(f"{suite} run {status}: {ctx.store.reason(spec)}")
    print(ctx.store.run_dir(spec) / "run.json")


def _run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", "import sys; from benchmarks.perf_real import child; child(*sys.argv[1:])",
                          *args], capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if out.returncode != 0:
        raise BenchError(f"the real-shaped {args[0]} run failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(Path(out.stdout.strip().splitlines()[-1]).read_text())


def tdec_record(real: Path, work: Path, sequences: int, limit: int) -> dict:
    """run.json of one epoch of ga+full on TDEC set0 (its first `sequences`; `limit` rows per utility file)
    with a tiny GPT-Neo on the real GPT-2 vocabulary, run in a fresh process under `work`."""
    from bench.build_tiny import main as build

    model = work / "tiny-neo"
    build(["--arch", "gpt-neo", "--out", str(model), "--tokenizer", str(real / "gpt2-tokenizer"), "--hidden", "64"])
    options = {"max_sequences": sequences, "eval_limit": limit, "lm_eval_tasks": "", "mia_reference": str(model)}
    return _run_child("tdec", str(model), "set0", "ga+full", json.dumps(options), str(tdec_layout(real, work / "tdec")),
                      str(work / "results"))


def tofu_record(real: Path, work: Path, items: int) -> dict:
    """run.json of one epoch of ga+lora on TOFU forget01 (`items` per evaluation set, 0 = all) with a tiny
    Llama as target and retain-only model, run in a fresh process under `work`."""
    from bench.build_tiny import main as build

    model = work / "tiny-llama"
    build(["--arch", "llama", "--out", str(model), "--train-on", str(real / "tofu" / "full.json"), "--hidden", "64",
           "--vocab-size", "2000"])
    options = {"target": str(model), "reference": str(model), "max_items": items}
    return _run_child("tofu", str(model), "forget01", "ga+lora", json.dumps(options), str(real / "tofu"),
                      str(work / "results"))


def rows_of(phases: dict, parent: str = "") -> list[tuple[str, dict]]:
    """(path, entry) of every phase, parts after their phase: evaluate-1, evaluate-1 / el_n, ..."""
    out = []
    for name, entry in phases.items():
        path = f"{parent} / {name}" if parent else name
        out.append((path, entry))
        out += rows_of(entry.get("phases", {}), path)
    return out


def table(record: dict) -> str:
    """A run's phases (bench/phases.py) as a Markdown table: seconds, peak and starting RSS in MB."""
    from tabulate import tabulate

    rows = [{"phase": name, "seconds": f"{e['seconds']:.1f}", "peak RSS MB": f"{e['peak_memory_mb']:.0f}",
             "RSS at start MB": f"{e['start_memory_mb']:.0f}"} for name, e in rows_of(record["phases"])]
    return tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True)


def extrapolation(record: dict, sequences: int) -> str:
    """MA + EL_n of a whole 32-sequence evaluation, scaled from the measured `sequences` (the range over the
    run's evaluations)."""
    if sequences >= 32:
        return ""
    # the evaluations after epochs, and TDEC's of the model before unlearning (once per split, in prepare)
    evaluations = [v["phases"] for k, v in record["phases"].items() if k.startswith("evaluate-") and "phases" in v]
    evaluations += [record["phases"]["prepare"].get("phases", {}).get("start_evaluation", {}).get("phases", {})]
    evaluations = [e for e in evaluations if "ma" in e and "el_n" in e]  # EL_n waits for MA's threshold per epoch
    scaled = {k: sorted(e[k]["seconds"] * 32 / sequences for e in evaluations) for k in ("ma", "el_n")}
    span = lambda v: f"{v[0]:.0f}" if round(v[0]) == round(v[-1]) else f"{v[0]:.0f}-{v[-1]:.0f}"
    return (f"Extrapolated to all 32 sequences of a set (x 32/{sequences}: each sequence's prefixes are decoded "
            f"independently, so the cost is linear in the sequences): MA {span(scaled['ma'])} s, EL_n "
            f"{span(scaled['el_n'])} s per evaluation (over this run's {len(evaluations)} evaluations); the measured "
            f"thresholds (`thresholds=measured`: MA + EL_n on 32 unseen sequences, once, then cached) cost about as "
            f"much as one.")


def run(real_data: str, results: str, sequences: int = 8, items: int = 0, limit: int = 64) -> str:
    """Both rows; returns the markdown written to <results>/perf-real.md."""
    import platform

    import torch

    real = check_real_data(Path(real_data))
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="perf-real-") as tmp:
        tdec = tdec_record(real, Path(tmp) / "tdec", sequences, limit)
        tofu = tofu_record(real, Path(tmp) / "tofu", items)
    load = f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    counts = tofu["suite_records"]["eval_items"]
    text = (f"# Real-shaped runs: time and peak memory per phase\n\n"
            f"Written by `python -m bench perf --real-data DIR --real-sequences {sequences} --real-items {items} "
            f"--real-limit {limit}`. Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
            f"(1-minute load average {load}: times on a shared machine vary by 1.5x and more), one torch thread, "
            f"torch {torch.__version__}. Peak memory: the process's resident-set high-water mark, reset at each phase "
            f"(bench/phases.py); a phase's own cost is its peak less its RSS at start. Each run: one epoch; "
            f"evaluate-1 is the model after it, and the model before it is evaluated once and stored (TDEC: "
            f"prepare / start_evaluation; TOFU: the target's evaluation in prepare).\n\n"
            f"## TDEC set0, ga+full, 2-layer GPT-Neo (hidden 64) with the 50,257-token GPT-2 vocabulary\n\n"
            f"{tdec['suite_records']['forget_sequences']} real forget sequences of set0 "
            f"(lengths {tdec['suite_records']['forget_lengths']['min']}-{tdec['suite_records']['forget_lengths']['max']} "
            f"tokens), 32 unseen WikiText sequences as the attacks' non-members, utility on the first {limit} rows "
            f"of each validation_data/ file (sizes {json.dumps(tdec['suite_records']['utility_sets']['dialogue_rows'])} "
            f"dialogues, {tdec['suite_records']['utility_sets']['pile_documents']} Pile documents, "
            f"{tdec['suite_records']['utility_sets']['lambada_passages']} LAMBADA passages), no lm-eval task. "
            f"Whole run: peak {tdec['peak_memory_mb']:.0f} MB.\n\n{table(tdec)}\n\n{extrapolation(tdec, sequences)}\n\n"
            f"## TOFU forget01, ga+lora r4, 2-layer Llama (hidden 64), 2,000-entry BPE, generation "
            f"{tofu['spec']['options'].get('generation', 'new:200')}\n\n"
            f"Items per evaluation: {json.dumps(counts)}; the attacks: forget01 against holdout01. The prepare phase "
            f"evaluates the retain-only model (here the target itself, so once). Whole run: peak "
            f"{tofu['peak_memory_mb']:.0f} MB.\n\n{table(tofu)}\n")
    out = Path(results) / "perf-real.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text
