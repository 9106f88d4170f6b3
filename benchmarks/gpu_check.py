#!/usr/bin/env python3
"""The GPU check: one prepared script, run first whenever a GPU is lent.

Everything it measures goes to one report, ``gpu_results.md`` plus
``gpu_results.json`` in ``--out`` (rewritten after every section, so a run
cut short still leaves what it measured). Sections:

``steps``
    Median time of one ``brain.fit_batch`` for ``none``, ``grl``, ``tap``
    and ``snp`` (round-robin over the modes, as ``train_step.py``), on
    random encoders built locally from configs (wav2vec2-base-sized,
    HuBERT-Large-sized, WavLM-Large-sized), at bf16 and fp16; peak
    ``torch.cuda.max_memory_allocated`` per mode; the adversary's overhead
    ratios; and, in fp16, the TAP ascent guard exercised with an injected
    inf gradient (the ascent must be skipped, the encoder untouched, the
    loss scale backed off).
``opts``
    What each speed option buys on the Large encoder (bf16, ``none``):
    SDPA against eager attention, fused against foreach Adam, and the
    lean front end against SpeechBrain's frozen one, which still runs its
    backward pass for the waveform's gradient (``nnet/front_end.py``).
``epoch``
    One IEMOCAP-sized epoch (5531 utterances, IEMOCAP's duration profile,
    synthetic audio) of HuBERT-Large-sized fine-tuning through the real
    recipe path: ``hparams/hubert_large_tap.yaml``, ``dataio_prep``'s
    dynamic batching, ``brain.fit`` with loader workers and pinned memory.
    Seconds per epoch, FLOPs counted by ``torch.utils.flop_counter`` on
    the epoch's own batch shapes, achieved TFLOP/s, and the ratio to the
    FLOP-based limit (the epoch's FLOPs at 40% of the chip's bf16 peak).
``syncs``
    Where a training step waits for the device: every host-device
    synchronisation in one ``fit_batch`` of each mode (HuBERT-Large-sized,
    bf16), caught with ``torch.cuda.set_sync_debug_mode`` and counted by
    the line of this project or SpeechBrain that led to it. A step that
    waits cannot queue the next kernels while the device works, which is
    where a short step's wall time goes (``profile``: device busy 32-68%).
``inference``
    RTF of an exported-layout folder through the stock
    ``EncoderClassifier`` on the GPU, batch 1 and batched, fp32 and bf16.
``ddp``
    The demo recipe under ``torchrun --nproc_per_node=1`` with the nccl
    backend at fp32, bf16 and fp16: SpeechBrain's GPU DDP path and the
    rank-0-only writes.

``--smoke`` runs the same code paths on the CPU with tiny encoders, a
small corpus and gloo, in a few minutes; CI runs it so the script cannot
rot. Usage (see benchmarks/README.md for the GPU machine's command)::

    python benchmarks/gpu_check.py --out benchmarks
    python benchmarks/gpu_check.py --smoke --out /tmp/gpu_smoke
"""

import argparse
import collections
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

HPARAMS = common.RECIPE / "hparams"
YAML = {"base": HPARAMS / "wav2vec2_grl.yaml",
        "large": HPARAMS / "hubert_large_tap.yaml",
        "tiny": HPARAMS / "demo_grl.yaml"}
# Dense bf16 peak of the chips this check is meant for (TFLOP/s).
PEAK_BF16 = {"H100": 989.4, "H200": 989.4, "A100": 312.0}
# The realistic utilisation for the FLOP-based limit.
REALISTIC_MFU = 0.4
IEMOCAP_UTTS = 5531


def log(msg):
    """One progress line, flushed (the device returns the output tail)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="same code paths on the CPU, tiny sizes")
    parser.add_argument("--out", default=None,
                        help="folder of gpu_results.md/.json (default: "
                             "benchmarks/, or a temporary one with --smoke)")
    parser.add_argument("--sections", default="steps,opts,epoch,profile,"
                        "syncs,inference,ddp", help="comma-separated, in this "
                        "order")
    parser.add_argument("--workdir", default=None,
                        help="encoders and corpus (default: temporary)")
    parser.add_argument("--budget_s", type=float, default=450.0,
                        help="later items are skipped past this time")
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0,
                        help="longest utterance of a step batch")
    parser.add_argument("--n_utts", type=int, default=IEMOCAP_UTTS)
    parser.add_argument("--epoch_adversaries", default="grl",
                        help="modes to run the epoch for")
    parser.add_argument("--epoch_variants",
                        default="quantile:80,quantile:240",
                        help="epoch settings, comma-separated, each "
                             "BUCKETING:MAX_BATCH_S[:expand] (expand = the "
                             "CUDA allocator's expandable segments)")
    parser.add_argument("--workers", type=int, default=None,
                        help="loader workers (default: the yaml's)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.reps, args.warmup = 1, 1
        args.batch_size, args.seconds = 2, 1.5
        args.n_utts = min(args.n_utts, 40)
        args.epoch_variants = "warping:24,quantile:24:expand"
        args.budget_s = max(args.budget_s, 600.0)
    return args


class Check:
    """Runs the sections, keeps the results, writes the report."""

    def __init__(self, args):
        import torch

        self.args = args
        self.smoke = args.smoke
        self.start = time.perf_counter()
        self.cuda = torch.cuda.is_available() and not args.smoke
        self.device = "cuda:0" if self.cuda else "cpu"
        if not self.cuda and not args.smoke:
            sys.exit("gpu_check.py: error: no CUDA device is visible; run "
                     "with --smoke to check the code paths on the CPU")
        self.out = Path(args.out or (
            tempfile.mkdtemp(prefix="gpu_smoke_") if args.smoke
            else common.REPO / "benchmarks"))
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.workdir or tempfile.mkdtemp(prefix="gpuchk_"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.results = {"benchmark": "gpu_check", "smoke": args.smoke,
                        "device": self.device,
                        "machine": common.machine(), "sections": {}}
        self.sizes = ["tiny"] * 3 if args.smoke else ["base", "large",
                                                      "large"]
        self.kinds = ["wav2vec2", "hubert", "wavlm"]
        self.precisions = (["fp32", "bf16"] if args.smoke
                           else ["bf16", "fp16"])

    # -- bookkeeping -------------------------------------------------------
    def elapsed(self):
        return time.perf_counter() - self.start

    def over_budget(self):
        return self.elapsed() > self.args.budget_s

    def save(self):
        """Writes the JSON and the Markdown report (atomically)."""
        self.results["wall_s"] = self.elapsed()
        for name, text in (("gpu_results.json",
                            json.dumps(self.results, indent=2)),
                           ("gpu_results.md", report(self.results))):
            tmp = self.out / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.out / name)

    def run(self, sections):
        for name in sections:
            log(f"section {name} ({self.elapsed():.0f} s elapsed)")
            try:
                getattr(self, f"section_{name}")()
            except Exception as err:  # keep going: one report for all
                self.results["sections"].setdefault(name, {})["error"] = (
                    f"{type(err).__name__}: {err}")
                traceback.print_exc()
            self._free()
            self.save()
        log(f"done in {self.elapsed():.0f} s; report in {self.out}")

    def _free(self):
        import gc

        import torch

        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()

    def _sync(self):
        import torch

        if self.cuda:
            torch.cuda.synchronize()

    # -- building ----------------------------------------------------------
    def encoder(self, kind, size):
        from speechbrain_grl.testing.tiny_ssl import make_tiny_ssl

        return make_tiny_ssl(self.work / f"{kind}_{size}", kind=kind,
                             size=size)

    def hparams(self, size, encoder, **overrides):
        """A recipe yaml's hparams around a local random encoder."""
        from hyperpyyaml import load_hyperpyyaml

        config = json.loads((Path(encoder) / "config.json").read_text())
        base = {"output_folder": str(self.work / "out"),
                "data_folder": str(self.work), "ssl_hub": str(encoder),
                "encoder_dim": config["hidden_size"],
                "alternate": "next_batch"}  # time the two turns apart
        base.update(overrides)
        with open(YAML[size], encoding="utf-8") as fin:
            return load_hyperpyyaml(fin, base)

    # -- sections ----------------------------------------------------------
    def section_steps(self):
        from train_step import add_ratios

        sec = self.results["sections"].setdefault("steps", {})
        sec["config"] = {"batch_size": self.args.batch_size,
                         "seconds": self.args.seconds,
                         "reps": self.args.reps,
                         "warmup": self.args.warmup}
        for kind, size in zip(self.kinds, self.sizes):
            encoder = self.encoder(kind, size)
            for prec in self.precisions:
                key = f"{kind}-{size} {prec}"
                if self.over_budget():
                    sec[key] = {"skipped": "time budget"}
                    continue
                log(f"steps: {key}")
                try:
                    res = self._steps_one(size, encoder, prec)
                    add_ratios(res["timing"])
                    sec[key] = res
                except Exception as err:
                    sec[key] = {"error": f"{type(err).__name__}: {err}"}
                    traceback.print_exc()
                self._free()
                self.save()

    def _steps_one(self, size, encoder, precision):
        import torch

        from speechbrain_grl.utils.ddp import unwrap

        hp = self.hparams(size, encoder, adversary="none")
        brain = common.build_brain(hp, self.device, precision)
        ssl = unwrap(brain.modules.ssl).model
        batches = common.fixed_batches(2, self.args.batch_size,
                                       self.args.seconds,
                                       n_speakers=hp["n_speakers"])
        modes = list(common.MODES)
        steps = {m: [] for m in modes}
        pairs = {m: [] for m in modes}
        kinds = {m: {"emotion": [], "speaker": []} for m in modes}
        peak = {m: 0 for m in modes}
        for rep in range(self.args.warmup + self.args.reps):
            order = modes[rep % 4:] + modes[:rep % 4]
            for mode in order:
                if self.cuda:
                    torch.cuda.reset_peak_memory_stats()
                times = self._unit(brain, mode, batches)
                if self.cuda:
                    peak[mode] = max(peak[mode],
                                     torch.cuda.max_memory_allocated())
                if rep < self.args.warmup:
                    continue
                steps[mode] += times
                pairs[mode].append(sum(times))
                kinds[mode]["emotion"].append(times[0])
                kinds[mode]["speaker"].append(times[1])
        timing = {}
        for mode in modes:
            timing[mode] = {"step": common.summary(steps[mode]),
                            "mean_step": sum(steps[mode]) / len(steps[mode]),
                            "pair": common.summary(pairs[mode]),
                            "peak_mem_mb": peak[mode] / 2**20}
            if mode in ("tap", "snp"):
                timing[mode]["emotion_step"] = common.summary(
                    kinds[mode]["emotion"])
                timing[mode]["speaker_step"] = common.summary(
                    kinds[mode]["speaker"])
        res = {"timing": timing,
               "params_m": sum(p.numel() for p in ssl.parameters()) / 1e6,
               "attn_implementation": getattr(
                   ssl.config, "_attn_implementation", None),
               "fused_adam": bool(brain.optimizers_dict["ssl"].defaults.get(
                   "fused"))}
        if precision == "fp16" or (self.smoke and precision == "fp32"):
            res["fp16_guard"] = exercise_ascent_guard(brain, batches[1])
        return res

    def _unit(self, brain, mode, batches):
        """An emotion step then (TAP/SNP) a speaker step; their times."""
        common.use_method(brain, mode)
        times = []
        for batch in batches:
            self._sync()
            start = time.perf_counter()
            brain.fit_batch(batch)
            self._sync()
            times.append(time.perf_counter() - start)
        return times

    def section_opts(self):
        """SDPA vs eager attention, fused vs foreach Adam, the lean front
        end vs SpeechBrain's frozen one (none, bf16)."""
        from speechbrain_grl.utils.ddp import unwrap

        sec = self.results["sections"].setdefault("opts", {})
        kind, size = self.kinds[1], self.sizes[1]
        encoder = self.encoder(kind, size)
        prec = "bf16"
        # Frozen as in the Large yaml (the smoke run's demo yaml trains
        # it), so that the front-end variant means the same in both.
        hp = self.hparams(size, encoder, adversary="none",
                          freeze_feature_extractor=True)
        brain = common.build_brain(hp, self.device, prec)
        ssl = unwrap(brain.modules.ssl).model
        batches = common.fixed_batches(2, self.args.batch_size,
                                       self.args.seconds,
                                       n_speakers=hp["n_speakers"])
        default_attn = getattr(ssl.config, "_attn_implementation", None)
        # (attention, fused Adam, the frozen front end's backward pass)
        variants = {
            "default (sdpa, fused Adam on GPU)": (default_attn, True, False),
            "eager attention": ("eager", True, False),
            "foreach Adam (not fused)": (default_attn, False, False),
            "front end's backward pass (SpeechBrain's freeze)": (
                default_attn, True, True),
        }
        if not self.cuda:  # no fused kernel on the CPU path
            variants.pop("foreach Adam (not fused)")
        times = {name: [] for name in variants}
        names = list(variants)
        for rep in range(self.args.warmup + self.args.reps):
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                attn, fused, backward = variants[name]
                set_attention(ssl, attn)
                # nnet/front_end.py's hook off: the flag as SpeechBrain's
                # wrapper leaves it (the waveform asks for a gradient).
                ssl.feature_extractor._lean = not backward
                ssl.feature_extractor._requires_grad = backward
                if bool(getattr(brain.hparams, "fused_optimizers", True)) \
                        != fused:
                    brain.hparams.fused_optimizers = fused
                    brain.init_optimizers()
                t = self._unit(brain, "none", batches)
                if rep >= self.args.warmup:
                    times[name] += t
        set_attention(ssl, default_attn)
        ssl.feature_extractor._lean = True
        ref = common.summary(times[names[0]])["median"]
        sec.update({
            "encoder": f"{kind}-{size}", "precision": prec,
            "default_attn": default_attn,
            "variants": {n: dict(common.summary(t),
                                 ratio=common.summary(t)["median"] / ref)
                         for n, t in times.items()},
        })

    def section_epoch(self):
        sec = self.results["sections"].setdefault("epoch", {})
        kind, size = self.kinds[1], self.sizes[1]
        encoder = self.encoder(kind, size)
        t0 = time.perf_counter()
        manifest, hours = make_corpus(self.work / "corpus", self.args.n_utts)
        sec["corpus"] = {"n_utts": self.args.n_utts, "hours": hours,
                         "build_s": time.perf_counter() - t0}
        log(f"epoch: corpus of {hours:.2f} h ready")
        flops = None
        for adv in self.args.epoch_adversaries.split(","):
            for variant in self.args.epoch_variants.split(","):
                bucketing, max_len, *extra = variant.split(":")
                expand = "expand" in extra
                key = f"{adv}, {bucketing} {max_len} s" + (
                    ", expandable segments" if expand else "")
                if self.over_budget():
                    sec[key] = {"skipped": "time budget"}
                    continue
                log(f"epoch: {key}")
                try:
                    set_expandable(expand and self.cuda)
                    res, brain = self._epoch_one(
                        size, encoder, manifest, adv, float(max_len),
                        bucketing)
                    if flops is None:
                        flops = flop_model(brain, self.device)
                        sec["flop_model"] = flops
                    add_flops(res, flops, self.results["machine"]["gpu"])
                    sec[key] = res
                    del brain
                except Exception as err:
                    sec[key] = {"error": f"{type(err).__name__}: {err}"}
                    traceback.print_exc()
                self._free()
                self.save()

    def _epoch_one(self, size, encoder, manifest, adversary, max_len,
                   bucketing="quantile"):
        from speechbrain.utils.epoch_loop import EpochCounter

        from speechbrain_grl.brain import SpeakerAdversarialBrain
        from speechbrain_grl.dataio import data_hparams, dataio_prep
        from speechbrain_grl.utils.loader_opts import loader_options

        prec = "bf16" if self.cuda else "fp32"
        hp = self.hparams(
            size, encoder, adversary=adversary,
            data_folder=str(manifest.parent),
            train_annotation=str(manifest), valid_annotation=str(manifest),
            test_annotation=str(manifest), max_batch_length=max_len,
            number_of_epochs=1, bucketing=bucketing,
            output_folder=str(self.work / f"epoch_{adversary}_{max_len:g}"),
        )
        datasets = dataio_prep(**data_hparams(hp))
        hp["label_encoder"] = datasets["label_encoder"]
        hp["spk_encoder"] = datasets["spk_encoder"]
        brain = SpeakerAdversarialBrain(
            modules=hp["modules"], hparams=hp,
            run_opts={"device": self.device, "precision": prec},
            checkpointer=None)
        workers = self.args.workers
        if workers is None:
            workers = hp.get("num_workers", 2)
        kwargs = loader_options({"batch_sampler": datasets["train_sampler"]},
                                self.device, workers)
        shapes, step_s, gaps = [], [], []
        fit_batch = brain.fit_batch
        last = [None]

        def recording(batch):
            begin = time.perf_counter()
            if last[0] is not None:
                gaps.append(begin - last[0])
            wavs, lens = batch.sig
            shapes.append((wavs.shape[0], wavs.shape[1],
                           float(lens.sum()) * wavs.shape[1]))
            loss = fit_batch(batch)  # returns loss.cpu(): synchronises
            last[0] = time.perf_counter()
            step_s.append(last[0] - begin)
            return loss

        brain.fit_batch = recording
        self._sync()
        start = time.perf_counter()
        brain.fit(EpochCounter(1), datasets["train"], None,
                  progressbar=False, train_loader_kwargs=kwargs)
        self._sync()
        epoch_s = time.perf_counter() - start
        brain.fit_batch = fit_batch
        total = sum(s[0] * s[1] for s in shapes)
        real = sum(s[2] for s in shapes)
        steady = sorted(step_s[3:] or step_s)
        res = {"epoch_s": epoch_s, "steps": len(shapes), "precision": prec,
               "workers": kwargs.get("num_workers", 0),
               "max_batch_length": max_len,
               "padding_ratio": 1 - real / total,
               "audio_h_padded": total / 16000 / 3600,
               "step_median_s": steady[len(steady) // 2],
               "steps_sum_s": sum(step_s),
               "first5_steps_s": sum(step_s[:5]),
               "loader_wait_s": sum(gaps),
               "shapes": [s[:2] for s in shapes]}
        return res, brain

    def _large_brain(self):
        """The Large encoder's Brain for ``none`` (bf16 on the GPU):
        ``(hparams, brain, precision)``."""
        hp = self.hparams(self.sizes[1], self.encoder(self.kinds[1],
                                                       self.sizes[1]),
                          adversary="none")
        prec = "bf16" if self.cuda else "fp32"
        return hp, common.build_brain(hp, self.device, prec), prec

    def section_profile(self):
        """torch.profiler over a few recipe-sized steps (Large, bf16)."""
        from torch.profiler import ProfilerActivity, profile

        sec = self.results["sections"].setdefault("profile", {})
        hp, brain, prec = self._large_brain()
        n, secs = (2, 1.5) if self.smoke else (7, 12.0)
        batches = common.fixed_batches(2, n, secs,
                                       n_speakers=hp["n_speakers"])
        for _ in range(2):
            self._unit(brain, "none", batches)
        acts = [ProfilerActivity.CPU] + (
            [ProfilerActivity.CUDA] if self.cuda else [])
        self._sync()
        start = time.perf_counter()
        with profile(activities=acts) as prof:
            for _ in range(2):
                self._unit(brain, "none", batches)
        self._sync()
        wall = time.perf_counter() - start
        sort = "self_cuda_time_total" if self.cuda else "self_cpu_time_total"
        table = prof.key_averages().table(sort_by=sort, row_limit=30)
        cpu = prof.key_averages().table(sort_by="cpu_time_total",
                                        row_limit=20)
        (self.out / "gpu_profile.txt").write_text(
            f"by {sort}\n{table}\n\nby cpu_time_total\n{cpu}\n")
        events = prof.key_averages()
        dev = sum(getattr(e, "self_device_time_total", 0) or 0
                  for e in events) / 1e6
        sec.update({"steps": 4, "batch": f"{n} x {secs:g} s",
                    "wall_s": wall, "device_busy_s": dev,
                    "busy_ratio": dev / wall})
        log(f"profile: wall {wall:.3f} s, device busy {dev:.3f} s")
        del brain

    def section_syncs(self):
        """Host-device synchronisations per ``fit_batch``, by source."""
        sec = self.results["sections"].setdefault("syncs", {})
        hp, brain, prec = self._large_brain()
        batches = common.fixed_batches(2, self.args.batch_size,
                                       self.args.seconds,
                                       n_speakers=hp["n_speakers"])
        sec["config"] = {"encoder": f"{self.kinds[1]}-{self.sizes[1]}",
                         "precision": prec,
                         "batch_size": self.args.batch_size,
                         "seconds": self.args.seconds,
                         "caught": self.cuda}
        for mode in common.MODES:
            self._unit(brain, mode, batches)  # warm-up, unwatched
            with SyncWatch(self.cuda) as watch:
                self._unit(brain, mode, batches)
            sec[mode] = {"per_step": len(watch.where) / len(batches),
                         "where": watch.counts()}
            log(f"syncs: {mode} {sec[mode]['per_step']:g} per step")
        del brain

    def section_inference(self):
        import torch
        from inference import build_folder
        from speechbrain.inference.classifiers import EncoderClassifier

        sec = self.results["sections"].setdefault("inference", {})
        rows = sec.setdefault("rows", [])
        n, seconds = (4, 2.0) if self.smoke else (32, 5.0)
        batch = 4 if self.smoke else 16
        for kind, size in zip(self.kinds[:2], self.sizes[:2]):
            if self.over_budget():
                sec[f"{kind}-{size}"] = {"skipped": "time budget"}
                continue
            folder = build_folder(self.work / f"export_{kind}_{size}", size,
                                  kind=kind)
            clf = EncoderClassifier.from_hparams(
                source=str(folder), savedir=str(folder) + "_savedir",
                run_opts={"device": self.device})
            wavs = torch.randn(n, int(seconds * 16000)) * 0.1
            for prec in ("fp32", "bf16"):
                for bs in (1, batch):
                    best = math.inf
                    with torch.no_grad(), torch.autocast(
                            "cuda" if self.cuda else "cpu",
                            dtype=torch.bfloat16, enabled=prec == "bf16"):
                        clf.classify_batch(wavs[:bs])  # warm-up
                        for _ in range(2):
                            self._sync()
                            start = time.perf_counter()
                            for i in range(0, n, bs):
                                clf.classify_batch(wavs[i:i + bs])
                            self._sync()
                            best = min(best, time.perf_counter() - start)
                    rows.append({"encoder": f"{kind}-{size}",
                                 "precision": prec, "batch": bs,
                                 "rtf": best / (n * seconds)})
                    log(f"inference {kind}-{size} {prec} batch {bs}: RTF "
                        f"{rows[-1]['rtf']:.5f}")
            del clf
            self._free()
        sec["config"] = {"utterances": n, "seconds": seconds}

    def section_ddp(self):
        sec = self.results["sections"].setdefault("ddp", {})
        precisions = ["fp32"] if self.smoke else ["fp32", "bf16", "fp16"]
        backend = "nccl" if self.cuda else "gloo"
        for prec in precisions:
            key = f"torchrun 1 process, {backend}, {prec}"
            if self.over_budget():
                sec[key] = {"skipped": "time budget"}
                continue
            out = self.work / f"ddp_{prec}"
            cmd = [sys.executable, "-m", "torch.distributed.run",
                   "--standalone", "--nproc_per_node=1", "train.py",
                   "hparams/demo_grl.yaml", f"--distributed_backend={backend}",
                   f"--device={self.device}", f"--precision={prec}",
                   f"--output_folder={out}",
                   f"--demo_folder={self.work / 'demo_assets'}",
                   "--number_of_epochs=2"]
            log(f"ddp: {key}")
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=common.RECIPE, capture_output=True,
                                  text=True, check=False,
                                  env=dict(os.environ, HF_HUB_OFFLINE="1"))
            res = {"rc": proc.returncode,
                   "wall_s": time.perf_counter() - start}
            metrics = out / "test_metrics.json"
            if metrics.exists():
                m = json.loads(metrics.read_text())
                res.update(test_UA=m["UA"], test_WA=m["WA"],
                           files=sorted(p.name for p in out.iterdir()))
            if proc.returncode != 0 or not metrics.exists():
                res["stderr_tail"] = proc.stderr[-1500:]
            sec[key] = res
            self.save()


class SyncWatch:
    """Catches the host-device synchronisations inside its block (CUDA's
    sync debug mode, as warnings) and keeps, for each, the innermost line
    of this project, SpeechBrain or transformers that led to it, with the
    operation's own line. Off the GPU it catches nothing.

    Example
    -------
    >>> import warnings
    >>> with SyncWatch(False) as watch:
    ...     warnings.warn("called a synchronizing CUDA operation")
    ...     warnings.warn("something else")
    >>> len(watch.where)
    1
    """

    OURS = ("speechbrain_grl", "speechbrain", "transformers", "benchmarks")

    def __init__(self, cuda):
        self.cuda = cuda
        self.where = []

    def __enter__(self):
        import warnings

        import torch

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("always")
        warnings.showwarning = self._record
        if self.cuda:
            torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, *exc):
        import torch

        if self.cuda:
            torch.cuda.set_sync_debug_mode("default")
        self._catch.__exit__(*exc)
        return False

    def _record(self, message, category, filename, lineno, *args, **kw):
        if "synchroniz" not in str(message):
            return
        stack = traceback.extract_stack()[:-1]
        ours = [f for f in stack if any(f"/{p}/" in f.filename
                                        for p in self.OURS)
                and "gpu_check" not in f.filename]
        frame = ours[-1] if ours else stack[-1]
        here = (f"{'/'.join(Path(frame.filename).parts[-2:])}:"
                f"{frame.lineno} {frame.name}")
        self.where.append(f"{here} ({Path(filename).name}:{lineno})")

    def counts(self):
        """``{place: count}``, most frequent first."""
        return dict(collections.Counter(self.where).most_common())


def set_expandable(on):
    """The CUDA caching allocator's expandable segments, on or off."""
    import torch

    if not torch.cuda.is_available():
        return
    torch.cuda.empty_cache()
    torch.cuda.memory._set_allocator_settings(
        f"expandable_segments:{'True' if on else 'False'}")


def set_attention(model, impl):
    """Switches a transformers model's attention kernel in place."""
    if impl is None:
        return
    if hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation(impl)
            return
        except (ValueError, ImportError, AttributeError):
            pass
    model.config._attn_implementation = impl


def exercise_ascent_guard(brain, batch):
    """One TAP speaker step with an injected inf encoder gradient.

    Returns whether the ascent was skipped, the encoder and projection
    left untouched, every parameter finite, and the fp16 loss scale
    before and after (it must back off).
    """
    import torch

    common.use_method(brain, "tap", step=1)  # next: a speaker step
    adversarial = [p for name in ("ssl", "projection")
                   for p in brain.modules[name].parameters()
                   if p.requires_grad]
    before = [p.detach().clone() for p in adversarial]
    handle = adversarial[0].register_hook(
        lambda g: torch.full_like(g, float("inf")))
    scale = brain.scaler.get_scale() if brain.scaler.is_enabled() else None
    skipped = brain.method.skipped
    try:
        brain.fit_batch(batch)
    finally:
        handle.remove()
    res = {
        "ascent_skipped": brain.method.skipped - skipped == 1,
        "adversarial_unchanged": all(
            torch.equal(a, b.detach()) for a, b in zip(before, adversarial)),
        "all_finite": all(bool(torch.isfinite(p).all())
                          for p in brain.modules.parameters()),
        "scale_before": scale,
        "scale_after": (brain.scaler.get_scale()
                        if brain.scaler.is_enabled() else None),
    }
    res["ok"] = (res["ascent_skipped"] and res["adversarial_unchanged"]
                 and res["all_finite"]
                 and (scale is None or res["scale_after"] < scale))
    return res


def _write_wavs(job):
    import numpy as np
    import soundfile as sf

    folder, items, seed = job
    rng = np.random.default_rng(seed)
    for name, n in items:
        sf.write(os.path.join(folder, name),
                 0.05 * rng.standard_normal(n).astype("float32"), 16000,
                 subtype="PCM_16")


def make_corpus(folder, n_utts, seed=0):
    """Noise wavs with IEMOCAP's duration profile and a manifest; reused.

    Written by a pool of processes (about 800 MB for the full 5531).
    """
    from multiprocessing import Pool

    from epoch import EMOTIONS, iemocap_like_durations

    folder = Path(folder)
    manifest = folder / f"train_{n_utts}_{seed}.json"
    durations = iemocap_like_durations(n_utts, seed)
    hours = float(durations.sum()) / 3600
    if manifest.exists():
        return manifest, hours
    folder.mkdir(parents=True, exist_ok=True)
    items, entries = [], {}
    for i, dur in enumerate(durations):
        name = f"utt{seed}_{i:05d}.wav"
        n = int(dur * 16000)
        items.append((name, n))
        entries[f"utt{i:05d}"] = {
            "wav": f"{{data_root}}/{name}", "duration": n / 16000,
            "emo": EMOTIONS[i % 4], "spk_id": f"spk{i % 10}",
        }
    jobs = max(1, min(16, os.cpu_count() or 1))
    chunks = [(str(folder), items[k::jobs], seed + k) for k in range(jobs)]
    with Pool(jobs) as pool:
        pool.map(_write_wavs, chunks)
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries))
    os.replace(tmp, manifest)
    return manifest, hours


def flop_model(brain, device):
    """FLOPs of one training step as ``B·(a·T + b·T²)``, T in seconds.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` on full
    ``fit_batch`` calls (forward and backward) of one utterance of 4 s and
    one of 16 s, then solved for a and b (linear layers and convolutions
    grow with T, attention with T²).
    """
    import torch
    from speechbrain.dataio.batch import PaddedBatch
    from torch.utils.flop_counter import FlopCounterMode

    brain.modules.train()
    counts = {}
    for t in (4.0, 16.0):
        batch = PaddedBatch([{
            "id": "f", "sig": 0.1 * torch.randn(int(16000 * t)),
            "emo_encoded": torch.LongTensor([0]),
            "spk_encoded": torch.LongTensor([0]), "emo": "neu"}])
        brain.hparams.lambda_schedule.current_step = 0
        counter = FlopCounterMode(display=False)
        with counter:
            brain.fit_batch(batch)
        counts[t] = counter.get_total_flops()
    t1, t2 = 4.0, 16.0
    b = (counts[t2] / t2 - counts[t1] / t1) / (t2 - t1)
    a = counts[t1] / t1 - b * t1
    return {"a": a, "b": b, "counted": {str(k): v for k, v in counts.items()}}


def add_flops(res, flops, gpu):
    """Epoch FLOPs from the batch shapes, TFLOP/s and the limit ratio."""
    total = 0.0
    for batch, samples in res["shapes"]:
        t = samples / 16000
        total += batch * (flops["a"] * t + flops["b"] * t * t)
    res["epoch_pflop"] = total / 1e15
    res["achieved_tflops"] = total / res["epoch_s"] / 1e12
    peak = next((v for k, v in PEAK_BF16.items() if gpu and k in gpu), None)
    if peak:
        res["peak_bf16_tflops"] = peak
        res["mfu"] = res["achieved_tflops"] / peak
        res["limit_s_at_40pct"] = total / (REALISTIC_MFU * peak * 1e12)
        res["ratio_to_limit"] = res["epoch_s"] / res["limit_s_at_40pct"]
    res.pop("shapes")


def report(results):
    """The Markdown report of a results dict."""
    m = results["machine"]
    lines = [
        "# GPU check" + (" (smoke run on the CPU)" if results["smoke"]
                         else ""),
        "",
        f"Written by `python benchmarks/gpu_check.py` in "
        f"{results.get('wall_s', 0):.0f} s. GPU: {m.get('gpu')}; CPU: "
        f"{m.get('cpu')} ({m.get('cores')} cores); torch {m.get('torch')}, "
        f"SpeechBrain {m.get('speechbrain')}, Python {m.get('python')}.",
        "Random encoders built locally from configs (no pretrained "
        "weights); synthetic audio. Timings are medians over repetitions "
        "that interleave the compared settings round-robin.",
    ]
    for k, run in enumerate(results.get("runs", []), 1):
        what = run.get("note") or run.get("command")
        lines.append(f"Run {k} ({run['wall_s']:.0f} s): sections "
                     f"{run['sections']}; {what}.")
    sec = results["sections"]
    if "steps" in sec:
        s = sec["steps"]
        c = s.get("config", {})
        lines += ["", "## Train steps", "",
                  f"Batch {c.get('batch_size')} x {c.get('seconds')} s "
                  f"(lengths 100% down to 80%), {c.get('reps')} repetitions "
                  f"after {c.get('warmup')} warm-up. `iteration / none` is "
                  "one step for none/grl and an emotion+speaker pair for "
                  "tap/snp (targets: grl ≤ 1.05, tap ≤ 2.05).", "",
                  "| encoder | precision | attention | adversary | median "
                  "step (ms) | step / none | iteration / none | peak mem "
                  "(MB) |", "|---|---|---|---|---|---|---|---|"]
        guards = []
        for key, res in s.items():
            if key == "config":
                continue
            enc, prec = key.rsplit(" ", 1)
            if "timing" not in res:
                lines.append(f"| {enc} | {prec} | - | - | "
                             f"{res.get('error') or res.get('skipped')} "
                             "| | | |")
                continue
            for mode, t in res["timing"].items():
                lines.append(
                    f"| {enc} ({res['params_m']:.0f}M) | {prec} | "
                    f"{res['attn_implementation']} | {mode} | "
                    f"{1000 * t['step']['median']:.1f} | "
                    f"{t.get('step_ratio', math.nan):.3f} | "
                    f"{t.get('iteration_ratio', math.nan):.3f} | "
                    f"{t['peak_mem_mb']:.0f} |")
            if "fp16_guard" in res:
                guards.append((key, res["fp16_guard"]))
        if "error" in s:
            lines.append(f"\nerror: {s['error']}")
        for key, g in guards:
            lines.append(
                f"\nAscent guard ({key}, injected inf gradient in a TAP "
                f"speaker step): skipped {g['ascent_skipped']}, encoder "
                f"unchanged {g['adversarial_unchanged']}, all finite "
                f"{g['all_finite']}, loss scale {g['scale_before']} → "
                f"{g['scale_after']}: **{'ok' if g['ok'] else 'FAILED'}**")
    if "opts" in sec:
        s = sec["opts"]
        lines += ["", "## Speed options", ""]
        if "variants" in s:
            lines += [f"{s['encoder']}, {s['precision']}, adversary none; "
                      f"default attention: {s['default_attn']}.", "",
                      "| variant | median step (ms) | step / default |",
                      "|---|---|---|"]
            for name, v in s["variants"].items():
                lines.append(f"| {name} | {1000 * v['median']:.1f} | "
                             f"{v['ratio']:.3f} |")
        if "error" in s:
            lines.append(f"\nerror: {s['error']}")
    if "epoch" in sec:
        s = sec["epoch"]
        c = s.get("corpus", {})
        lines += ["", "## One IEMOCAP-sized epoch", "",
                  f"{c.get('n_utts')} utterances, {c.get('hours', 0):.2f} h "
                  "of synthetic audio with IEMOCAP's duration profile, "
                  "HuBERT-Large-sized encoder, the recipe's "
                  "`hubert_large_tap.yaml` (12 s crop, frozen CNN front "
                  "end) through `brain.fit` with dynamic batching and "
                  "loader workers. FLOPs counted with FlopCounterMode on "
                  "the epoch's padded batch shapes; limit = those FLOPs at "
                  "40% of the bf16 peak (target: epoch ≤ 30 s).", "",
                  "| setting | epoch (s) | steps | median step (ms) | sum of "
                  "steps (s) | loader wait (s) | padding | PFLOP | TFLOP/s "
                  "| MFU | limit (s) | epoch / limit |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for key, res in s.items():
            if key in ("corpus", "flop_model", "error"):
                continue
            if "epoch_s" not in res:
                why = res.get("error") or res.get("skipped")
                lines.append(f"| {key} | {why} ||||||||||")
                continue
            lines.append(
                f"| {key}, {res['precision']}, {res['workers']} workers | "
                f"{res['epoch_s']:.1f} | {res['steps']} | "
                f"{1000 * res['step_median_s']:.0f} | "
                f"{res.get('steps_sum_s', math.nan):.1f} | "
                f"{res['loader_wait_s']:.1f} | {res['padding_ratio']:.3f} | "
                f"{res['epoch_pflop']:.2f} | {res['achieved_tflops']:.0f} | "
                f"{res.get('mfu', math.nan):.2f} | "
                f"{res.get('limit_s_at_40pct', math.nan):.1f} | "
                f"{res.get('ratio_to_limit', math.nan):.2f} |")
        if "error" in s:
            lines.append(f"\nerror: {s['error']}")
        for key, res in sec.get("epoch_first_run", {}).items():
            if "epoch_s" in res:
                lines.append(f"\nRun 1 (another machine of the same kind): "
                             f"{key} (SpeechBrain's warping buckets): "
                             f"{res['epoch_s']:.1f} s, {res['steps']} steps,"
                             f" padding {res['padding_ratio']:.3f}.")
    if "profile" in sec:
        s = sec["profile"]
        lines += ["", "## Profile", ""]
        if "wall_s" in s:
            lines.append(
                f"{s['steps']} steps of batch {s['batch']} (Large, none): "
                f"wall {s['wall_s']:.3f} s, device busy "
                f"{s['device_busy_s']:.3f} s ({100 * s['busy_ratio']:.0f}%)."
                " Top kernels: `gpu_profile.txt`.")
        if "error" in s:
            lines.append(f"\nerror: {s['error']}")
    if "syncs" in sec:
        s = sec["syncs"]
        c = s.get("config", {})
        lines += ["", "## Host-device synchronisations per step", "",
                  f"{c.get('encoder')}, {c.get('precision')}, batch "
                  f"{c.get('batch_size')} x {c.get('seconds')} s; caught "
                  "with CUDA's sync debug mode, by the innermost line of "
                  "this project, SpeechBrain or transformers (the "
                  "operation's own line in brackets)."
                  + ("" if c.get("caught") else " Not on a GPU: none "
                     "caught."), "",
                  "| mode | syncs per step | where (count over 2 steps) |",
                  "|---|---|---|"]
        for mode in common.MODES:
            if mode in s:
                where = "; ".join(f"`{k}` {v}"
                                  for k, v in s[mode]["where"].items())
                lines.append(f"| {mode} | {s[mode]['per_step']:g} | "
                             f"{where or '-'} |")
        if "error" in s:
            lines.append(f"\nerror: {s['error']}")
    if "inference" in sec:
        s = sec["inference"]
        c = s.get("config", {})
        lines += ["", "## Inference (stock EncoderClassifier)", "",
                  f"{c.get('utterances')} utterances of {c.get('seconds')} s"
                  ", best of 2; RTF = wall seconds / audio seconds.", "",
                  "| encoder | precision | batch | RTF |", "|---|---|---|---|"]
        for row in s.get("rows", []):
            lines.append(f"| {row['encoder']} | {row['precision']} | "
                         f"{row['batch']} | {row['rtf']:.5f} |")
        if "error" in s:
            lines.append(f"\nerror: {s['error']}")
    if "ddp" in sec:
        lines += ["", "## Distributed path (demo recipe, 2 epochs)", "",
                  "| run | exit code | wall (s) | test UA | files |",
                  "|---|---|---|---|---|"]
        for key, res in sec["ddp"].items():
            if key == "error":
                continue
            if "rc" not in res:
                lines.append(f"| {key} | {res.get('skipped')} | | | |")
                continue
            files = ", ".join(res.get("files", [])) or "-"
            ua = res.get("test_UA")
            ua = f"{ua:.1f}" if ua is not None else "-"
            lines.append(f"| {key} | {res['rc']} | {res['wall_s']:.0f} | "
                         f"{ua} | {files} |")
            if "stderr_tail" in res:
                tail = res["stderr_tail"].strip().splitlines()[-1:]
                lines.append(f"| | error: {' '.join(tail)[:200]} | | | |")
        if "error" in sec["ddp"]:
            lines.append(f"\nerror: {sec['ddp']['error']}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.smoke:
        common.set_threads(2)
    check = Check(args)
    log(f"gpu_check on {check.device}; out {check.out}; work {check.work}")
    check.run([s for s in args.sections.split(",") if s])
    bad = [k for k, v in check.results["sections"].items()
           if "error" in v or any(isinstance(x, dict) and "error" in x
                                  for x in v.values())]
    if bad:
        sys.exit(f"gpu_check.py: sections with errors: {', '.join(bad)} "
                 f"(see {check.out / 'gpu_results.md'})")


if __name__ == "__main__":
    main()
