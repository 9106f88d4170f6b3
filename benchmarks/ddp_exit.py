#!/usr/bin/env python3
"""How often a finished 2-process DDP run fails as it exits.

Each round launches two gloo jobs of 2 processes with torchrun,
interleaved. Each process trains a small DDP-wrapped model for a few
steps with ``train.py``'s heap handling (collector off through the
build, ``settle_heap``, ``gc.freeze()`` at the end), then ends it one of
two ways:

- *destroy*: a barrier and ``destroy_process_group()`` with the DDP
  wrapper still alive (``train.py`` before ``end_distributed``);
- *end_distributed*: :func:`speechbrain_grl.utils.ddp.end_distributed`,
  which collects the wrappers first.

A job fails when torchrun exits non-zero; each failure's reason is the
first matching line of its output.

    python benchmarks/ddp_exit.py --rounds 40

Writes ``benchmarks/ddp_exit.md`` and ``ddp_exit.json``.
"""

import argparse
import gc
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MODES = ("destroy", "end_distributed")


def worker(mode):
    """One rank of a job (run by torchrun): train, then end as ``mode``."""
    gc.disable()
    import torch

    from speechbrain_grl.utils.ddp import end_distributed
    from speechbrain_grl.utils.process import settle_heap

    torch.distributed.init_process_group("gloo")
    modules = torch.nn.ModuleDict({"net": torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 4))})
    modules["net"] = torch.nn.parallel.DistributedDataParallel(
        modules["net"])
    settle_heap()
    opt = torch.optim.Adam(modules.parameters())
    for _ in range(20):
        loss = modules["net"](torch.randn(32, 64)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if mode == "destroy":
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    else:
        end_distributed(modules)
    gc.freeze()


def job(mode, folder):
    """Runs one 2-process job; returns None, or why it failed."""
    env = dict(os.environ, PYTHONPATH=str(common.REPO))
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc_per_node=2", __file__, "--worker", mode],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    if res.returncode == 0:
        return None
    text = res.stdout + res.stderr
    for line in text.splitlines():
        if "terminate called" in line or "Error" in line:
            return line.strip()[:120]
    return f"exit {res.returncode}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--out", default=os.path.dirname(
        os.path.abspath(__file__)))
    parser.add_argument("--name", default="ddp_exit")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return
    failures = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in MODES:
                why = job(mode, tmp)
                if why:
                    failures[mode].append({"round": r + 1, "why": why})
            print(f"round {r + 1}: " + ", ".join(
                f"{m} {len(f)}" for m, f in failures.items()), flush=True)
    host = common.machine()
    results = {"rounds": args.rounds, "machine": host, "failures": failures}
    lines = [
        "# Failed exits of a finished 2-process DDP run", "",
        common.command("ddp_exit.py", argv), "",
        "Two gloo processes train a small DDP model for 20 steps with "
        "`train.py`'s heap handling, then end: *destroy*, a barrier and "
        "`destroy_process_group()` with the DDP wrapper alive (train.py "
        "before `end_distributed`); *end_distributed*, the wrappers "
        "unwrapped and collected first. Interleaved rounds; a failure is "
        "a non-zero exit of torchrun. Machine: "
        f"{common.cpu_text(host)}, {host['cores']} cores, "
        f"torch {host['torch']}.", "",
        "| ending | jobs | failed | reasons |", "|---|---|---|---|"]
    for mode, fails in failures.items():
        reasons = sorted({f["why"] for f in fails})
        lines.append(f"| {mode} | {args.rounds} | {len(fails)} | "
                     f"{'; '.join(reasons) or '—'} |")
    common.write_report(args.out, args.name, results, lines)


if __name__ == "__main__":
    main()
