"""Per-speaker standardisation (adversary: spknorm) uses each speaker's
own statistics, in training and in evaluation."""

import re

import pytest
import torch
from conftest import RECIPE

from speechbrain_grl.nnet.speaker_norm import SpeakerNorm, speaker_stats


def test_training_statistics_are_per_speaker():
    torch.manual_seed(0)
    norm = SpeakerNorm(3, n_speakers=3, momentum=0.5)
    # Speaker 0 around +5, speaker 1 around -5, with different spreads.
    for _ in range(30):
        a = 5 + torch.randn(4, 1, 3)
        b = -5 + 3 * torch.randn(4, 1, 3)
        out = norm(torch.cat([a, b]), speaker_index=torch.tensor(
            [0] * 4 + [1] * 4))
    assert torch.allclose(norm.mean[0], torch.full((3,), 5.0), atol=1.0)
    assert torch.allclose(norm.mean[1], torch.full((3,), -5.0), atol=1.5)
    std = torch.sqrt(norm.sq_mean - norm.mean ** 2)
    assert (std[1] > 2 * std[0]).all()
    assert norm.count[2] == 0  # never seen: untouched
    # Both speakers come out centred and scaled alike.
    assert out[:4].mean().abs() < 1.0 and out[4:].mean().abs() < 1.0
    # A speaker's output does not depend on the other speakers in the batch.
    norm.eval()
    norm.set_eval_stats({"x": (torch.zeros(3), torch.ones(3)),
                         "y": (torch.full((3,), 2.0), torch.full((3,), 4.0))})
    x = torch.ones(2, 1, 3)
    both = norm(x, speaker_ids=["x", "y"])
    assert torch.allclose(both[0], x[0])
    assert torch.allclose(both[1], (x[1] - 2) / 4)
    with pytest.raises(KeyError, match="set_eval_stats"):
        norm(x, speaker_ids=["x", "unknown"])


def test_speaker_stats_groups_rows_by_speaker():
    feats = torch.tensor([[0.0, 1.0], [2.0, 3.0], [10.0, 10.0],
                          [20.0, 30.0]])
    stats = speaker_stats(feats, ["a", "a", "b", "b"])
    assert torch.allclose(stats["a"][0], torch.tensor([1.0, 2.0]))
    assert torch.allclose(stats["b"][0], torch.tensor([15.0, 20.0]))
    assert torch.allclose(stats["b"][1], torch.tensor([5.0, 10.0]),
                          atol=1e-4)


def test_balanced_statistics_do_not_take_a_favourite_emotion_for_the_voice():
    """With ``n_emotions``, a speaker who says emotion 0 nine times out of
    ten gets the mean of its two emotions' means (what an unbiased
    speaker with the same voice gets), not the favourite's."""
    torch.manual_seed(0)
    plain = SpeakerNorm(2, n_speakers=2, momentum=1.0)
    balanced = SpeakerNorm(2, n_speakers=2, momentum=1.0, n_emotions=2)
    voice = torch.tensor([3.0, -1.0])
    emotion = torch.tensor([[2.0, 0.0], [-2.0, 0.0]])
    emo = torch.tensor([0] * 9 + [1])
    x = (voice + emotion[emo]).unsqueeze(1)
    spk = torch.zeros(10, dtype=torch.long)
    plain(x, speaker_index=spk)
    out = balanced(x, speaker_index=spk, emotion_index=emo)
    assert torch.allclose(balanced.speaker_stats(0)[0], voice)
    assert not torch.allclose(plain.mean[0], voice, atol=1.0)
    # The emotions come out symmetric around 0 in the normalised space.
    assert torch.allclose(out[0, 0, 0], -out[9, 0, 0])
    assert balanced.count.view(2, 2)[0].tolist() == [9.0, 1.0]
    assert balanced.count.view(2, 2)[1].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="emotion_index"):
        balanced(x, speaker_index=spk)


def test_trained_stats_only_for_speakers_trained_on():
    norm = SpeakerNorm(1, n_speakers=2, momentum=1.0, n_emotions=2)
    norm(torch.tensor([[[1.0]], [[3.0]]]),
         speaker_index=torch.tensor([0, 0]),
         emotion_index=torch.tensor([0, 1]))
    assert torch.equal(norm.trained_stats(0)[0], torch.tensor([2.0]))
    assert norm.trained_stats(1) is None  # never in a training batch
    assert norm.trained_stats(2) is None and norm.trained_stats(-1) is None


def test_labelled_speaker_stats_weigh_each_emotion_the_same():
    """A validation speaker who says emotion 0 three times and emotion 1
    once gets the average of the two emotions' moments, as a training
    speaker does, not the favourite-heavy plain statistics."""
    feats = torch.tensor([[1.0], [1.0], [1.0], [5.0], [7.0]])
    speakers = ["a"] * 4 + ["b"]
    plain = speaker_stats(feats, speakers)
    balanced = speaker_stats(feats, speakers, emotions=[0, 0, 0, 1, 1])
    assert torch.allclose(plain["a"][0], torch.tensor([2.0]))
    assert torch.allclose(balanced["a"][0], torch.tensor([3.0]))
    # second moments averaged over emotions: (1 + 25) / 2 - 3^2 = 4
    assert torch.allclose(balanced["a"][1], torch.tensor([2.0]), atol=1e-4)
    assert torch.allclose(balanced["b"][0], torch.tensor([7.0]))


def _trained(**kwargs):
    """Two speakers with different voices, one emotion each half."""
    norm = SpeakerNorm(1, n_speakers=2, momentum=1.0, n_emotions=2,
                       **kwargs)
    x = torch.tensor([[[0.0]], [[2.0]], [[10.0]], [[14.0]]])
    norm(x, speaker_index=torch.tensor([0, 0, 1, 1]),
         emotion_index=torch.tensor([0, 1, 0, 1]))
    return norm


def test_the_prior_is_the_average_voice_and_pooled_spread():
    norm = _trained()
    mean, std = norm.prior()
    # Speaker means 1 and 12, within-speaker variances 1 and 4.
    assert torch.allclose(mean, torch.tensor([6.5]))
    assert torch.allclose(std, torch.tensor([2.5]).sqrt(), atol=1e-4)
    empty = SpeakerNorm(3, n_speakers=2)
    assert torch.equal(empty.prior()[0], torch.zeros(3))
    assert torch.equal(empty.prior()[1], torch.ones(3))


def test_pooled_spread_and_map_means_in_evaluation():
    """std pooled: every speaker divided by the pooled spread; tau: an
    evaluated speaker's mean shrunk towards the prior by its clip count."""
    norm = _trained(std="pooled", tau=2.0)
    mean, std = norm.prior()
    assert torch.allclose(norm.trained_stats(0)[1], std)
    feats = torch.tensor([[20.0], [22.0]])
    stats = speaker_stats(feats, ["new", "new"], prior=norm.eval_prior(),
                          tau=norm.tau)
    assert torch.allclose(stats["new"][0], (2.0 * mean + 42.0) / 4.0)
    assert torch.allclose(stats["new"][1], std)
    assert _trained().eval_prior() is None  # the plain statistics


def test_training_as_deployed_with_no_clip_uses_the_prior():
    """train_clips [0]: every training utterance is normalised with the
    prior mean (what an unknown speaker gets), [None] changes nothing."""
    x = torch.tensor([[[0.0]], [[2.0]], [[10.0]], [[14.0]]])
    spk, emo = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    prior_only = _trained(std="pooled", train_clips=[0])
    mean, std = prior_only.prior()
    out = prior_only(x, speaker_index=spk, emotion_index=emo)
    assert torch.allclose(out, (x - mean) / std, atol=1e-5)
    plain = _trained(std="pooled", train_clips=[None])
    assert plain.train_clips == []
    own = plain(x, speaker_index=spk, emotion_index=emo)
    means = torch.tensor([1.0, 1.0, 12.0, 12.0]).view(4, 1, 1)
    assert torch.allclose(own, (x - means) / std, atol=1e-5)
    with pytest.raises(ValueError, match="std"):
        SpeakerNorm(1, 1, std="global")


def test_training_with_other_offsets_keeps_no_trace_of_the_voice():
    """train_offsets="other": with no clip, a training utterance keeps the
    offset from the average voice of the other speaker, not its own."""
    x = torch.tensor([[[0.0]], [[2.0]], [[10.0]], [[14.0]]])
    spk, emo = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    norm = _trained(std="pooled", train_clips=[0], train_offsets="other")
    mean, std = norm.prior()
    out = norm(x, speaker_index=spk, emotion_index=emo)
    # Speaker means 1 and 12 around the prior 6.5: each keeps the other's
    # offset (+5.5 for speaker 0, -5.5 for speaker 1), not its own.
    means = torch.tensor([1.0, 1.0, 12.0, 12.0]).view(4, 1, 1)
    offsets = torch.tensor([5.5, 5.5, -5.5, -5.5]).view(4, 1, 1)
    assert torch.allclose(out, (x - means + offsets) / std, atol=1e-5)
    own = _trained(std="pooled", train_clips=[0])
    assert torch.allclose(own(x, speaker_index=spk, emotion_index=emo),
                          (x - mean) / std, atol=1e-5)
    with pytest.raises(ValueError, match="train_offsets"):
        SpeakerNorm(1, 1, train_offsets="shuffled")


def test_training_with_drawn_offsets_draws_voices_of_the_others():
    """train_offsets="drawn": with no clip, a training utterance keeps a
    random voice: a N(0, 1/m) combination of the m other speakers'
    offsets (their covariance, none of its own), not one of a few."""
    torch.manual_seed(0)
    # Offsets from the average voice (0, 0): speaker 0's (0, 6), the
    # others' (3, -3) and (-3, -3), whose mean outer product is 9 I.
    voices = torch.tensor([[0.0, 6.0], [3.0, -3.0], [-3.0, -3.0]])
    norm = SpeakerNorm(2, n_speakers=3, momentum=1.0, std="pooled",
                       train_clips=[0], train_offsets="drawn")
    norm(voices[:, None, :], speaker_index=torch.tensor([0, 1, 2]))
    _, std = norm.prior()
    x = voices[[0] * 4000][:, None, :]
    out = norm(x, speaker_index=torch.zeros(4000, dtype=torch.long))
    kept = (out * std).squeeze(1)  # the voice each row keeps
    assert kept.mean(0).abs().max() < 0.25  # no voice preferred
    # With its own offset in the draw, dimension 1 would spread more.
    cov = kept.T @ kept / len(kept)
    assert torch.allclose(cov, 9 * torch.eye(2), atol=0.8)
    assert kept[:, 0].unique().numel() > 1000  # not a few voices


def test_training_with_diagonal_offsets_draws_voices_in_any_direction():
    """train_offsets="diagonal": the voice a training utterance keeps has
    the other speakers' spread in each dimension, drawn independently,
    so it leaves the span of their offsets (which "drawn" keeps to)."""
    # The others' offsets (3, 3) and (-3, -3) span one direction only.
    voices = torch.tensor([[0.0, 0.0], [3.0, 3.0], [-3.0, -3.0]])
    kept = {}
    for mode in ("drawn", "diagonal"):
        torch.manual_seed(0)
        norm = SpeakerNorm(2, n_speakers=3, momentum=1.0, std="pooled",
                           train_clips=[0], train_offsets=mode)
        norm(voices[:, None, :], speaker_index=torch.tensor([0, 1, 2]))
        _, std = norm.prior()
        x = voices[[0] * 4000][:, None, :]
        out = norm(x, speaker_index=torch.zeros(4000, dtype=torch.long))
        rows = (out * std).squeeze(1)
        kept[mode] = rows.T @ rows / len(rows)
    assert torch.allclose(kept["drawn"], torch.full((2, 2), 9.0), atol=0.8)
    assert torch.allclose(kept["diagonal"], 9 * torch.eye(2), atol=0.8)


def test_clips_of_no_class_update_no_cell():
    """keep_all_emotions: a clip of no class (emotion -1) is normalised
    with its speaker's statistics (the prior while the speaker has none)
    and changes none of them."""
    norm = _trained()
    before = norm.speaker_stats(torch.tensor([0, 1]))
    x = torch.tensor([[[100.0]], [[5.0]]])
    out = norm(x, speaker_index=torch.tensor([0, 0]),
               emotion_index=torch.tensor([-1, -1]))
    after = norm.speaker_stats(torch.tensor([0, 1]))
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert torch.allclose(out, (x - before[0][0]) / before[1][0])
    fresh = SpeakerNorm(1, n_speakers=2, n_emotions=2)
    out = fresh(x, speaker_index=torch.tensor([1, 1]),
                emotion_index=torch.tensor([-1, -1]))
    assert torch.equal(out, x)  # the prior before any training: 0 and 1
    assert float(fresh.count.sum()) == 0
    stats = speaker_stats(torch.tensor([[0.0], [2.0], [50.0]]), ["a"] * 3,
                          emotions=[0, 1, -1])
    assert torch.allclose(stats["a"][0], torch.tensor([1.0]))


def test_auto_tau_is_within_over_between_speaker_variance():
    """tau "auto": voices far apart next to their clips' spread give a
    weak prior, voices close together a strong one; it is what the MAP
    means of evaluated speakers use."""
    def trained(gap):
        torch.manual_seed(0)
        norm = SpeakerNorm(2, n_speakers=4, momentum=0.5, tau="auto",
                           std="pooled")
        centres = gap * torch.tensor([[-1.0], [1.0], [-3.0], [3.0]])
        for _ in range(50):
            x = centres.repeat(4, 1) + torch.randn(16, 2)
            norm(x.unsqueeze(1), speaker_index=torch.arange(4).repeat(4))
        return norm

    far, near = trained(4.0), trained(0.25)
    # Between-speaker variance of the centres: gap**2 * 20 / 3.
    assert far.empirical_tau() == pytest.approx(3 / (20 * 16), rel=0.3)
    assert near.empirical_tau() == pytest.approx(3 / (20 / 16), rel=0.3)
    assert near.prior_tau() == near.empirical_tau()
    stats = speaker_stats(torch.ones(1, 2), ["new"], prior=near.eval_prior(),
                          tau=near.prior_tau())
    w = 1 / (1 + near.prior_tau())  # one clip against the prior
    assert torch.allclose(stats["new"][0],
                          w * torch.ones(2) + (1 - w) * near.prior()[0])
    assert SpeakerNorm(2, 4, tau="auto").prior_tau() == 2.0  # untrained
    with pytest.raises(ValueError, match="tau"):
        SpeakerNorm(2, 4, tau="big")


def _biased_speakers(seed, balance, bias=0.9):
    """Six speakers of 40 clips, each saying a favourite emotion (two
    each for emotions 0 and 1, one each for 2 and 3) with probability
    ``bias``: the voices' RMS error of the trained statistics."""
    gen = torch.Generator().manual_seed(seed)
    voice = 2 * torch.randn(6, 8, generator=gen)
    effect = 0.5 * torch.randn(4, 8, generator=gen)
    effect -= effect.mean(0)  # a voice is the emotion-balanced mean
    spk, emo = [], []
    for s, fav in enumerate([0, 0, 1, 1, 2, 3]):
        for _ in range(40):
            other = int(torch.randint(1, 4, (1,), generator=gen))
            keep = float(torch.rand(1, generator=gen)) < bias
            spk.append(s)
            emo.append(fav if keep else (fav + other) % 4)
    spk, emo = torch.tensor(spk), torch.tensor(emo)
    x = voice[spk] + effect[emo] + torch.randn(len(spk), 8, generator=gen)
    norm = SpeakerNorm(8, n_speakers=6, momentum=1.0, n_emotions=4,
                       balance=balance)
    norm(x.unsqueeze(1), speaker_index=spk, emotion_index=emo)
    mean, _ = norm.speaker_stats(torch.arange(6))
    return float((mean - voice).pow(2).mean().sqrt())


def test_additive_balance_finds_voices_of_speakers_with_rare_emotions():
    """Where speakers rarely say some emotions (cells of one clip, or
    none), the additive fit's voices are nearer the true ones than the
    average of the cells' means, over 20 corpora."""
    cells = [_biased_speakers(seed, "cells") for seed in range(20)]
    additive = [_biased_speakers(seed, "additive") for seed in range(20)]
    assert sum(additive) < 0.8 * sum(cells)
    assert sum(a < c for a, c in zip(additive, cells)) >= 15


def test_additive_balance_equals_cells_when_every_cell_is_alike():
    """Every speaker saying every emotion equally often: both balances
    give the same means; the additive variance is the within-cell one
    plus the spread of emotion effects shared by all."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 4)  # speaker, emotion, clip, dim
    x[1] += 3.0
    spk = torch.arange(2).repeat_interleave(15)
    emo = torch.arange(3).repeat_interleave(5).repeat(2)
    flat = x.reshape(30, 1, 4)
    norms = {b: SpeakerNorm(4, n_speakers=2, momentum=1.0, n_emotions=3,
                            balance=b) for b in ("cells", "additive")}
    for norm in norms.values():
        norm(flat, speaker_index=spk, emotion_index=emo)
    cells, additive = (norms[b].speaker_stats(torch.arange(2))
                       for b in ("cells", "additive"))
    assert torch.allclose(cells[0], additive[0], atol=1e-5)
    assert (additive[1] > 0).all()
    with pytest.raises(ValueError, match="balance"):
        SpeakerNorm(1, 1, balance="median")


def test_additive_training_rows_use_the_fitted_statistics():
    """A training forward standardises with the additive fit of the
    statistics it has just updated (fitted once per forward)."""
    torch.manual_seed(0)
    norm = SpeakerNorm(3, n_speakers=3, momentum=0.5, n_emotions=2,
                       balance="additive")
    for _ in range(3):
        x = torch.randn(6, 1, 3)
        spk, emo = torch.tensor([0, 0, 1, 1, 2, 2]), torch.randint(0, 2, (6,))
        out = norm(x, speaker_index=spk, emotion_index=emo)
    mean, std = norm.speaker_stats(spk)
    assert torch.allclose(out, (x - mean.unsqueeze(1)) / std.unsqueeze(1),
                          atol=1e-6)
    assert norm._fitted is None


def _spk_norm_settings(yaml):
    """The yaml's top-level ``spk_norm_*`` values and the arguments of its
    SpeakerNorm, as written."""
    text = yaml.read_text()
    values = dict(re.findall(r"^(spk_norm_\w+): (.*?)\s*(?:#.*)?$", text,
                             re.M))
    block = re.search(r"^spk_norm: !new:\S+SpeakerNorm.*?\n(.*?)}", text,
                      re.M | re.S)
    args = dict(re.findall(r"(\w+): ([^,{}]+)", block.group(1)))
    return values, args


def test_every_ssl_yaml_builds_the_shipped_normaliser():
    """``--speaker_norm=True`` around any method, or ``--adversary=spknorm``
    in any SSL yaml, trains and exports the normaliser that
    wav2vec2_spknorm.yaml ships (chosen on validation,
    benchmarks/adaptation.md). The filterbank ECAPA yaml keeps the
    setting measured with it (benchmarks/ecapa.md)."""
    hparams = RECIPE / "hparams"
    shipped = _spk_norm_settings(hparams / "wav2vec2_spknorm.yaml")
    assert shipped[0]["spk_norm_train_offsets"] == "diagonal"
    assert shipped[1]["train_offsets"] == "!ref <spk_norm_train_offsets>"
    ssl_yamls = sorted(set(hparams.glob("*.yaml"))
                       - {hparams / "ecapa_spknorm.yaml"})
    assert len(ssl_yamls) >= 6
    for yaml in ssl_yamls:
        values, args = _spk_norm_settings(yaml)
        if yaml.name == "demo_grl.yaml":  # training tau as a key of its own
            assert args.pop("train_tau") == "!ref <spk_norm_train_tau>"
            shipped_args = dict(shipped[1])
            assert values.pop("spk_norm_train_tau") == shipped_args.pop(
                "train_tau")
            assert (values, args) == (shipped[0], shipped_args), yaml.name
        else:
            assert (values, args) == shipped, yaml.name
