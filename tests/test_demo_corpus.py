"""Tests for the synthetic IEMOCAP-layout corpus generator."""

import collections
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechbrain_grl.testing.demo_corpus import make_demo_corpus

WAV = "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"


def _labels(root):
    """Return ``{utt: (session, code)}`` parsed with a plain tab split."""
    out = {}
    for path in root.glob("Session*/dialog/EmoEvaluation/Ses*.txt"):
        for line in path.read_text().splitlines():
            if line.startswith("["):
                _, utt, code, _ = line.split("\t")
                out[utt] = (int(path.parts[-4][len("Session"):]), code)
    return out


def test_layout_and_determinism(tmp_path):
    root = make_demo_corpus(tmp_path / "a", n_sessions=2, utts_per_speaker=8)
    again = make_demo_corpus(tmp_path / "b", n_sessions=2, utts_per_speaker=8)
    assert (root / WAV).read_bytes() == (again / WAV).read_bytes()
    other = make_demo_corpus(tmp_path / "c", n_sessions=2,
                             utts_per_speaker=8, seed=1)
    assert (root / WAV).read_bytes() != (other / WAV).read_bytes()
    info = sf.info(str(root / WAV))
    assert (info.channels, info.samplerate, info.subtype) == (
        1, 16000, "PCM_16")
    assert 1.0 <= info.frames / info.samplerate <= 2.5
    emo = root / "Session2/dialog/EmoEvaluation"
    assert (emo / "._Ses02F_impro01.txt").read_bytes()[:4] == (
        b"\x00\x05\x16\x07")
    assert (emo / "Categorical").is_dir() and (emo / "Attribute").is_dir()
    labels = _labels(root)
    assert len(labels) == 2 * 2 * 8
    # dialog prefix and true speaker differ for some utterances
    assert any(u[5] != u.rsplit("_", 1)[1][0] for u in labels)
    for utt, (session, _) in labels.items():
        dialog = utt.rsplit("_", 1)[0]
        wav = root / f"Session{session}/sentences/wav/{dialog}/{utt}.wav"
        assert wav.is_file()


def test_idempotent_and_regenerates(tmp_path):
    root = make_demo_corpus(tmp_path, n_sessions=1, utts_per_speaker=4)
    mtime = (root / WAV).stat().st_mtime_ns
    make_demo_corpus(tmp_path, n_sessions=1, utts_per_speaker=4)
    assert (root / WAV).stat().st_mtime_ns == mtime
    make_demo_corpus(tmp_path, n_sessions=1, utts_per_speaker=6)
    assert len(_labels(root)) == 12


def test_refuses_foreign_release_folder(tmp_path):
    (tmp_path / "IEMOCAP_full_release" / "Session1").mkdir(parents=True)
    with pytest.raises(ValueError, match="overwrite=True"):
        make_demo_corpus(tmp_path, n_sessions=1, utts_per_speaker=4)
    assert (tmp_path / "IEMOCAP_full_release" / "Session1").is_dir()


def test_labels_balanced_and_emotion_cues(tmp_path):
    root = make_demo_corpus(tmp_path, n_sessions=1, utts_per_speaker=40)
    labels = _labels(root)
    counts = collections.Counter(c for _, c in labels.values())
    kept = {e: counts[e] for e in ("neu", "ang", "sad")}
    kept["hap"] = counts["hap"] + counts["exc"]
    assert set(kept.values()) == {16}
    assert counts["fru"] > 0 and counts["xxx"] > 0
    rms = collections.defaultdict(list)
    for utt, (_, code) in labels.items():
        dialog = utt.rsplit("_", 1)[0]
        x, _ = sf.read(str(root / f"Session1/sentences/wav/{dialog}/{utt}.wav"))
        rms[code].append(np.sqrt(np.mean(x**2)))
    mean = {c: np.mean(v) for c, v in rms.items()}
    assert mean["ang"] > mean["hap"] > mean["neu"] > mean["sad"]


def test_speaker_shortcut_in_training_sessions_only(tmp_path):
    """With speaker_bias 0.9 every speaker outside the unbiased session
    says a favourite emotion about 90% of the time, each emotion is the
    favourite of two speakers, and the test session is as balanced as
    the unbiased corpus."""
    from speechbrain_grl.dataio.iemocap import scan_corpus

    root = make_demo_corpus(tmp_path / "b", utts_per_speaker=40,
                            speaker_bias=0.9, unbiased_sessions=[5])
    plain = make_demo_corpus(tmp_path / "p", utts_per_speaker=40)
    entries, _ = scan_corpus(root)
    counts = collections.defaultdict(collections.Counter)
    for e in entries.values():
        counts[e["spk_id"]][e["emo"]] += 1
    favourites = {}
    for spk, c in counts.items():
        emo, n = c.most_common(1)[0]
        share = n / sum(c.values())
        if spk.startswith("Ses05"):
            assert share == 0.25, (spk, c)  # 8 of each, as unbiased
        else:
            assert 0.8 <= share <= 0.97, (spk, c)
            favourites[spk] = emo
    assert sorted(collections.Counter(favourites.values()).values()) == [
        2, 2, 2, 2]
    plain_entries, _ = scan_corpus(plain)
    assert len(plain_entries) == len(entries)  # as many kept utterances
    with pytest.raises(ValueError, match="speaker_bias"):
        make_demo_corpus(tmp_path / "x", speaker_bias=1.5)


def test_emotion_strength_scales_the_cue(tmp_path):
    """At strength 0 every emotion is rendered with neutral prosody: the
    loudness no longer differs between angry and sad utterances."""
    from speechbrain_grl.dataio.iemocap import scan_corpus

    def rms_by_emotion(root):
        entries, _ = scan_corpus(root, sessions=[1])
        out = collections.defaultdict(list)
        for e in entries.values():
            sig, _ = sf.read(e["wav"].replace("{data_root}", str(root)))
            out[e["emo"]].append(float(np.sqrt(np.mean(sig ** 2))))
        return {k: float(np.mean(v)) for k, v in out.items()}

    full = rms_by_emotion(make_demo_corpus(tmp_path / "f", n_sessions=1,
                                           utts_per_speaker=20))
    flat = rms_by_emotion(make_demo_corpus(tmp_path / "z", n_sessions=1,
                                           utts_per_speaker=20,
                                           emotion_strength=0.0))
    assert full["ang"] / full["sad"] > 3
    assert 0.7 < flat["ang"] / flat["sad"] < 1.4


def test_corpus_seed_gives_an_independent_shortcut_corpus(tmp_path):
    """``demo_corpus_seed`` (the recipe's knob) draws another corpus of
    the same structure in its own cached folder: other favourites (the
    measured majority emotions follow ``favourites(..., seed)``), other
    audio, and the seed-0 corpus is left as it was."""
    from speechbrain_grl.dataio.iemocap import scan_corpus
    from speechbrain_grl.testing.demo import demo_corpus
    from speechbrain_grl.testing.demo_corpus import favourites

    def majority(root):
        entries, _ = scan_corpus(Path(root))
        counts = collections.defaultdict(collections.Counter)
        for e in entries.values():
            counts[e["spk_id"]][e["emo"]] += 1
        return {spk: c.most_common(1)[0][0] for spk, c in counts.items()
                if not spk.startswith("Ses05")}

    base = demo_corpus(tmp_path / "c", 40, speaker_bias=0.9)
    other = demo_corpus(tmp_path / "c", 40, seed=1, speaker_bias=0.9)
    assert Path(base).parent != Path(other).parent
    assert majority(base) == favourites(5, [5], 0)
    assert majority(other) == favourites(5, [5], 1)
    assert majority(other) != majority(base)
    wav = "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"
    assert (Path(base) / wav).read_bytes() != (Path(other) / wav).read_bytes()
    assert demo_corpus(tmp_path / "c", 40, speaker_bias=0.9) == base


def test_clip_seconds_sets_the_range_of_every_clip(tmp_path):
    root = make_demo_corpus(tmp_path / "long", n_sessions=1,
                            utts_per_speaker=8, clip_seconds=(4.0, 6.0))
    wavs = [p for p in root.glob("Session1/sentences/wav/*/Ses*.wav")
            if not p.name.startswith("._")]
    lengths = [sf.info(str(p)).duration for p in wavs]
    assert len(lengths) >= 16
    assert all(4.0 <= x <= 6.0 for x in lengths)
    stamp = json.loads((tmp_path / "long" / "demo_corpus.json").read_text())
    assert stamp["clip_seconds"] == [4.0, 6.0]
    default = make_demo_corpus(tmp_path / "short", n_sessions=1,
                               utts_per_speaker=8)
    stamp = json.loads((tmp_path / "short" / "demo_corpus.json").read_text())
    assert "clip_seconds" not in stamp  # old corpora stay valid
    assert default != root
    for bad in ((3.0, 2.0), (0.0, 1.0), (1.0,)):
        with pytest.raises(ValueError, match="clip_seconds"):
            make_demo_corpus(tmp_path / "bad", n_sessions=1,
                             utts_per_speaker=4, clip_seconds=bad)


def _shrinkage_tau(root):
    """The empirical-Bayes prior worth (clips) of the speakers' mean MFCC
    statistics: small when one clip tells its speaker's voice well."""
    from speechbrain_grl.evaluation.classic import mfcc_statistics
    from speechbrain_grl.nnet.speaker_norm import shrinkage_tau

    by_spk = collections.defaultdict(list)
    for p in sorted(root.glob("Session*/sentences/wav/*/Ses*.wav")):
        if not p.name.startswith("._"):
            by_spk[p.stem[:5] + p.stem.split("_")[-1][0]].append(
                np.asarray(mfcc_statistics(p)))
    clips = [np.stack(v) for v in by_spk.values()]
    means = np.stack([c.mean(0) for c in clips])
    return shrinkage_tau(np.var(means, 0, ddof=1),
                         np.mean([c.var(0) for c in clips], 0))


def test_content_variation_makes_a_clip_tell_less_of_its_voice(tmp_path):
    kw = dict(n_sessions=3, utts_per_speaker=8)
    demo = make_demo_corpus(tmp_path / "demo", **kw)
    said = make_demo_corpus(tmp_path / "said", content_variation=1.0, **kw)
    # demo 0.27 clips, said 1.17 (real speech: the prior worth ~2 clips)
    assert _shrinkage_tau(said) > 2 * _shrinkage_tau(demo)
    stamp = json.loads((tmp_path / "said" / "demo_corpus.json").read_text())
    assert stamp["content_variation"] == 1.0
    stamp = json.loads((tmp_path / "demo" / "demo_corpus.json").read_text())
    assert "voice_spread" not in stamp and "content_variation" not in stamp
    for bad in ({"voice_spread": -0.1}, {"content_variation": -1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            make_demo_corpus(tmp_path / "bad", n_sessions=1,
                             utts_per_speaker=4, **bad)


def test_voice_spread_scales_how_far_apart_the_voices_are(tmp_path):
    from speechbrain_grl.testing.demo_corpus import _channel

    for k in range(4):
        full = _channel(np.random.default_rng(k), k)
        half = _channel(np.random.default_rng(k), k, spread=0.5)
        assert half["tilt"] == pytest.approx(0.5 * full["tilt"])
        assert half["peak"][1] == pytest.approx(0.5 * full["peak"][1])
        assert (half["peak"][0], half["hum"], half["floor"]) == (
            full["peak"][0], full["hum"], full["floor"])
    root = make_demo_corpus(tmp_path / "close", n_sessions=1,
                            utts_per_speaker=4, voice_spread=0.3)
    stamp = json.loads((tmp_path / "close" / "demo_corpus.json").read_text())
    assert stamp["voice_spread"] == 0.3
    demo = make_demo_corpus(tmp_path / "demo", n_sessions=1,
                            utts_per_speaker=4)
    assert (root / WAV).read_bytes() != (demo / WAV).read_bytes()
