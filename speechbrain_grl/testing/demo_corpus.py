"""Synthetic corpus in the exact IEMOCAP release layout.

The generated tree mirrors ``IEMOCAP_full_release``: label files under
``Session{n}/dialog/EmoEvaluation`` (with the real header, annotator lines,
``Categorical``/``Attribute`` subfolders and AppleDouble ``._*`` junk) and
16-bit PCM mono wavs under ``Session{n}/sentences/wav/<dialog>/``.

Each session has one female and one male speaker with a distinct pitch and
formant set; emotions differ in loudness, syllable rate, pitch level and
contour, and spectral tilt, so that a small model can learn them quickly.
Utterances of both speakers appear in every dialog, so the dialog prefix
often differs from the true speaker. Each turn's ``[V, A, D]`` (valence,
activation, dominance on IEMOCAP's 1 to 5 scale) follows its emotion and
prosody: arousal rises with loudness and syllable rate (anger highest,
sadness lowest), valence is high for happiness and low for anger,
sadness and frustration, plus a little noise.

Two knobs make the speaker a shortcut, as a small real corpus can:
``speaker_bias`` b gives every speaker outside ``unbiased_sessions`` a
favourite emotion (seeded, each emotion the favourite of equally many
speakers) which they say with probability b (the other three share
1 − b); ``emotion_strength`` scales how far each emotion's prosody moves
from neutral (1 = the default styles, 0 = no emotion cue at all).
"""

from typing import NamedTuple

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

from speechbrain_grl.testing.cache import start_corpus, write_stamp

RELEASE = "IEMOCAP_full_release"
STAMP = "demo_corpus.json"
_MARKER = ".demo_corpus"
_VERSION = 3  # 3: V/A/D labels follow the emotion and its prosody
#: The range each clip's length is drawn from, in seconds.
CLIP_SECONDS = (1.0, 2.5)
#: Vowels as ratios of their three formants to a neutral vowel's (rough
#: adult averages of /i/, /ɑ/, /u/, /æ/, /ɝ/, /ɛ/ over 700, 2000 and
#: 3000 Hz), for clips whose syllables change vowel (``content``).
_VOWELS = ((0.44, 1.40, 1.10), (1.21, 0.61, 0.94), (0.53, 0.48, 0.89),
           (1.23, 1.03, 0.95), (0.71, 0.82, 0.65), (0.87, 1.17, 1.00))
#: Per gender (F first: the order of the random draws): pitch (Hz) in
#: session 1, its rise by session 5, the middle that a voice spread
#: below 1 draws it towards, and the neutral vowel's formants (Hz).
_VOICES = {"F": (165.0, 90.0, 210.0, (700, 2000, 3000)),
           "M": (85.0, 60.0, 115.0, (550, 1350, 2500))}
# 20 labels: after exc->hap, 4 of each kept class, plus 2 fru and 2 xxx.
_LABEL_CYCLE = (
    ["neu"] * 4 + ["hap"] * 2 + ["exc"] * 2 + ["ang"] * 4 + ["sad"] * 4
    + ["fru"] * 2 + ["xxx"] * 2
)
# gain, syllables/s, pitch factor, pitch slope, jitter, noise, tilt
_STYLE = {
    "neu": (0.08, 3.5, 1.00, 0.00, 0.00, 0.00, 0),
    "hap": (0.14, 4.5, 1.15, 0.35, 0.01, 0.02, 0),
    "exc": (0.16, 4.8, 1.18, 0.35, 0.01, 0.03, 0),
    "ang": (0.25, 6.0, 1.30, 0.00, 0.06, 0.15, 1),
    "sad": (0.025, 2.0, 0.85, -0.20, 0.00, 0.00, -1),
    "fru": (0.18, 5.0, 1.10, 0.00, 0.04, 0.08, 1),
    "xxx": (0.10, 4.0, 1.05, 0.10, 0.02, 0.02, 0),
}
_NAMES = {
    "neu": "Neutral", "hap": "Happiness", "exc": "Excited", "ang": "Anger",
    "sad": "Sadness", "fru": "Frustration", "xxx": "Other",
}
_KEPT = ("neu", "hap", "ang", "sad")  # hap is written as hap or exc
# mean valence, arousal (from loudness and rate), dominance on 1..5
_VAD_MEANS = {
    "neu": (3.0, 2.5, 2.8),
    "hap": (4.0, 3.7, 3.4),
    "exc": (4.0, 3.7, 3.4),
    "ang": (1.9, 4.3, 4.0),
    "sad": (1.8, 1.7, 2.0),
    "fru": (2.2, 3.6, 3.3),
    "xxx": (3.0, 3.0, 3.0),
}
_APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00" + bytes(4088)


def _write_wav(path, signal, sample_rate):
    """Write a mono float signal in [-1, 1] as 16-bit PCM."""
    sf.write(str(path), np.clip(signal, -1.0, 1.0), sample_rate,
             subtype="PCM_16")


def _resonate(x, freq, bw, sr):
    """Second-order resonator (a formant peak)."""
    r = np.exp(-np.pi * bw / sr)
    a = [1.0, -2.0 * r * np.cos(2.0 * np.pi * freq / sr), r * r]
    return lfilter([1.0 - r], a, x)


def _spread(value, centre, spread):
    """``value`` moved to ``spread`` of its distance from ``centre``
    (exactly ``value`` at 1)."""
    return value if spread == 1.0 else centre + spread * (value - centre)


def _channel(rng, k, spread=1.0):
    """Draw the recording channel (microphone and room) of speaker ``k``.

    A fixed spectral tilt, a broad microphone resonance, a mains hum and a
    coloured noise floor, as each IEMOCAP actor wore their own microphone.
    Tilt and resonance follow low-discrepancy sequences over the speaker
    index so that no two channels are alike; ``spread`` scales the tilt
    and the resonance's gain (0: a flat channel but for hum and noise).
    """
    u = (k * 0.6180339887 + rng.uniform(0.0, 0.1)) % 1.0
    v = (k * 0.4142135624 + rng.uniform(0.0, 0.1)) % 1.0
    return {
        "tilt": _spread(-0.95 + 1.9 * u, 0.0, spread),
        "peak": (300.0 * (5000.0 / 300.0) ** v,
                 _spread(rng.uniform(1.0, 3.0), 0.0, spread)),
        "hum": (rng.choice([50.0, 60.0]), rng.uniform(0.003, 0.012),
                rng.uniform(0.2, 1.0)),
        "floor": (rng.uniform(0.003, 0.012), rng.uniform(-0.9, 0.9)),
    }


def _apply_channel(rng, x, channel, sr):
    """Colour ``x`` by the speaker's channel, keeping its RMS."""
    rms = np.sqrt(np.mean(x**2))
    y = lfilter([1.0, -channel["tilt"]], [1.0], x)
    freq, gain = channel["peak"]
    y = y + gain * _resonate(y, freq, 0.5 * freq, sr) * 4.0
    y *= rms / (np.sqrt(np.mean(y**2)) + 1e-12)
    t = np.arange(len(x)) / sr
    mains, level, second = channel["hum"]
    y += level * (np.sin(2.0 * np.pi * mains * t)
                  + second * np.sin(4.0 * np.pi * mains * t + 1.0))
    level, colour = channel["floor"]
    noise = lfilter([1.0], [1.0, -colour], rng.standard_normal(len(x)))
    return y + level * noise * np.sqrt(1.0 - colour**2)


def _style(emo, strength):
    """The emotion's style moved ``strength`` of the way from neutral."""
    if strength == 1.0:
        return _STYLE[emo]
    neu = _STYLE["neu"]
    return tuple(n + strength * (e - n) for n, e in zip(neu, _STYLE[emo]))


def _synth(rng, voice, emo, sr, strength=1.0, seconds=CLIP_SECONDS,
           content=0.0):
    """Synthesize one utterance for a speaker ``voice`` and emotion, its
    length drawn uniformly from ``seconds``; with ``content`` > 0 each
    syllable says a random vowel, its formants the speaker's times the
    vowel's ratios raised to ``content`` (0: one vowel throughout)."""
    f0, formants, channel = voice
    gain, rate, pitch, slope, jitter, noise, tilt = _style(emo, strength)
    gain *= rng.uniform(0.85, 1.15)
    rate *= rng.uniform(0.9, 1.1)
    n = int(rng.uniform(*seconds) * sr)
    t = np.arange(n) / sr
    syl = t * rate + rng.random()
    idx = syl.astype(int)
    steps = 1.0 + jitter * rng.standard_normal(idx[-1] + 1)
    track = f0 * pitch * (1.0 + slope * t / t[-1]) * steps[idx]
    track *= 1.0 + 0.02 * np.sin(2.0 * np.pi * 0.7 * t)
    src = 2.0 * (np.cumsum(track / sr) % 1.0) - 1.0
    if content > 0:
        vowel = rng.integers(len(_VOWELS), size=idx[-1] + 1)[idx]
        out = np.zeros(n)
        for v in np.unique(vowel):
            said = vowel == v
            out[said] = sum(
                _resonate(src, f, 80.0 + 0.06 * f, sr)
                for f in formants * np.asarray(_VOWELS[v]) ** content)[said]
    else:
        out = sum(_resonate(src, f, 80.0 + 0.06 * f, sr) for f in formants)
    if tilt > 0:
        tilted = np.append(out[0], np.diff(out)) * 2.0 + out
        out = tilted if tilt == 1 else out + tilt * (tilted - out)
    elif tilt < 0:
        a = np.exp(-2.0 * np.pi * 600.0 / sr)
        tilted = lfilter([1.0 - a], [1.0, -a],
                         lfilter([1.0 - a], [1.0, -a], out))
        out = tilted if tilt == -1 else out - tilt * (tilted - out)
    out /= np.sqrt(np.mean(out**2)) + 1e-9
    out += noise * 3.0 * rng.standard_normal(n)
    frac = syl % 1.0
    amps = 0.7 + 0.3 * rng.random(idx[-1] + 1)
    env = np.where(frac < 0.7, np.sin(np.pi * frac / 0.7) ** 2, 0.0)
    env *= amps[idx] * np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    return _apply_channel(rng, gain * env * out, channel, sr)


def make_voice(rng, index, gender, channel_index=None):
    """Draw a speaker's voice: pitch, formants and recording channel.

    Used by the other corpus layouts (:mod:`.acted_corpora`,
    :mod:`.table_corpora`): pass another range of ``index`` and
    ``channel_index`` than the IEMOCAP demo's so that their speakers
    differ.

    Parameters
    ----------
    rng : numpy.random.Generator
        The generator to draw from.
    index : int
        The speaker's index; pitch is spread over it.
    gender : str
        ``"F"`` or ``"M"``.
    channel_index : int, optional
        Index of the channel colouring (default ``index``).

    Returns
    -------
    tuple
        ``(f0, formants, channel)``, as :func:`synthesize` takes.

    Example
    -------
    >>> import numpy as np
    >>> f0, formants, channel = make_voice(np.random.default_rng(0), 3, "F")
    >>> 140 < f0 < 280, len(formants), sorted(channel)
    (True, 3, ['floor', 'hum', 'peak', 'tilt'])
    """
    u = (index * 0.7548776662 + 0.13) % 1.0
    if gender == "F":
        f0 = 150.0 + 120.0 * u + rng.uniform(-3, 3)
        formants = rng.uniform(0.85, 1.15) * np.array([700, 2000, 3000])
    else:
        f0 = 80.0 + 70.0 * u + rng.uniform(-3, 3)
        formants = rng.uniform(0.85, 1.15) * np.array([550, 1350, 2500])
    k = index if channel_index is None else channel_index
    return f0, formants, _channel(rng, k)


def synthesize(rng, voice, style, sample_rate=16000, strength=1.0):
    """Synthesize one utterance of ``voice`` in the demo ``style``.

    ``style`` is one of the demo's emotion styles: ``neu``, ``hap``,
    ``exc``, ``ang``, ``sad``, ``fru`` or ``xxx`` (other corpora's extra
    emotions borrow ``fru`` or ``xxx``). Returns a float signal.

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = synthesize(rng, make_voice(rng, 0, "M"), "ang", 8000)
    >>> 8000 <= len(x) <= 20000
    True
    """
    return _synth(rng, voice, style, sample_rate, strength)


def write_wav(path, signal, sample_rate):
    """Write a mono float signal in [-1, 1] as 16-bit PCM."""
    _write_wav(path, signal, sample_rate)


def _turn_vad(code, draw, strength=1.0):
    """The ``[V, A, D]`` of a turn: the emotion's means moved
    ``strength`` of the way from neutral, plus ``0.15 * (draw - 3)`` of
    noise, clipped to 1..5.

    Parameters
    ----------
    code : str
        The turn's emotion code (a key of ``_VAD_MEANS``).
    draw : numpy.ndarray
        Three uniform draws on [1.5, 4.5] (the noise).
    strength : float
        The corpus's ``emotion_strength``.

    Returns
    -------
    numpy.ndarray
        Valence, arousal and dominance.

    Example
    -------
    >>> import numpy as np
    >>> _turn_vad("ang", np.full(3, 3.0)).tolist()
    [1.9, 4.3, 4.0]
    >>> _turn_vad("ang", np.full(3, 3.0), strength=0.0).tolist()
    [3.0, 2.5, 2.8]
    """
    neu, emo = np.asarray(_VAD_MEANS["neu"]), np.asarray(_VAD_MEANS[code])
    mean = neu + strength * (emo - neu)
    return np.clip(mean + 0.15 * (np.asarray(draw) - 3.0), 1.0, 5.0)


def _label_block(rng, start, end, utt, code, strength=1.0):
    """Return the lines of one turn of an EmoEvaluation file."""
    # drawn as before so that every later draw (the audio) is unchanged
    vad = _turn_vad(code, rng.uniform(1.5, 4.5, 3), strength)
    name = _NAMES[code]
    return [
        (f"[{start:.4f} - {end:.4f}]\t{utt}\t{code}\t"
         f"[{vad[0]:.4f}, {vad[1]:.4f}, {vad[2]:.4f}]"),
        f"C-E1:\t{name};\t()",
        f"C-E2:\t{name};\t()",
        f"C-F1:\t{_NAMES['neu'] if code == 'xxx' else name};\t()",
        "A-E1:\tval 3; act 2; dom  2;\t()",
        "A-F1:\tval 2; act 3; dom  3;\t()",
        "",
    ]


def _biased_codes(codes, favourite, bias, rng):
    """Relabel the kept codes: ``favourite`` with probability ``bias``,
    each other kept emotion with (1 - bias) / 3; dropped codes stay."""
    out = list(codes)
    others = [e for e in _KEPT if e != favourite]
    for i, code in enumerate(out):
        if code not in ("neu", "hap", "exc", "ang", "sad"):
            continue
        emo = favourite if rng.random() < bias else others[
            rng.integers(len(others))]
        if emo == "hap":
            emo = "hap" if rng.random() < 0.5 else "exc"
        out[i] = emo
    return out


def favourites(n_sessions, unbiased_sessions, seed=0):
    """Each biased speaker's favourite emotion, by speaker id.

    Speakers of the sessions not in ``unbiased_sessions`` get the four
    emotions in a seeded order, each emotion equally often (up to one).

    Example
    -------
    >>> fav = favourites(5, [5])
    >>> len(fav), sorted(set(fav.values()))
    (8, ['ang', 'hap', 'neu', 'sad'])
    >>> sorted(fav.values()).count("ang")
    2
    """
    speakers = [f"Ses{s:02d}{g}" for s in range(1, n_sessions + 1)
                if s not in set(unbiased_sessions) for g in "FM"]
    rng = np.random.default_rng([seed, 104729])
    pool = list(_KEPT) * (-(-len(speakers) // len(_KEPT)))
    order = rng.permutation(len(pool))[:len(speakers)]
    return {spk: pool[k] for spk, k in zip(speakers, order)}


class _Settings(NamedTuple):
    """What every session of one corpus shares (see
    :func:`make_demo_corpus`, whose checked parameters these are)."""

    utts_per_speaker: int
    sample_rate: int
    seed: int
    bias: float
    favourites: dict
    strength: float
    seconds: tuple
    spread: float
    content: float


def _session(root, rng, s, settings):
    """Write the label files, wavs and junk of session ``s``."""
    n_utts, sr = settings.utts_per_speaker, settings.sample_rate
    bias, favourite = settings.bias, settings.favourites
    spread = settings.spread
    ses = f"Ses{s:02d}"
    dialogs = [f"{ses}F_impro01", f"{ses}M_impro02",
               f"{ses}F_script01_1", f"{ses}M_script02_1"]
    emo_dir = root / f"Session{s}" / "dialog" / "EmoEvaluation"
    wav_dir = root / f"Session{s}" / "sentences" / "wav"
    voices = {
        g: (_spread(low + rise * (s - 1) / 4, middle, spread)
            + rng.uniform(-3, 3),
            _spread(rng.uniform(0.85, 1.15), 1.0, spread)
            * np.array(formants),
            _channel(rng, 2 * s - 2 + i, spread))
        for i, (g, (low, rise, middle, formants)) in enumerate(
            _VOICES.items())
    }
    emo_dir.mkdir(parents=True, exist_ok=True)
    turns = {d: [] for d in dialogs}
    for g in "FM":
        reps = -(-n_utts // len(_LABEL_CYCLE))
        codes = rng.permutation(_LABEL_CYCLE * reps)[:n_utts]
        spk = f"{ses}{g}"
        if bias > 0 and favourite and spk in favourite:
            codes = _biased_codes(
                codes, favourite[spk], bias,
                np.random.default_rng([settings.seed, s, ord(g)]))
        for i, code in enumerate(codes):
            turns[dialogs[i % len(dialogs)]].append((g, str(code)))
    for d in dialogs:
        (wav_dir / d).mkdir(parents=True, exist_ok=True)
        order = rng.permutation(len(turns[d]))
        lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        start, count = 0.0, {"F": 0, "M": 0}
        for k in order:
            g, code = turns[d][k]
            utt = f"{d}_{g}{count[g]:03d}"
            count[g] += 1
            sig = _synth(rng, voices[g], code, sr, settings.strength,
                         settings.seconds, settings.content)
            _write_wav(wav_dir / d / f"{utt}.wav", sig, sr)
            start += rng.uniform(0.2, 1.5)
            end = start + len(sig) / sr
            lines += _label_block(rng, start, end, utt, code,
                                  settings.strength)
            start = end
        (emo_dir / f"{d}.txt").write_text("\n".join(lines) + "\n")
        (emo_dir / f"._{d}.txt").write_bytes(_APPLEDOUBLE)
        (wav_dir / d / f"._{d}_F000.wav").write_bytes(_APPLEDOUBLE)
    d = dialogs[0]
    for sub, suffix, text in [
        ("Categorical", "e2_cat", f"{d}_F000 :Neutral state; ()\n"),
        ("Attribute", "e3_atr", f"{d}_F000 :act 2; val 3; dom  2;  ()\n"),
        ("Self-evaluation", "sel", f"{d}_F000 :val 3; act 2; dom 2;\n"),
    ]:
        (emo_dir / sub).mkdir(exist_ok=True)
        (emo_dir / sub / f"{d}_{suffix}.txt").write_text(text)
    (emo_dir / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(24))


def make_demo_corpus(folder, n_sessions=5, utts_per_speaker=40,
                     sample_rate=16000, seed=0, overwrite=False,
                     speaker_bias=0.0, emotion_strength=1.0,
                     unbiased_sessions=(5,), clip_seconds=CLIP_SECONDS,
                     voice_spread=1.0, content_variation=0.0):
    """Generate (or reuse) a synthetic IEMOCAP-layout corpus.

    Parameters
    ----------
    folder : str or pathlib.Path
        Parent folder; the corpus is written to
        ``<folder>/IEMOCAP_full_release`` and a parameter stamp to
        ``<folder>/demo_corpus.json``.
    n_sessions : int
        Number of sessions (1 to 9), two speakers each.
    utts_per_speaker : int
        Labelled utterances per speaker (labels include dropped ones).
    sample_rate : int
        Sample rate of the 16-bit PCM mono wavs.
    seed : int
        Seed; the same parameters give byte-identical files.
    overwrite : bool
        Regenerate even if a corpus with the same parameters exists.
    speaker_bias : float
        0..1: each speaker outside ``unbiased_sessions`` says their
        seeded favourite emotion with this probability (0: no shortcut).
    emotion_strength : float
        How strongly prosody carries the emotion (1: the default styles).
    unbiased_sessions : sequence of int
        Sessions kept unbiased (the test session of the demo).
    clip_seconds : (float, float)
        The range each clip's length is drawn from, uniformly (e.g.
        ``(2, 8)`` for longer clips).
    voice_spread : float
        How far apart the voices are: the speakers' pitch around their
        gender's middle, their formant scaling and their channel's tilt
        and resonance, scaled by this (1: the demo's voices; smaller:
        voices closer together, a clip telling less about its speaker).
    content_variation : float
        0: every syllable of a speaker has the same formants (the demo);
        1: each syllable says one of six vowels, so that a clip's
        spectrum also depends on what it says, as in real speech.

    Returns
    -------
    pathlib.Path
        The ``IEMOCAP_full_release`` folder.

    Raises
    ------
    ValueError
        On bad parameters, or if the release folder exists but was not
        written by this function (it is never deleted then).

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.mkdtemp()
    >>> root = make_demo_corpus(tmp, n_sessions=1, utts_per_speaker=4)
    >>> root.name
    'IEMOCAP_full_release'
    >>> sorted(p.name for p in (root / "Session1/dialog/EmoEvaluation")
    ...        .glob("Ses*.txt"))[:2]
    ['Ses01F_impro01.txt', 'Ses01F_script01_1.txt']
    >>> make_demo_corpus(tmp, n_sessions=1, utts_per_speaker=4) == root
    True
    """
    if not 1 <= int(n_sessions) <= 9:
        raise ValueError(f"n_sessions={n_sessions}: use 1 to 9")
    if int(utts_per_speaker) < 1 or int(sample_rate) < 8000:
        raise ValueError("utts_per_speaker must be >= 1, sample_rate >= 8000")
    if not 0.0 <= float(speaker_bias) <= 1.0:
        raise ValueError(f"speaker_bias={speaker_bias}: use 0 to 1")
    if float(emotion_strength) < 0.0:
        raise ValueError(f"emotion_strength={emotion_strength}: use >= 0")
    seconds = tuple(float(x) for x in clip_seconds)
    if len(seconds) != 2 or not 0.1 <= seconds[0] <= seconds[1]:
        raise ValueError(f"clip_seconds={clip_seconds}: use (shortest, "
                         "longest), 0.1 <= shortest <= longest")
    params = {"n_sessions": int(n_sessions),
              "utts_per_speaker": int(utts_per_speaker),
              "sample_rate": int(sample_rate), "seed": int(seed),
              "version": _VERSION}
    bias, strength = float(speaker_bias), float(emotion_strength)
    fav = None
    if bias > 0:  # old stamps (no shortcut) stay valid
        fav = favourites(params["n_sessions"], unbiased_sessions, seed)
        params.update(speaker_bias=bias, favourites=fav,
                      unbiased_sessions=sorted(int(x)
                                               for x in unbiased_sessions))
    if strength != 1.0:
        params["emotion_strength"] = strength
    if seconds != CLIP_SECONDS:  # old stamps (1-2.5 s clips) stay valid
        params["clip_seconds"] = list(seconds)
    spread = float(voice_spread)
    if spread < 0.0:
        raise ValueError(f"voice_spread={voice_spread}: use >= 0")
    if spread != 1.0:
        params["voice_spread"] = spread
    content = float(content_variation)
    if content < 0.0:
        raise ValueError(f"content_variation={content_variation}: use >= 0")
    if content != 0.0:
        params["content_variation"] = content
    root, stamp, reuse = start_corpus(folder, RELEASE, STAMP, params,
                                      overwrite, "make_demo_corpus", _MARKER)
    if reuse:
        return root
    settings = _Settings(params["utts_per_speaker"], params["sample_rate"],
                         params["seed"], bias, fav, strength, seconds,
                         spread, content)
    rng = np.random.default_rng(seed)
    for s in range(1, params["n_sessions"] + 1):
        _session(root, rng, s, settings)
    write_stamp(stamp, params)
    return root
