"""Per-speaker standardisation (adversary: spknorm) uses each speaker's
own statistics, in training and in evaluation."""

import pytest
import torch

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
