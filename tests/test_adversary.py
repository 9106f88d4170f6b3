"""The adversary modes move the encoder as they should.

One fixed batch, one Brain per mode from the demo hparams. With the tiny
encoder (no dropout, no masking) every forward pass is deterministic, so
the gradients and updates of each mode can be checked exactly against
gradients computed by hand.
"""

import copy
import math

import pytest
import speechbrain as sb
import torch
import torch.nn.functional as F
from conftest import DEMO_YAML
from hyperpyyaml import load_hyperpyyaml

from speechbrain_grl.brain import SpeakerAdversarialBrain
from speechbrain_grl.dataio import data_hparams, dataio_prep
from speechbrain_grl.dataio.iemocap import prepare_iemocap
from speechbrain_grl.methods import method_from_hparams
from speechbrain_grl.nnet.speaker_norm import speaker_stats

ALPHA, LAMBDA, ASCENT, RATIO = 0.8, 0.5, 0.01, 0.3


@pytest.fixture(scope="module")
def setup(demo_assets, tmp_path_factory):
    out = tmp_path_factory.mktemp("adv")
    overrides = {
        "demo_folder": str(demo_assets),
        "output_folder": str(out),
        "alpha": ALPHA,
        "lambda_max": LAMBDA,
        "ascent_step": ASCENT,
        "ascent_ratio": RATIO,
        "adversary_conditional": True,
        "alternate": "next_batch",  # one turn per fit_batch: checkable
    }
    with open(DEMO_YAML, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    prepare_iemocap(hparams["data_folder"], out, seed=hparams["seed"])
    data = dataio_prep(**data_hparams(hparams))
    hparams["label_encoder"] = data["label_encoder"]
    loader = sb.dataio.dataloader.make_dataloader(data["train"], batch_size=6)
    batches = iter(loader)
    return hparams, next(batches), next(batches)


def make_brain(setup, adversary, scale="relative", **settings):
    """A Brain with the method ``adversary`` built from the yaml's flat
    keys (``settings`` override them)."""
    hparams, _, _ = setup
    hp = dict(hparams, adversary=adversary, adversary_scale=scale,
              **settings)
    hp["speaker_method"] = method_from_hparams(hp)
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


def spk_logp(brain, emb, emotions):
    """The Brain's speaker head on ``emb``, as its method reads it."""
    return brain.method.speaker_logp(brain, emb, emotions)


def emo_and_spk_losses(brain, batch):
    """ℓ_emo and ℓ_spk through a plain (non-reversed) embedding."""
    wavs, lens = batch.sig
    emb = brain.embed(wavs, lens)
    emo_logp = brain.hparams.log_softmax(brain.modules.emo_head(emb))
    emotions = batch.emo_encoded.data.squeeze(1)
    emo = F.nll_loss(emo_logp.squeeze(1), emotions)
    spk = F.nll_loss(spk_logp(brain, emb, emotions),
                     batch.spk_encoded.data.squeeze(1))
    return emo, spk


def objective_grads(brain, batch):
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    return grads(brain, brain.compute_objectives(out, batch, sb.Stage.TRAIN))


def embedding_and_emotion_loss(brain, batch):
    """The embedding (in the graph), the emotions and ℓ_emo of it."""
    wavs, lens = batch.sig
    emb = brain.embed(wavs, lens)
    emotions = batch.emo_encoded.data.squeeze(1)
    emo = F.nll_loss(
        brain.hparams.log_softmax(brain.modules.emo_head(emb)).squeeze(1),
        emotions)
    return emb, emotions, emo


def step_gradients(brain, batch):
    """The gradients each parameter holds when ``fit_batch(batch)`` steps
    the optimizers (the step then runs as usual)."""
    spy = {}
    original = brain.optimizers_step

    def capture():
        spy.update({n: None if p.grad is None else p.grad.clone()
                    for n, p in brain.modules.named_parameters()})
        original()

    brain.optimizers_step = capture
    brain.fit_batch(batch)
    return spy


def ssl_names(g):
    return [n for n in g if n.startswith("ssl.") and g[n] is not None]


def test_absolute_grl_reverses_exactly_alpha_lambda_speaker_gradient(setup):
    _, batch, _ = setup
    brain = make_brain(setup, "grl", "absolute")
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


def test_relative_grl_reverses_lambda_times_the_emotion_gradient(setup):
    """Relative GRL: the encoder receives the backprop of g_emo − c·g_spk
    from the embedding, c = λ‖g_emo‖/‖g_spk‖ at the embedding, in one
    backward pass; the speaker head descends on ℓ_spk as in the
    baseline."""
    _, batch, _ = setup
    brain = make_brain(setup, "grl", "relative")
    emb, emotions, emo = embedding_and_emotion_loss(brain, batch)
    spk = F.nll_loss(spk_logp(brain, emb, emotions),
                     batch.spk_encoded.data.squeeze(1))
    g_e, = torch.autograd.grad(emo, emb, retain_graph=True)
    g_s, = torch.autograd.grad(spk, emb, retain_graph=True)
    coef = LAMBDA * g_e.norm() / g_s.norm()
    brain.modules.zero_grad(set_to_none=True)
    emb.backward(g_e - coef * g_s)
    expected = {n: p.grad.clone() for n, p in brain.modules.named_parameters()
                if p.grad is not None and not n.startswith("emo_head.")}
    brain.modules.zero_grad(set_to_none=True)
    g_spk_head = grads(brain, emo_and_spk_losses(brain, batch)[1])
    brain.modules.zero_grad(set_to_none=True)
    before = params(brain)
    spy = step_gradients(brain, batch)
    names = [n for n in expected if n.startswith(("ssl.", "projection."))]
    assert len(names) > 10
    scale = scale_of(expected[n] for n in names)
    for n in names:
        close(spy[n], expected[n], scale)
    for n in g_spk_head:
        if n.startswith("spk_head.") and g_spk_head[n] is not None:
            close(spy[n], ALPHA * g_spk_head[n], scale_of([g_spk_head[n]]))
    assert any(not torch.equal(before[n], p) for n, p in
               params(brain).items() if n.startswith("ssl."))


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
    assert g_none["spk_head.hidden.0.weight"].abs().sum() > 0


def params(brain):
    return {n: p.detach().clone() for n, p in brain.modules.named_parameters()}


def expected_ascent(brain, g_spk, scale, names, group):
    """The ascent of one parameter group: size·g (absolute), or
    λ·lr·g / RMS(g over the group) (relative)."""
    if scale == "absolute":
        return {n: ASCENT * g_spk[n] for n in names}
    grads_ = [g_spk[n] for n in names]
    rms = math.sqrt(sum(float((g ** 2).sum()) for g in grads_)
                     / sum(g.numel() for g in grads_))
    lr = brain.optimizers_dict[group].param_groups[0]["lr"]
    return {n: RATIO * lr * g_spk[n] / rms for n in names}


@pytest.mark.parametrize("scale", ["relative", "absolute"])
@pytest.mark.parametrize("adversary", ["tap", "snp"])
def test_speaker_step_ascends_the_adversarial_parameters(setup, adversary,
                                                         scale):
    _, batch, _ = setup
    brain = make_brain(setup, adversary, scale)
    _, spk = emo_and_spk_losses(brain, batch)
    g_spk = grads(brain, spk)
    brain.modules.zero_grad(set_to_none=True)
    before = params(brain)
    brain.method.schedule.current_step = 1  # odd: a speaker step
    brain.fit_batch(batch)
    after = params(brain)
    assert brain.method.schedule.current_step == 2
    proj = [n for n in before if n.startswith("projection.")]
    ssl = [n for n in before if n.startswith("ssl.") and g_spk[n] is not None]
    expected = expected_ascent(brain, g_spk, scale, proj, "heads")
    if adversary == "tap":
        expected.update(expected_ascent(brain, g_spk, scale, ssl, "ssl"))
    for group in ([proj, ssl] if adversary == "tap" else [proj]):
        size = scale_of(expected[n] for n in group)
        for n in group:
            close(after[n] - before[n], expected[n], size, rel=1e-2)
    for n in before:
        delta = after[n] - before[n]
        if n in expected:
            continue
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


@pytest.mark.parametrize("adversary", ["tap", "snp"])
def test_snp_speaker_step_runs_the_encoder_without_a_graph(setup, adversary):
    """SNP's speaker step never backpropagates through the encoder (what
    makes it cheap); TAP's does, since the encoder ascends."""
    _, batch, _ = setup
    brain = make_brain(setup, adversary)
    tracked = []
    hook = brain.modules.ssl.register_forward_hook(
        lambda module, inputs, out: tracked.append(out.requires_grad))
    try:
        brain.method.schedule.current_step = 1  # odd: a speaker step
        brain.fit_batch(batch)
    finally:
        hook.remove()
    assert tracked == [adversary == "tap"]


def test_emotion_step_of_tap_leaves_the_speaker_head_alone(setup):
    _, batch, _ = setup
    brain = make_brain(setup, "tap")
    before = params(brain)
    brain.method.schedule.current_step = 0  # even: an emotion step
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


@pytest.mark.parametrize("fp16_scaler", [False, True])
def test_non_finite_speaker_gradient_skips_the_ascent(setup, fp16_scaler):
    """An inf in one encoder gradient (as an fp16 overflow gives) must not
    reach the weights: the ascent is skipped, the speaker head still
    steps, and with a loss scaler the scale backs off."""
    _, batch, _ = setup
    brain = make_brain(setup, "tap")
    if fp16_scaler:  # GradScaler's own logic, on the CPU
        brain.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    target = next(p for n, p in brain.modules.named_parameters()
                  if n.startswith("ssl.") and p.requires_grad)
    handle = target.register_hook(lambda g: torch.full_like(g, math.inf))
    before = params(brain)
    brain.method.schedule.current_step = 1  # a speaker turn
    try:
        brain.fit_batch(batch)
    finally:
        handle.remove()
    after = params(brain)
    assert brain.method.skipped == 1
    for n in before:
        if n.startswith(("ssl.", "projection.", "emo_head.")):
            assert torch.equal(after[n], before[n]), n
        assert torch.isfinite(after[n]).all(), n
    assert any(not torch.equal(after[n], before[n])
               for n in before if n.startswith("spk_head."))
    if fp16_scaler:
        assert brain.scaler.get_scale() < 1024.0
    # The next speaker turn, with finite gradients, ascends again.
    brain.method.schedule.current_step = 1
    brain.fit_batch(batch)
    assert brain.method.skipped == 1
    assert any(not torch.equal(params(brain)[n], after[n])
               for n in after if n.startswith("ssl."))


def test_same_batch_takes_both_turns_on_one_batch(setup):
    """``alternate: same_batch``: one fit_batch is the emotion turn (the
    emotion path descends, as in the baseline) and then the speaker turn
    (the speaker head descends, the adversarial parameters ascend)."""
    _, batch, _ = setup
    base = make_brain(setup, "none")
    brain = make_brain(setup, "tap", alternate="same_batch")
    before = params(brain)
    base.fit_batch(batch)  # the baseline's step from the same weights
    emotion_only = params(base)
    start = brain.method.schedule.current_step
    spy = []
    original = brain.method.speaker_step
    brain.method.speaker_step = (
        lambda br, b: spy.append(params(brain)) or original(br, b))
    brain.fit_batch(batch)
    after = params(brain)
    assert brain.method.schedule.current_step == start + 1 and len(spy) == 1
    mid = spy[0]  # after the emotion turn, before the speaker turn
    for n in before:
        if n.startswith(("ssl.", "projection.", "emo_head.")):
            close(mid[n], emotion_only[n], scale_of([before[n]]), rel=1e-5)
        if n.startswith("spk_head."):
            assert torch.equal(mid[n], before[n]), n
    assert any(not torch.equal(after[n], mid[n]) for n in after
               if n.startswith("ssl."))
    assert any(not torch.equal(after[n], mid[n]) for n in after
               if n.startswith("spk_head."))
    assert all(torch.equal(after[n], mid[n]) for n in after
               if n.startswith("emo_head."))


@pytest.mark.parametrize("adversary", ["grl", "tap"])
def test_extra_speaker_head_steps_move_only_the_speaker_head(setup,
                                                             adversary):
    """``spk_head_steps``: after the usual step, the speaker head alone
    takes extra steps on the remembered (detached) embeddings, which
    lowers its loss there; the encoder, projection and emotion head end
    exactly where the step without extra updates leaves them."""
    _, batch, other = setup
    # Both turns in every step (shared schedule).
    plain = make_brain(setup, adversary, alternate="same_batch")
    brain = make_brain(setup, adversary, alternate="same_batch",
                       spk_head_steps=4, spk_head_memory=2)
    plain.fit_batch(batch)
    brain.fit_batch(batch)
    moved, same = params(brain), params(plain)
    for n in moved:
        if not n.startswith("spk_head."):
            assert torch.equal(moved[n], same[n]), n
    assert any(not torch.equal(moved[n], same[n]) for n in moved
               if n.startswith("spk_head."))
    emb, spk, emo = brain.method._memory[0]
    assert not emb.requires_grad

    def nll(b):
        with torch.no_grad():
            return float(F.nll_loss(
                b.method.logp_from(b, b.modules.spk_head, emb, emo), spk))

    brain.modules.spk_head.eval()  # running statistics stay put
    plain.modules.spk_head.eval()
    assert nll(brain) < nll(plain)
    brain.modules.spk_head.train()
    for _ in range(2):
        brain.fit_batch(other)
    assert len(brain.method._memory) == 2  # the last spk_head_memory batches
    assert brain.method._memory[-1][0].shape[0] == len(other.id)


def confusion_grad(brain, batch):
    """g_conf = ∂ℓ_conf/∂θ for every parameter before the speaker head,
    ℓ_conf: cross-entropy of the speaker head's prediction to a uniform
    guess over all speakers; and the embedding's gradient."""
    wavs, lens = batch.sig
    emb = brain.embed(wavs, lens)
    emotions = batch.emo_encoded.data.squeeze(1)
    conf = -spk_logp(brain, emb, emotions).mean(-1).mean()
    brain.modules.zero_grad(set_to_none=True)
    g_emb, = torch.autograd.grad(conf, emb, retain_graph=True)
    conf.backward()
    g = {n: None if p.grad is None else p.grad.clone()
         for n, p in brain.modules.named_parameters()}
    brain.modules.zero_grad(set_to_none=True)
    return g, g_emb


def test_confusion_grl_descends_the_uniform_cross_entropy(setup):
    """``adversary_objective: confusion`` with relative GRL: the encoder
    receives the backprop of g_emo + c·g_conf (a descent on ℓ_conf, not
    an ascent on ℓ_spk), c = λ‖g_emo‖/‖g_conf‖ at the embedding."""
    _, batch, _ = setup
    brain = make_brain(setup, "grl", "relative",
                       adversary_objective="confusion")
    _, g_c = confusion_grad(brain, batch)
    emb, emotions, emo = embedding_and_emotion_loss(brain, batch)
    g_e, = torch.autograd.grad(emo, emb, retain_graph=True)
    coef = LAMBDA * g_e.norm() / g_c.norm()
    brain.modules.zero_grad(set_to_none=True)
    emb.backward(g_e + coef * g_c)
    expected = {n: p.grad.clone() for n, p in brain.modules.named_parameters()
                if p.grad is not None and n.startswith(("ssl.", "proj"))}
    brain.modules.zero_grad(set_to_none=True)
    spy = step_gradients(brain, batch)
    assert len(expected) > 10
    scale = scale_of(expected.values())
    for n in expected:
        close(spy[n], expected[n], scale)


@pytest.mark.parametrize("adversary", ["tap", "snp"])
def test_confusion_speaker_step_descends_the_uniform_cross_entropy(
        setup, adversary):
    """TAP/SNP with ``confusion``: the adversarial parameters move by
    −λ·lr·g_conf/RMS (toward a uniform speaker prediction); the speaker
    head takes exactly the update it takes with ``reverse``."""
    _, batch, _ = setup
    reverse = make_brain(setup, adversary)
    brain = make_brain(setup, adversary, adversary_objective="confusion")
    g_c, _ = confusion_grad(brain, batch)
    before = params(brain)
    for b in (reverse, brain):
        b.method.schedule.current_step = 1  # odd: a speaker step
        b.fit_batch(batch)
    after, after_reverse = params(brain), params(reverse)
    descent = {n: -g for n, g in g_c.items() if g is not None}
    proj = [n for n in before if n.startswith("projection.")]
    groups = [(proj, "heads")]
    if adversary == "tap":
        groups.append(([n for n in before if n.startswith("ssl.")
                        and n in descent], "ssl"))
    for names, group in groups:
        expected = expected_ascent(brain, descent, "relative", names, group)
        size = scale_of(expected.values())
        for n in names:
            close(after[n] - before[n], expected[n], size, rel=1e-2)
    for n in before:
        if n.startswith("spk_head."):  # up to the kernels' rounding
            close(after[n], after_reverse[n], scale_of([before[n]]), 1e-4)
        elif n.startswith("emo_head.") or (
                adversary == "snp" and n.startswith("ssl.")):
            assert torch.equal(after[n], before[n]), n


def test_confusion_with_absolute_grl_is_refused(setup):
    hparams, _, _ = setup
    with pytest.raises(Exception, match="adversary_objective"):
        hp = dict(hparams, adversary="grl", adversary_scale="absolute",
                  adversary_objective="confusion",
                  modules=copy.deepcopy(hparams["modules"]))
        hp["speaker_method"] = method_from_hparams(hp)
        SpeakerAdversarialBrain(modules=hp["modules"], hparams=hp,
                                run_opts={"device": "cpu"})


def test_spknorm_keeps_a_training_speakers_statistics_in_evaluation(setup):
    """A training speaker met in evaluation keeps its (emotion-balanced)
    training statistics; a speaker never trained on gets its evaluated
    audio's own statistics (the transductive step)."""
    _, batch, other = setup
    brain = make_brain(setup, "spknorm")
    brain.fit_batch(batch)
    trained = dict(zip(batch.spk_id,
                       batch.spk_encoded.data.squeeze(1).tolist()))
    brain.hparams.spk_encoder = type("Enc", (), {"lab2ind": trained})()
    norm = brain.modules.spk_norm
    assert norm.n_emotions > 1
    brain.method.on_evaluate(brain, sb.Stage.TEST, [batch, other])
    for spk, idx in trained.items():
        assert torch.equal(norm.eval_stats[spk][0],
                           norm.speaker_stats(idx)[0]), spk
    new = sorted(set(other.spk_id) - set(trained))
    for spk in new:  # statistics from the evaluated audio itself
        assert not torch.equal(norm.eval_stats[spk][0],
                               norm.speaker_stats(0)[0])


def test_spknorm_validation_statistics_balanced_over_known_emotions(setup):
    """With ``spk_norm_valid_balanced``, a validation speaker never
    trained on is normalised with its audio's statistics balanced over
    its labelled emotions (as a training speaker's are); the test pass
    still uses plain statistics (its labels are never read)."""
    _, batch, _ = setup
    brain = make_brain(setup, "spknorm")
    brain.hparams.spk_encoder = type("Enc", (), {"lab2ind": {}})()
    norm = brain.modules.spk_norm
    brain.modules.ssl.eval()
    with torch.no_grad():
        wavs, lens = batch.sig
        pooled = brain.modules.pooling(*brain.encode(wavs, lens))
    pooled = pooled.reshape(len(wavs), -1)
    emotions = batch.emo_encoded.data.squeeze(1).tolist()
    # The estimator of the yaml's normalisation (MAP means, pooled spread).
    prior = dict(prior=norm.eval_prior(), tau=norm.tau)
    balanced = speaker_stats(pooled, batch.spk_id, emotions=emotions,
                             **prior)
    plain = speaker_stats(pooled, batch.spk_id, **prior)
    assert any(not torch.allclose(balanced[s][0], plain[s][0])
               for s in plain)  # some speaker's emotions are unequal
    brain.method.valid_balanced = True
    brain.method.on_evaluate(brain, sb.Stage.VALID, [batch])
    for spk in plain:
        assert torch.allclose(norm.eval_stats[spk][0], balanced[spk][0],
                              atol=1e-5), spk
    brain.method.on_evaluate(brain, sb.Stage.TEST, [batch])
    for spk in plain:
        assert torch.allclose(norm.eval_stats[spk][0], plain[spk][0],
                              atol=1e-5), spk


def test_spknorm_scores_with_the_statistics_pass_features(setup):
    """The scoring pass after the statistics pass reads the pooled
    features that pass computed (the encoder runs once per clip) and
    scores exactly as a second encoder pass would; each is used once."""
    _, batch, other = setup
    brain = make_brain(setup, "spknorm")
    brain.fit_batch(batch)
    brain.hparams.spk_encoder = type("Enc", (), {"lab2ind": {}})()
    brain.modules.eval()
    calls = []
    hook = brain.modules.ssl.register_forward_hook(
        lambda *args: calls.append(1))
    try:
        with torch.no_grad():
            brain.method.on_evaluate(brain, sb.Stage.TEST, [other])
            assert len(calls) == 1
            cached = brain.compute_forward(other, sb.Stage.TEST)["emo"]
            assert len(calls) == 1  # no second encoder pass
            again = brain.compute_forward(other, sb.Stage.TEST)["emo"]
            assert len(calls) == 2  # used once: then the encoder runs
    finally:
        hook.remove()
    assert torch.equal(cached, again)


def test_evaluation_draws_no_number_that_training_sees(setup):
    """An evaluation pass leaves torch's random state as it found it, so
    how often a method runs the encoder in evaluation never changes the
    next epochs' training."""
    _, batch, _ = setup
    brain = make_brain(setup, "none")
    brain.modules.eval()
    before = torch.get_rng_state()
    brain.on_stage_start(sb.Stage.TEST)
    with torch.no_grad():
        brain.evaluate_batch(batch, sb.Stage.TEST)
    assert not torch.equal(torch.get_rng_state(), before)  # it drew
    brain.on_stage_end(sb.Stage.TEST, 0.0)
    assert torch.equal(torch.get_rng_state(), before)


def test_the_speaker_probe_leaves_the_random_state_alone(setup):
    """A probe before training (extracting embeddings) leaves torch's
    random state as it was: the training is the one without the probe."""
    from speechbrain_grl.evaluation.probe import extract_embeddings

    _, batch, _ = setup
    brain = make_brain(setup, "none")
    wavs, lens = batch.sig
    n = wavs.shape[-1]
    clips = sb.dataio.dataset.DynamicItemDataset(
        {i: {"sig": w[:max(1, round(float(r) * n))], "spk_id": s, "emo": e}
         for i, w, r, s, e in zip(batch.id, wavs, lens, batch.spk_id,
                                  batch.emo)},
        output_keys=["id", "sig", "spk_id", "emo"])
    before = torch.get_rng_state()
    with torch.no_grad():
        embs, spks, ids, _ = extract_embeddings(brain, clips)
    assert embs.shape[0] == len(clips) and ids == list(batch.id)
    assert torch.equal(torch.get_rng_state(), before)
