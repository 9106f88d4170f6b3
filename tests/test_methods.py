"""The contract every way of removing the speaker keeps.

Each method, built by the demo yaml's ``speaker_method`` block from
``--adversary`` (and ``--speaker_norm``), goes through the interface of
:mod:`speechbrain_grl.methods.base`: a training step moves what it should
(forward and backward), its checkpointed state comes back after a save and
a recovery, and under DDP every process ends with the same state.
"""

import copy
import os
import pathlib
import socket
import sys

import pytest
import speechbrain as sb
import torch
from conftest import DEMO_YAML
from hyperpyyaml import load_hyperpyyaml

from speechbrain_grl.brain import SpeakerAdversarialBrain
from speechbrain_grl.dataio import data_hparams, dataio_prep
from speechbrain_grl.dataio.iemocap import prepare_iemocap
from speechbrain_grl.methods import select_method
from speechbrain_grl.utils.ddp import end_distributed

#: (adversary, overrides): every method, and the normalisation around an
#: adversary.
CASES = [
    ("none", {}),
    ("grl", {}),
    ("grl", {"adversary_scale": "absolute"}),
    ("tap", {}),
    ("tap", {"alternate": "next_batch"}),
    ("snp", {}),
    ("spknorm", {}),
    ("grl", {"speaker_norm": True}),
    ("tap", {"speaker_norm": True}),
]
IDS = [a + "".join(f"-{k}={v}" for k, v in o.items()) for a, o in CASES]


def load(demo_folder, out, adversary, **overrides):
    """The demo yaml with ``adversary``; the datasets and a loader."""
    overrides = dict(overrides, demo_folder=str(demo_folder),
                     output_folder=str(out), adversary=adversary)
    with open(DEMO_YAML, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    if not (pathlib.Path(out) / "train.json").is_file():
        prepare_iemocap(hparams["data_folder"], out, seed=hparams["seed"])
    data = dataio_prep(**data_hparams(hparams))
    for key in ("label_encoder", "spk_encoder", "class_counts"):
        hparams[key] = data[key]
    return hparams, data


def build(hparams, checkpointer=None):
    brain = SpeakerAdversarialBrain(
        modules=hparams["modules"], hparams=hparams,
        run_opts={"device": "cpu"}, checkpointer=checkpointer)
    brain.init_optimizers()
    return brain


def batches(brain, data, n=2, size=6):
    """The first ``n`` training batches, through the Brain's loader (which
    also sets the cell weights and the step horizon)."""
    loader = brain.make_dataloader(data["train"], sb.Stage.TRAIN,
                                   batch_size=size)
    brain.on_fit_start()
    it = iter(loader)
    return [next(it) for _ in range(n)]


def settings(method):
    """A method's settings, recursively (its schedule's too)."""
    out = {"class": type(method).__name__}
    for key, value in vars(method).items():
        if key.startswith("_"):
            continue
        if hasattr(value, "__dict__") and not isinstance(value, type):
            value = {"class": type(value).__name__, **{
                k: v for k, v in vars(value).items() if not k.startswith("_")
                and not hasattr(v, "__dict__")}}
            if "method" in vars(method) and key == "method":
                value = settings(vars(method)["method"])
        out[key] = value
    return out


def params(brain):
    return {n: p.detach().clone() for n, p in brain.modules.named_parameters()}


@pytest.fixture(scope="module")
def prepared(demo_assets, tmp_path_factory):
    out = tmp_path_factory.mktemp("methods")
    load(demo_assets, out, "none")  # the manifests, once
    return demo_assets, out


@pytest.mark.parametrize("adversary,overrides", CASES, ids=IDS)
def test_a_step_moves_encoder_heads_and_speaker_head(prepared, adversary,
                                                     overrides):
    hparams, data = load(*prepared, adversary, **overrides)
    brain = build(hparams)
    method = brain.method
    assert method.name == adversary or overrides.get("speaker_norm")
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    before = params(brain)
    for batch in batches(brain, data, n=3):  # next_batch: both turns
        loss = brain.fit_batch(batch)
        assert torch.isfinite(torch.as_tensor(loss)).all()
    after = params(brain)
    for prefix in ("ssl.", "projection.", "emo_head.", "spk_head."):
        assert any(not torch.equal(before[n], after[n])
                   for n in before if n.startswith(prefix)), prefix
    assert float(method.strength(brain)) >= 0.0
    brain.on_stage_end(sb.Stage.TRAIN, float(loss))
    assert {"loss", "emo_loss", "spk_loss", "lambda"} <= set(
        brain.train_stats)
    normalised = adversary == "spknorm" or overrides.get("speaker_norm")
    counts = brain.modules.spk_norm.count
    assert bool(counts.sum() > 0) == bool(normalised)


def test_cpu_training_steps_run_pytorchs_own_convolutions(prepared,
                                                         monkeypatch):
    """fp32 CPU training steps of a Hugging Face encoder whose front end
    trains use PyTorch's own convolutions, neither oneDNN's nor NNPACK's
    (faster backward, benchmarks/conv_backend.md); the flags are back as
    they were after the step, and evaluation keeps them."""
    hparams, data = load(*prepared, "none")
    brain = build(hparams)
    seen = []
    step = brain.method.fit_batch
    monkeypatch.setattr(brain.method, "fit_batch", lambda b, batch: (
        seen.append((torch.backends.mkldnn.enabled,
                     torch._C._get_nnpack_enabled())), step(b, batch))[1])
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    was = (torch.backends.mkldnn.enabled, torch._C._get_nnpack_enabled())
    assert was == (True, True)  # PyTorch's defaults
    brain.fit_batch(batches(brain, data, n=1)[0])
    assert seen == [(False, False)]
    assert (torch.backends.mkldnn.enabled,
            torch._C._get_nnpack_enabled()) == was
    brain.precision = "bf16"  # oneDNN does bfloat16: left alone
    brain.fit_batch(batches(brain, data, n=1)[0])
    assert seen == [(False, False), was]


def front_end_step(brain, data):
    """One training step; per front-end forward, whether the waveform
    required a gradient, whether the output did, and whether oneDNN was
    on; the parameters that moved."""
    front = brain.modules.ssl.model.feature_extractor
    seen, wav = [], []
    hooks = [front.conv_layers[0].register_forward_hook(
        lambda module, inputs, out: wav.append(inputs[0].requires_grad)),
        front.register_forward_hook(lambda module, inputs, out: seen.append(
            (wav[-1], out.requires_grad, torch.backends.mkldnn.enabled)))]
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    before = params(brain)
    brain.fit_batch(batches(brain, data, n=1)[0])
    for hook in hooks:
        hook.remove()
    after = params(brain)
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    front_moved = any(n.startswith("ssl.model.feature_extractor.")
                      for n in moved)
    return seen, front_moved, any(n.startswith("ssl.model.encoder.")
                                  for n in moved)


def test_a_frozen_front_end_runs_no_backward_pass(prepared):
    """``freeze_feature_extractor: True``: the front end keeps its weights
    and, unlike with SpeechBrain's wrapper alone, builds no graph in a
    training step (nnet/front_end.py), on oneDNN's kernels; the rest of
    the encoder trains."""
    hparams, data = load(*prepared, "grl", freeze_feature_extractor=True)
    seen, front_moved, encoder_moved = front_end_step(build(hparams), data)
    assert seen == [(False, False, True)]
    assert not front_moved and encoder_moved


def test_a_trained_front_end_skips_the_waveform_gradient(prepared):
    """A trained front end's weights train, but the waveform asks for no
    gradient; with gradient checkpointing on (which needs it), it does,
    and the weights still train."""
    hparams, data = load(*prepared, "none")
    brain = build(hparams)
    seen, front_moved, encoder_moved = front_end_step(brain, data)
    assert seen == [(False, True, False)] and front_moved and encoder_moved
    brain.modules.ssl.model.gradient_checkpointing_enable()
    seen, front_moved, _ = front_end_step(brain, data)
    assert seen[0][:2] == (True, True) and front_moved


@pytest.mark.parametrize("adversary,overrides", CASES, ids=IDS)
def test_checkpoint_round_trip(prepared, adversary, overrides, tmp_path):
    """What the method checkpoints (and the speaker statistics) comes back
    in a new process's objects."""
    hparams, data = load(*prepared, adversary, **overrides)
    ckpt = sb.utils.checkpoints.Checkpointer(
        tmp_path, recoverables={"spk_norm": hparams["spk_norm"]})
    brain = build(hparams, ckpt)
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    for batch in batches(brain, data, n=3):
        brain.fit_batch(batch)
    ckpt.save_checkpoint()
    saved = {name: copy.deepcopy(vars(obj))
             for name, obj in brain.method.recoverables().items()}
    strength = brain.method.strength(brain)

    fresh, _ = load(*prepared, adversary, **overrides)
    ckpt2 = sb.utils.checkpoints.Checkpointer(
        tmp_path, recoverables={"spk_norm": fresh["spk_norm"]})
    brain2 = build(fresh, ckpt2)
    assert brain2.method is not brain.method
    ckpt2.recover_if_possible()
    batches(brain2, data, n=0)  # fit's start: the horizon, set anew
    loaded = {name: vars(obj)
              for name, obj in brain2.method.recoverables().items()}
    assert loaded == saved
    assert brain2.method.strength(brain2) == strength
    for name in ("mean", "sq_mean", "count"):
        assert torch.equal(getattr(fresh["spk_norm"], name),
                           getattr(hparams["spk_norm"], name)), name


@pytest.mark.parametrize("fused", [True, False])
def test_cpu_optimizers_are_fused_unless_asked_not_to(prepared, fused):
    """``fused_optimizers`` (on by default) builds every Adam with its
    fused kernel on the CPU too; off, torch's default loop."""
    hparams, _ = load(*prepared, "tap")
    if not fused:
        hparams["fused_optimizers"] = False
    brain = build(hparams)
    assert set(brain.optimizers_dict) == {"ssl", "heads", "spk"}
    for opt in brain.optimizers_dict.values():
        assert bool(opt.defaults["fused"]) is fused


def test_end_of_epoch_checkpointing_costs_the_same_every_epoch(
        prepared, tmp_path, monkeypatch):
    """The end of an epoch keeps the best and the latest checkpoint, and
    reads the checkpoints' meta files as often in epoch 5 as in epoch 1
    (SpeechBrain's ``save_and_keep_only`` grows its default argument by
    one importance key per call when it is left to it)."""
    hparams, _ = load(*prepared, "none", output_folder=str(tmp_path))
    ckpt = sb.utils.checkpoints.Checkpointer(
        tmp_path / "save", recoverables={"emo_head": hparams["emo_head"]})
    brain = build(hparams, ckpt)
    brain.train_stats = {"loss": 1.0}
    calls = []
    find = sb.utils.checkpoints.Checkpointer.find_checkpoints

    def counted(self, *args, **kwargs):
        calls[-1] += 1
        return find(self, *args, **kwargs)

    monkeypatch.setattr(sb.utils.checkpoints.Checkpointer,
                        "find_checkpoints", counted)
    for epoch, ua in enumerate([50.0, 60.0, 40.0, 45.0, 42.0], start=1):
        calls.append(0)
        hparams["epoch_counter"].current = epoch
        brain._on_valid_end(epoch, 1.0, {"loss": 1.0, "UA": ua})
    assert len(set(calls)) == 1, calls
    kept = sorted(c.meta["UA"] for c in ckpt.list_checkpoints())
    assert kept == [42.0, 60.0]  # the latest and the best


def test_select_method_refuses_unknown_names_and_missing_blocks():
    with pytest.raises(Exception, match="adversary: 'gr1' is unknown"):
        select_method("gr1")
    with pytest.raises(Exception, match="no block"):
        select_method("tap", none=object())


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank, world, port, demo_folder, out, results):
    """One process: every case on its own half of the same batches."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank,
                                         world_size=world)
    try:
        for i, (adversary, overrides) in enumerate(CASES):
            torch.manual_seed(0)
            hparams, data = load(demo_folder, out, adversary, **overrides)
            hparams["sorting"] = "ascending"  # the same batches everywhere
            brain = SpeakerAdversarialBrain(
                modules=hparams["modules"], hparams=hparams,
                run_opts={"device": "cpu", "distributed_backend": "gloo"})
            brain.init_optimizers()
            brain.modules.train()
            brain.on_stage_start(sb.Stage.TRAIN, 1)
            for batch in batches(brain, data, n=3, size=4):
                brain.fit_batch(batch)
            method = brain.method
            state = {
                "params": torch.cat([p.detach().reshape(-1) for p in
                                     brain.modules.parameters()]),
                "spk_norm": torch.cat([b.reshape(-1) for b in
                                       hparams["spk_norm"].buffers()]),
                "step": [getattr(o, "current_step", None) for o in
                         method.recoverables().values()],
                "strength": float(method.strength(brain)),
            }
            gathered = [None] * world
            torch.distributed.all_gather_object(gathered, state)
            if rank == 0:
                results[i] = gathered
            del brain, method  # its DDP wrappers, before the group ends
    finally:
        end_distributed({})  # collected, then barrier and destroy


def test_every_process_ends_with_the_same_state_under_ddp(prepared):
    """2 gloo processes, each its share of each global batch: parameters,
    the speaker statistics, the λ schedule and the strength agree."""
    mp = torch.multiprocessing.get_context("spawn")
    results = mp.Manager().dict()
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    torch.multiprocessing.start_processes(
        _ddp_worker, args=(2, _free_port(), *prepared, results), nprocs=2,
        start_method="spawn")
    assert sorted(results.keys()) == list(range(len(CASES)))
    for i, case in enumerate(IDS):
        a, b = results[i]
        assert torch.allclose(a["params"], b["params"], atol=1e-6), case
        assert torch.allclose(a["spk_norm"], b["spk_norm"], atol=1e-6), case
        assert a["step"] == b["step"] and a["strength"] == b["strength"]


LEGACY_YAML = pathlib.Path(__file__).parent / "legacy" / (
    "demo_grl_0.2.yaml")


@pytest.mark.parametrize("adversary,overrides", CASES, ids=IDS)
def test_yaml_files_before_the_methods_still_train(prepared, adversary,
                                                   overrides):
    """A recipe yaml of version 0.2 (flat keys, no ``speaker_method``,
    ``emotion_task`` or ``opt_class``) builds the same method from its
    keys, and the Brain trains with it."""
    demo_folder, out = prepared
    with open(LEGACY_YAML, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, dict(
            overrides, demo_folder=str(demo_folder), output_folder=str(out),
            adversary=adversary))
    assert "speaker_method" not in hparams and "opt_class" not in hparams
    data = dataio_prep(**data_hparams(hparams))
    for key in ("label_encoder", "spk_encoder", "class_counts"):
        hparams[key] = data[key]
    brain = build(hparams)
    new, _ = load(*prepared, adversary, **overrides)
    assert settings(brain.method) == settings(new["speaker_method"])
    assert brain.task.loss_balance and brain.method.loss_balance
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    for batch in batches(brain, data, n=2):
        assert torch.isfinite(torch.as_tensor(brain.fit_batch(batch))).all()
