#!/usr/bin/env python3
"""What a training process costs before and after its work.

Two measurements, interleaved over ``--rounds``
(:mod:`speechbrain_grl.utils.process`):

- *process*: a fresh Python imports torch, SpeechBrain and transformers,
  builds SpeechBrain's wav2vec2 wrapper around the demo's tiny random
  encoder, runs one forward pass and exits; *as it comes* with Python's
  garbage collector as it starts, *settled* as ``train.py`` runs it
  (collector off through the imports and the build, then
  ``settle_heap()``, and ``gc.freeze()`` before the exit). Reported:
  seconds to the end of the work, from the work's end to the process's
  end (the exit), and the whole process.
- *env.log*: SpeechBrain's ``get_environment_description`` (a ``pip
  freeze`` subprocess) against ``environment_description`` (the same
  text from the installed metadata), in this process, with a check that
  both list the same packages.

    python benchmarks/startup.py

Writes ``benchmarks/startup.md`` and ``startup.json``.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MODES = ("as_it_comes", "settled")

#: The child process: argv ``mode encoder folder``; prints the wall-clock
#: time (``time.time()``) at which its work ended.
CHILD = """
import gc, sys, time
mode, source, folder = sys.argv[1:4]
if mode == "settled":
    gc.disable()
import torch
import speechbrain
from speechbrain.integrations.huggingface.wav2vec2 import Wav2Vec2
from speechbrain_grl.utils.process import settle_heap
ssl = Wav2Vec2(source, save_path=folder, freeze=False)
if mode == "settled":
    settle_heap()
with torch.no_grad():
    ssl(torch.zeros(1, 16000))
print(time.time(), flush=True)
if mode == "settled":
    gc.freeze()
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    return parser.parse_args(argv)


def one_process(mode, source, folder):
    """Seconds to the work's end, of the exit, and in all."""
    start = time.time()
    res = subprocess.run(
        [sys.executable, "-c", CHILD, mode, source, folder],
        capture_output=True, text=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1"))
    end = time.time()
    if res.returncode != 0:
        sys.exit(f"startup.py: the {mode} process failed:\n{res.stderr}")
    work_end = float(res.stdout.split()[-1])
    return {"work_s": work_end - start, "exit_s": end - work_end,
            "total_s": end - start}


def processes(rounds, folder):
    """Median seconds per mode, interleaved."""
    source = common.make_encoder(Path(folder) / "encoder", "tiny")
    runs = {mode: [] for mode in MODES}
    for r in range(rounds):
        order = MODES if r % 2 == 0 else MODES[::-1]
        for mode in order:
            runs[mode].append(
                one_process(mode, str(source), str(Path(folder) / mode)))
            print(mode, runs[mode][-1], flush=True)
    return {mode: {key: round(statistics.median(r[key] for r in rs), 3)
                   for key in ("work_s", "exit_s", "total_s")}
            for mode, rs in runs.items()}


def package_lines(text):
    """The ``name==version`` pairs of an ``env.log`` text (an editable
    install's from its comment line, which pip words as it finds it)."""
    return set(re.findall(r"^(?:#.*\()?([\w.-]+==[^\s)]+)", text, re.M))


def env_logs(rounds):
    """Median seconds of each env.log description, and the packages
    that one lists and the other does not."""
    from speechbrain.utils.logger import get_environment_description

    from speechbrain_grl.utils.process import environment_description

    makers = {"speechbrain": get_environment_description,
              "metadata": environment_description}
    times = {name: [] for name in makers}
    texts = {}
    for r in range(rounds):
        order = list(makers) if r % 2 == 0 else list(makers)[::-1]
        for name in order:
            start = time.perf_counter()
            texts[name] = makers[name]()
            times[name].append(time.perf_counter() - start)
    sb, ours = (package_lines(texts[n]) for n in makers)
    return {"speechbrain_s": round(statistics.median(times["speechbrain"]), 3),
            "metadata_s": round(statistics.median(times["metadata"]), 3),
            "only_pip_freeze": sorted(sb - ours),
            "only_metadata": sorted(ours - sb)}


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        proc = processes(args.rounds, tmp)
    env = env_logs(args.rounds)
    host = common.machine()
    results = {"process": proc, "env_log": env, "rounds": args.rounds,
               "machine": host}
    a, s = proc["as_it_comes"], proc["settled"]
    lines = [
        "# What a training process costs before and after its work", "",
        common.command("startup.py"), "",
        f"Median over {args.rounds} interleaved rounds. Machine: "
        f"{common.cpu_text(host)}, {host['cores']} cores, "
        f"torch {host['torch']}.", "",
        "A fresh process imports torch, SpeechBrain and transformers, "
        "builds SpeechBrain's wav2vec2 wrapper around the tiny random "
        "encoder, runs one forward pass and exits. *settled*: as "
        "`train.py` runs it (garbage collector off through the imports "
        "and the build, then `settle_heap()`, and `gc.freeze()` before "
        "the exit).", "",
        "| process | to the work's end (s) | exit (s) | in all (s) |",
        "|---|---|---|---|",
        f"| as it comes | {a['work_s']} | {a['exit_s']} | {a['total_s']} |",
        f"| settled | {s['work_s']} | {s['exit_s']} | {s['total_s']} |",
        f"| settled / as it comes | {s['work_s'] / a['work_s']:.3f} | "
        f"{s['exit_s'] / a['exit_s']:.3f} | "
        f"{s['total_s'] / a['total_s']:.3f} |", "",
        "`env.log` (the experiment folder's environment description):", "",
        "| maker | seconds |", "|---|---|",
        f"| SpeechBrain's (`pip freeze` subprocess) | "
        f"{env['speechbrain_s']} |",
        f"| `environment_description` (installed metadata) | "
        f"{env['metadata_s']} |", "",
        "Packages (name and version) listed by one and not the other: "
        f"pip freeze only {env['only_pip_freeze'] or 'none'}, "
        f"metadata only {env['only_metadata'] or 'none'}."]
    common.write_report(args.out, "startup", results, lines)


if __name__ == "__main__":
    main()
