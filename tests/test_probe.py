"""The speaker probe measures speaker, not dialog, channel or emotion."""

import numpy as np

from speechbrain_grl.evaluation.probe import dialog_of, speaker_probe


def _corpus(rng, n_speakers=6, dialogs_per_speaker=4, per_dialog=10):
    speakers, dialogs = [], []
    for s in range(n_speakers):
        for d in range(dialogs_per_speaker):
            speakers += [f"spk{s}"] * per_dialog
            dialogs += [f"spk{s}_dlg{d}"] * per_dialog
    return np.array(speakers), np.array(dialogs)


def test_finds_a_planted_speaker_signal_and_misses_its_absence():
    rng = np.random.default_rng(0)
    speakers, dialogs = _corpus(rng)
    ids = np.unique(speakers, return_inverse=True)[1]
    signal = rng.normal(size=(len(speakers), 8)) + 3 * np.eye(8)[ids]
    noise = rng.normal(size=(len(speakers), 8))
    found = speaker_probe(signal, speakers, groups=dialogs)
    absent = speaker_probe(noise, speakers, groups=dialogs)
    assert found["balanced_accuracy"] > 90
    assert abs(absent["balanced_accuracy"] - 100 / 6) < 12
    assert abs(absent["chance"] - 100 / 6) < 12
    assert found["grouped"] and found["n_splits"] == 5


def test_grouped_folds_do_not_credit_a_dialog_channel():
    """Each dialog has its own random channel vector and nothing else
    identifies its speaker: stratified folds let the probe memorise the
    dialogs (the same channel is on both sides of a fold); grouped folds
    never test on a dialog it has seen, and it drops to chance."""
    rng = np.random.default_rng(1)
    speakers, dialogs = _corpus(rng)
    channel = {d: rng.normal(size=16) * 3 for d in np.unique(dialogs)}
    emb = np.stack([channel[d] for d in dialogs])
    emb = emb + 0.3 * rng.normal(size=emb.shape)
    ungrouped = speaker_probe(emb, speakers)
    grouped = speaker_probe(emb, speakers, groups=dialogs)
    assert ungrouped["balanced_accuracy"] > 90
    assert grouped["balanced_accuracy"] < 35


def test_given_emotion_reads_only_speaker_beyond_the_emotion():
    """Speakers with favourite emotions; an embedding that holds only the
    emotion recognises speakers well above chance (through the emotion),
    but adds nothing once the probe knows the emotion; one that holds the
    voice too adds a lot."""
    rng = np.random.default_rng(2)
    speakers, dialogs = _corpus(rng, n_speakers=8)
    spk = np.unique(speakers, return_inverse=True)[1]
    favourite = spk % 4
    emotion = np.where(rng.random(len(spk)) < 0.8, favourite,
                       rng.integers(0, 4, len(spk)))
    emo_only = np.eye(4)[emotion] * 3 + rng.normal(size=(len(spk), 4))
    with_voice = np.concatenate(
        [emo_only, np.eye(8)[spk] * 3 + rng.normal(size=(len(spk), 8))], 1)
    names = np.array(["neu", "hap", "ang", "sad"])[emotion]
    a = speaker_probe(emo_only, speakers, groups=dialogs, emotions=names)
    b = speaker_probe(with_voice, speakers, groups=dialogs, emotions=names)
    assert a["balanced_accuracy"] > 25  # 2 speakers per emotion: > 12.5
    gap_a = a["given_emotion"]["balanced_accuracy"] - (
        a["given_emotion"]["chance"])
    gap_b = b["given_emotion"]["balanced_accuracy"] - (
        b["given_emotion"]["chance"])
    assert abs(gap_a) < 8
    assert gap_b > 40


def test_per_gender_probes_within_each_gender():
    rng = np.random.default_rng(3)
    speakers, dialogs = _corpus(rng, n_speakers=4)
    genders = np.array(["F" if int(s[-1]) % 2 == 0 else "M"
                        for s in speakers])
    # Only gender is encoded: the per-gender probes are at chance.
    emb = (genders == "F")[:, None] * 3.0 + rng.normal(size=(len(genders), 4))
    out = speaker_probe(emb, speakers, groups=dialogs, genders=genders)
    assert out["balanced_accuracy"] > 40  # gender alone halves the field
    for g in ("F", "M"):
        assert out["per_gender"][g]["n_speakers"] == 2
        assert out["per_gender"][g]["balanced_accuracy"] < 70


def test_dialog_of_iemocap_ids():
    assert dialog_of("Ses05M_impro03_F012") == "Ses05M_impro03"
