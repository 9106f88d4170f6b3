"""Assets of the embedded demo, built once on the main process.

``demo_grl.yaml`` calls these at load time, so the demo needs no network
and no data: a synthetic corpus in the IEMOCAP release layout and a tiny,
randomly initialised SSL model saved as a local Hugging Face folder. Under
DDP only rank 0 builds them; the others wait, then reuse them.
"""

from pathlib import Path

from speechbrain.utils.distributed import run_on_main

from speechbrain_grl.testing import acted_corpora, table_corpora
from speechbrain_grl.testing.demo_corpus import (
    CLIP_SECONDS,
    make_demo_corpus,
)
from speechbrain_grl.testing.tiny_ssl import make_tiny_ssl

__all__ = ["demo_corpus", "demo_ssl", "demo_test_corpus"]


def demo_corpus(folder, utts_per_speaker=40, seed=0, speaker_bias=0.0,
                emotion_strength=1.0, unbiased_sessions=(5,),
                clip_seconds=CLIP_SECONDS, voice_spread=1.0,
                content_variation=0.0):
    """Generates (once) the demo corpus and returns its release folder.

    Each shortcut setting (``speaker_bias``, ``emotion_strength``,
    ``unbiased_sessions``) other than the default gets its own cached
    folder beside ``folder`` (``<folder>_b0.9_e1_u5``), and so does each
    corpus ``seed`` other than 0 (``<folder>_b0.9_e1_u5_s1``: other
    favourite emotions and other draws of every utterance, formant set and
    channel, around the same per-session pitch layout), and so does
    each ``clip_seconds`` range other than the default
    (``<folder>_c2-8``), ``voice_spread`` (``<folder>_v0.3``) and
    ``content_variation`` (``<folder>_w1``), so switching settings never
    regenerates.

    Example
    -------
    >>> root = demo_corpus(getfixture("tmp_path"), utts_per_speaker=4)
    >>> root.endswith("IEMOCAP_full_release")
    True
    >>> biased = demo_corpus(getfixture("tmp_path") / "c", 4, speaker_bias=0.9)
    >>> Path(biased).parent.name
    'c_b0.9_e1_u5'
    >>> other = demo_corpus(getfixture("tmp_path") / "c", 4, seed=1,
    ...                     speaker_bias=0.9)
    >>> Path(other).parent.name
    'c_b0.9_e1_u5_s1'
    >>> longer = demo_corpus(getfixture("tmp_path") / "c", 4,
    ...                      clip_seconds=(3, 4))
    >>> Path(longer).parent.name
    'c_c3-4'
    """
    unbiased = sorted(int(s) for s in unbiased_sessions)
    if (float(speaker_bias) > 0 or float(emotion_strength) != 1.0
            or int(seed) != 0):
        folder = Path(f"{Path(folder)}_b{float(speaker_bias):g}"
                      f"_e{float(emotion_strength):g}_u"
                      + "-".join(map(str, unbiased))
                      + (f"_s{int(seed)}" if int(seed) != 0 else ""))
    seconds = tuple(float(x) for x in clip_seconds)
    if seconds != CLIP_SECONDS:
        folder = Path(f"{Path(folder)}_c{seconds[0]:g}-{seconds[1]:g}")
    if float(voice_spread) != 1.0:
        folder = Path(f"{Path(folder)}_v{float(voice_spread):g}")
    if float(content_variation) != 0.0:
        folder = Path(f"{Path(folder)}_w{float(content_variation):g}")
    run_on_main(
        make_demo_corpus,
        kwargs={"folder": folder, "utts_per_speaker": utts_per_speaker,
                "seed": seed, "speaker_bias": float(speaker_bias),
                "emotion_strength": float(emotion_strength),
                "unbiased_sessions": unbiased, "clip_seconds": seconds,
                "voice_spread": float(voice_spread),
                "content_variation": float(content_variation)},
    )
    return str(Path(folder) / "IEMOCAP_full_release")


def demo_ssl(folder, kind="wav2vec2", seed=0):
    """Builds (once) a tiny random SSL model and returns its folder."""
    run_on_main(make_tiny_ssl,
                kwargs={"folder": folder, "kind": kind, "seed": seed})
    return str(folder)


#: The demo's second corpora, in each released layout.
TEST_CORPORA = {
    "crema_d": acted_corpora.make_crema_d_corpus,
    "ravdess": acted_corpora.make_ravdess_corpus,
    "emodb": acted_corpora.make_emodb_corpus,
    "msp_podcast": table_corpora.make_msp_podcast_corpus,
    "csv": table_corpora.make_csv_corpus,
}


#: Their sizes: near the demo's test session (64 clips) or larger.
TEST_SIZES = {
    "crema_d": {"n_speakers": 12, "utts_per_speaker": 12},
    "ravdess": {"n_speakers": 8, "utts_per_speaker": 16},
    "emodb": {"n_speakers": 10, "utts_per_speaker": 14},
    "msp_podcast": {"n_speakers": 8, "utts_per_speaker": 12},
    "csv": {"n_speakers": 6, "utts_per_speaker": 12},
}


def demo_test_corpus(corpus, folder):
    """Generates (once) a small corpus in another layout, with other
    voices and channels than the demo's, for a zero-shot cross-corpus
    test; returns the folder (csv: the file) to prepare, or None when
    ``corpus`` is None (several comma-separated names give their
    folders, comma-separated).

    Example
    -------
    >>> demo_test_corpus(None, "unused") is None
    True
    >>> Path(demo_test_corpus("emodb", getfixture("tmp_path"))).name
    'EmoDB'
    """
    if corpus is None:
        return None
    names = [c.strip() for c in str(corpus).split(",")]
    unknown = [c for c in names if c not in TEST_CORPORA]
    if unknown:
        raise ValueError(f"the demo has no {unknown[0]!r} corpus; use one "
                         f"of {', '.join(TEST_CORPORA)}")
    folders = []
    for name in names:
        target = Path(folder) / f"test_{name}"
        kwargs = dict(TEST_SIZES[name], folder=target)
        run_on_main(TEST_CORPORA[name], kwargs=kwargs)
        folders.append(str(TEST_CORPORA[name](**kwargs)))
    return ",".join(folders)
