#!/usr/bin/env python3
"""Reruns every benchmark and writes ``benchmarks/results.md``.

    python benchmarks/run_all.py            # a few minutes on a CPU
    python benchmarks/run_all.py --quick    # smoke test, tiny encoder only

Each benchmark runs in its own process and leaves a JSON next to the
report (``benchmarks/results/*.json``).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402
import epoch  # noqa: E402
import inference  # noqa: E402
import int8_agreement  # noqa: E402
import train_step  # noqa: E402

NOTE = (
    "Timings are medians over repetitions that interleave the compared "
    "settings round-robin (rotating which goes first), so that load from "
    "other processes on a shared machine hits all of them alike; IQR is "
    "the interquartile range. Compare the ratios, not the absolute times."
)


def jobs(quick, threads):
    t = ["--threads", str(threads)]
    if quick:
        return [
            ("train_step_tiny", "train_step.py", ["--quick", *t]),
            ("epoch_tiny", "epoch.py", ["--quick", *t]),
            ("inference_tiny", "inference.py",
             ["--sizes", "tiny", "--precisions", "fp32", "--n", "4",
              "--batch", "4", "--seconds", "2", *t]),
        ]
    return [
        ("train_step_tiny", "train_step.py", ["--size", "tiny", *t]),
        ("train_step_base", "train_step.py",
         ["--size", "base", "--reps", "3", "--warmup", "1",
          "--batch_size", "2", "--seconds", "3", *t]),
        ("epoch_tiny", "epoch.py", [*t]),
        ("inference", "inference.py", [*t]),
        ("int8_agreement", "int8_agreement.py", [*t]),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=str(HERE / "results.md"))
    parser.add_argument("--workdir", default=None,
                        help="where random encoders and the benchmark "
                             "corpus are kept (default: temporary)")
    args = parser.parse_args(argv)
    output = Path(args.output)
    json_dir = output.parent / "results"
    json_dir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or tempfile.mkdtemp(prefix="sbgrl_bench_")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               HF_HUB_OFFLINE="1")
    results = {}
    start = time.perf_counter()
    for name, script, extra in jobs(args.quick, args.threads):
        out = json_dir / f"{name}.json"
        cmd = [sys.executable, str(HERE / script), "--workdir", workdir,
               "--json", str(out), *extra]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        res = subprocess.run(cmd, env=env, check=False)
        if res.returncode != 0:
            sys.exit(f"run_all.py: {script} failed (exit "
                     f"{res.returncode}); see its output above")
        results[name] = json.loads(out.read_text())
    text = report(results, time.perf_counter() - start, args.quick)
    output.write_text(text)
    print(f"wrote {output}")


def report(results, wall, quick):
    """The markdown report."""
    m = next(iter(results.values()))["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {common.cpu_text(m)}, {m['cores']} cores, torch "
        f"{m['torch']}, SpeechBrain {m['speechbrain']}, Python "
        f"{m['python']}, GPU: {m['gpu'] or 'none'}; torch threads: "
        f"{m['torch_threads']}. Written by `python benchmarks/run_all.py"
        f"{' --quick' if quick else ''}` in {wall:.0f} s.",
        "",
        NOTE,
        "",
    ]
    for name, res in results.items():
        lines.append(f"## {name}")
        lines.append("")
        if res["benchmark"] == "train_step":
            c = res["config"]
            lines.append(
                f"Encoder `{res['size']}`, batch {c['batch_size']} x "
                f"{c['seconds']:g} s, {c['reps']} repetitions after "
                f"{c['warmup']} warm-up, {c['device']}, {c['precision']}. "
                "`iteration / none step` is one step for none/grl and an "
                "emotion+speaker step pair for tap/snp (targets: grl "
                "≤ 1.05, tap/snp ≤ 2.05). Memory: peak RSS increase "
                "during training steps, one fresh process per mode."
            )
            lines.append("")
            lines.append(train_step.table(res))
        elif res["benchmark"] == "inference":
            lines.append(inference.table(res))
        elif res["benchmark"] == "int8_agreement":
            lines.append(int8_agreement.table(res))
        else:
            lines.append(epoch.table(res))
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
