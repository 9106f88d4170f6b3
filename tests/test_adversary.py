"""The adversary modes move the encoder as they should.

One fixed batch, one Brain per mode from the demo hparams. With the tiny
encoder (no dropout, no masking) every forward pass is deterministic, so
the gradients and updates of each mode can be checked exactly against
gradients computed by hand.
"""

import copy

import pytest
import speechbrain as sb
import torch
import torch.nn.functional as F
from conftest import DEMO_YAML
from hyperpyyaml import load_hyperpyyaml

from speechbrain_grl.brain import SpeakerAdversarialBrain
from speechbrain_grl.dataio import dataio_prep
from speechbrain_grl.iemocap import prepare_iemocap

ALPHA, LAMBDA, ASCENT = 0.8, 0.5, 0.01


@pytest.fixture(scope="module")
def setup(demo_assets, tmp_path_factory):
    out = tmp_path_factory.mktemp("adv")
    overrides = {
        "demo_folder": str(demo_assets),
        "output_folder": str(out),
        "alpha": ALPHA,
        "lambda_max": LAMBDA,
        "lambda_kind": "constant",
        "ascent_step": ASCENT,
    }
    with open(DEMO_YAML, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    prepare_iemocap(hparams["data_folder"], out, seed=hparams["seed"])
    data = dataio_prep(hparams)
    hparams["label_encoder"] = data["label_encoder"]
    loader = sb.dataio.dataloader.make_dataloader(data["train"], batch_size=6)
    batches = iter(loader)
    return hparams, next(batches), next(batches)


def make_brain(setup, adversary):
    hparams, _, _ = setup
    hp = dict(hparams, adversary=adversary)
    modules = copy.deepcopy(hparams["modules"])
    hp["modules"] = modules
    brain = SpeakerAdversarialBrain(
        modules=modules, hparams=hp, run_opts={"device": "cpu"},
        checkpointer=None,
    )
    brain.init_optimizers()
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN)
    return brain


def close(actual, expected, scale, rel=1e-3):
    """Equal up to float32 noise, relative to the scale of all the tensors
    compared (some encoder gradients are ~0 and pure rounding noise)."""
    err = float((actual - expected).abs().max())
    assert err <= rel * scale, f"max error {err:.3g} vs scale {scale:.3g}"


def scale_of(tensors):
    return max(float(t.abs().max()) for t in tensors)


def grads(brain, loss):
    brain.modules.zero_grad(set_to_none=True)
    loss.backward()
    return {
        name: None if p.grad is None else p.grad.clone()
        for name, p in brain.modules.named_parameters()
    }


def emo_and_spk_losses(brain, batch):
    """ℓ_emo and ℓ_spk through a plain (non-reversed) embedding."""
    wavs, lens = batch.sig
    emb = brain.embed(wavs, lens)
    emo_logp = brain.hparams.log_softmax(brain.modules.emo_head(emb))
    emo = F.nll_loss(emo_logp.squeeze(1), batch.emo_encoded.data.squeeze(1))
    spk = F.nll_loss(brain.speaker_logp(emb),
                     batch.spk_encoded.data.squeeze(1))
    return emo, spk


def objective_grads(brain, batch):
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    return grads(brain, brain.compute_objectives(out, batch, sb.Stage.TRAIN))


def ssl_names(g):
    return [n for n in g if n.startswith("ssl.") and g[n] is not None]


def test_grl_reverses_exactly_alpha_lambda_speaker_gradient(setup):
    _, batch, _ = setup
    brain = make_brain(setup, "grl")
    emo, spk = emo_and_spk_losses(brain, batch)
    g_emo = grads(brain, emo)
    emo, spk = emo_and_spk_losses(brain, batch)
    g_spk = grads(brain, spk)
    g_grl = objective_grads(brain, batch)
    names = ssl_names(g_grl) + ["projection.0.w.weight"]
    assert len(names) > 10
    moved = 0.0
    expected = {n: g_emo[n] - ALPHA * LAMBDA * g_spk[n] for n in names}
    scale = scale_of(expected.values())
    for n in names:
        close(g_grl[n], expected[n], scale)
        moved += float((g_grl[n] - g_emo[n]).abs().sum())
    assert moved > 0  # the speaker really reaches the encoder
    # The speaker head itself descends on ℓ_spk (no reversal there).
    for n in g_spk:
        if n.startswith("spk_head."):
            close(g_grl[n], ALPHA * g_spk[n], scale_of([g_spk[n]]))


def test_baseline_sends_no_speaker_gradient_to_the_encoder(setup):
    _, batch, _ = setup
    brain = make_brain(setup, "none")
    emo, _ = emo_and_spk_losses(brain, batch)
    g_emo = grads(brain, emo)
    g_none = objective_grads(brain, batch)
    names = ssl_names(g_none) + ["projection.0.w.weight"]
    scale = scale_of(g_emo[n] for n in names)
    for n in names:
        close(g_none[n], g_emo[n], scale)
    # ...while its speaker head still learns (it is monitored).
    assert g_none["spk_head.1.w.weight"].abs().sum() > 0


def params(brain):
    return {n: p.detach().clone() for n, p in brain.modules.named_parameters()}


@pytest.mark.parametrize("adversary", ["tap", "snp"])
def test_speaker_step_ascends_the_adversarial_parameters(setup, adversary):
    _, batch, _ = setup
    brain = make_brain(setup, adversary)
    _, spk = emo_and_spk_losses(brain, batch)
    g_spk = grads(brain, spk)
    brain.modules.zero_grad(set_to_none=True)
    before = params(brain)
    brain.schedule.current_step = 1  # odd: a speaker step
    brain.fit_batch(batch)
    after = params(brain)
    assert brain.schedule.current_step == 2
    scale = scale_of(ASCENT * g for n, g in g_spk.items()
                     if g is not None and not n.startswith("spk_head."))
    for n in before:
        delta = after[n] - before[n]
        if n.startswith("projection.") or (
            adversary == "tap" and n.startswith("ssl.") and g_spk[n] is not None
        ):
            close(delta, ASCENT * g_spk[n], scale, rel=1e-2)
        elif n.startswith("spk_head."):
            continue
        else:  # emo head; the encoder under SNP
            assert torch.equal(delta, torch.zeros_like(delta)), n
    assert any(
        not torch.equal(after[n], before[n])
        for n in before if n.startswith("spk_head.")
    )
    tap_moved = sum(
        float((after[n] - before[n]).abs().sum())
        for n in before if n.startswith("ssl.")
    )
    assert (tap_moved > 0) == (adversary == "tap")


def test_emotion_step_of_tap_leaves_the_speaker_head_alone(setup):
    _, batch, _ = setup
    brain = make_brain(setup, "tap")
    before = params(brain)
    brain.schedule.current_step = 0  # even: an emotion step
    brain.fit_batch(batch)
    after = params(brain)
    for n in before:
        same = torch.equal(after[n], before[n])
        if n.startswith("spk_head."):
            assert same, n
    assert not torch.equal(after["emo_head.w.weight"],
                           before["emo_head.w.weight"])
    assert any(not torch.equal(after[n], before[n])
               for n in before if n.startswith("ssl."))
