"""Per-speaker standardisation: the classic baseline to speaker adversaries.

Each speaker's pooled encoder features are standardised with that
speaker's own mean and standard deviation, removing what is constant in a
voice (and a channel) before the emotion classifier sees it. It answers a
reviewer's first question: does adversarial training beat plain speaker
normalisation?

- **Training speakers** use running statistics (an exponential moving
  average over their utterances in the training batches, kept in the
  checkpoint).
- **Validation and test speakers** are unknown at training time. Their
  statistics are computed from their own unlabelled audio in the set
  being evaluated, in a pass before it (``set_eval_stats``).
- **The prior** (:meth:`SpeakerNorm.prior`): the training speakers'
  average voice (the mean of their means) and the pooled within-speaker
  standard deviation. With ``tau`` > 0 a speaker's mean is a MAP
  estimate shrunk towards the prior mean, worth ``tau`` clips
  (:func:`map_mean`): one clip moves it a little, many clips make it the
  speaker's own; a speaker with no clip gets the prior. ``tau="auto"``
  estimates the prior's worth from the training speakers
  (:meth:`SpeakerNorm.empirical_tau`): large where voices differ
  little next to how much a speaker's clips vary, small where they
  differ much. With ``std="pooled"`` every speaker is divided by the
  pooled standard deviation, so an exported model normalises an unknown
  speaker with the prior alone and adapts from a few of their clips
  (:mod:`speechbrain_grl.inference.adaptation`).
- ``train_clips`` trains as deployed: each training utterance is
  normalised with a MAP mean as if estimated from k of its speaker's
  clips, k drawn from ``train_clips`` (None: all of them); the mean of k
  clips is simulated from the speaker's running mean and spread.
  ``train_offsets="other"`` keeps the size of a deployed estimate's
  error but not its link to the speaker: the prior a training mean is
  shrunk towards sits at another training speaker's offset from the
  average voice, seen from the speaker's own mean, so the voice left in
  a normalised clip never tells its speaker (nor their favourite
  emotion). ``train_offsets="drawn"`` leaves a voice drawn at random
  instead: a Gaussian combination of the other training speakers'
  offsets, of their size on average, so training meets as many voices
  as rows rather than the few training speakers'. Those voices lie in
  the span of a few training offsets; ``train_offsets="diagonal"``
  draws each dimension of the voice independently, with the other
  training speakers' spread in it, so training also meets voices (and
  channels) in directions that no training speaker took.
- Where speakers carry an emotion shortcut, a speaker's plain mean holds
  their favourite emotion too, and subtracting it removes emotion as
  well. With ``n_emotions`` > 1 the training statistics are kept per
  (speaker, emotion) cell and a speaker's statistics are the average over
  the emotions they said, each emotion weighing the same: a voice's
  statistics, not its favourite emotion's. A training speaker met again
  in evaluation keeps those statistics. A held-out validation speaker's
  are balanced the same way over its labelled emotions
  (``speaker_stats(..., emotions=...)``, the recipe's
  ``spk_norm_valid_balanced``); the test pass reads no label.
  ``balance="additive"`` is for speakers who rarely say some emotions
  (where a cell holds one clip, or none): a training speaker's voice is
  fitted jointly with emotion effects shared by every speaker
  (:func:`additive_means`), each clip weighing the same, instead of
  averaging their cells' means, so a cell of one clip moves the voice as
  one clip, and a missing cell moves it not at all.
"""

import torch

from speechbrain_grl.utils.ddp import distributed

__all__ = ["SpeakerNorm", "additive_means", "map_mean", "shrinkage_tau",
           "speaker_stats"]

STD_MODES = ("speaker", "pooled")
OFFSET_MODES = ("own", "other", "drawn", "diagonal")
BALANCE_MODES = ("cells", "additive")
#: ``tau`` estimated from the training speakers' statistics.
AUTO = "auto"
#: The prior's worth in clips where it cannot be estimated (fewer than
#: two trained speakers).
FALLBACK_TAU = 2.0
#: The largest estimated worth (voices that do not differ at all).
MAX_TAU = 1000.0


def shrinkage_tau(between, within):
    """The prior's worth in clips, τ = 1 / mean(between / within), from
    per-dimension variances of speakers' means (``between``) and of clips
    around their speaker's mean (``within``), numpy or torch; at most
    :data:`MAX_TAU`.

    Example
    -------
    >>> shrinkage_tau(torch.tensor([8.0, 2.0]), torch.tensor([1.0, 1.0]))
    0.2
    """
    ratio = float((between / within).mean())
    return min(MAX_TAU, 1.0 / ratio) if ratio > 0 else MAX_TAU


def map_mean(prior_mean, total, n, tau):
    """The MAP estimate of a speaker's mean from ``n`` clips summing to
    ``total``, with a prior mean worth ``tau`` clips: (τ·μ₀ + Σx)/(τ + n).

    Example
    -------
    >>> prior = torch.tensor([0.0])
    >>> map_mean(prior, torch.tensor([4.0]), 2, tau=2.0)
    tensor([1.])
    >>> map_mean(prior, torch.tensor([0.0]), 0, tau=2.0)
    tensor([0.])
    >>> map_mean(prior, torch.tensor([4.0]), 2, tau=0.0)
    tensor([2.])
    """
    if n == 0 and tau == 0:
        return prior_mean.clone()
    return (tau * prior_mean + total) / (tau + n)


def additive_means(means, counts):
    """Speakers' voices and emotions' effects fitted to (speaker, emotion)
    cell means: the least-squares fit of mean[s, e] ≈ voice[s] +
    effect[e], each cell weighted by its clips, with the effects of the
    emotions said centred (each emotion weighing the same).

    A speaker's voice is then their mean as if they had said every
    emotion equally often, estimated from all their clips, the effects
    coming from every speaker.

    Arguments
    ---------
    means : torch.Tensor
        ``[speakers, emotions, dim]`` cell means.
    counts : torch.Tensor
        ``[speakers, emotions]`` clips per cell (0: no clip; the cell's
        mean is not read).

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``voice [speakers, dim]`` (zeros for a speaker with no clip) and
        ``effect [emotions, dim]`` (zeros for an emotion nobody said).

    Example
    -------
    Speaker 1 never says emotion 1; emotion 1 is 4 above emotion 0 in
    speaker 0, so speaker 1's voice is 10 + 2, not 10.

    >>> means = torch.tensor([[[0.0], [4.0]], [[10.0], [0.0]]])
    >>> voice, effect = additive_means(means, torch.tensor([[1, 1], [3, 0]]))
    >>> voice.squeeze(1), effect.squeeze(1)
    (tensor([ 2., 12.]), tensor([-2.,  2.]))
    """
    n_spk, n_emo, dim = means.shape
    n = counts.to(torch.float64)
    m = means.to(torch.float64)
    # Normal equations of min sum n[s,e] (m[s,e] - v[s] - f[e])^2, solved
    # with the pseudo-inverse: one null direction (v + c, f - c), fixed by
    # centring below; unseen speakers and unsaid emotions give zeros.
    normal = torch.zeros(n_spk + n_emo, n_spk + n_emo, dtype=torch.float64,
                         device=means.device)
    normal[:n_spk, :n_spk] = torch.diag(n.sum(1))
    normal[n_spk:, n_spk:] = torch.diag(n.sum(0))
    normal[:n_spk, n_spk:] = n
    normal[n_spk:, :n_spk] = n.T
    weighted = n[..., None] * m
    rhs = torch.cat([weighted.sum(1), weighted.sum(0)])
    solved = torch.linalg.pinv(normal, hermitian=True) @ rhs
    voice, effect = solved[:n_spk], solved[n_spk:]
    said = n.sum(0) > 0
    if bool(said.any()):
        centre = effect[said].mean(0)
        effect = torch.where(said[:, None], effect - centre, 0.0)
        voice = torch.where((n.sum(1) > 0)[:, None], voice + centre, 0.0)
    return voice.to(means.dtype), effect.to(means.dtype)


def _no_class(emotion):
    """Whether an emotion index marks a clip of no class (negative)."""
    return isinstance(emotion, int) and emotion < 0


def speaker_stats(features, speakers, eps=1e-5, emotions=None, prior=None,
                  tau=0.0):
    """Mean and standard deviation of ``features`` per speaker.

    Arguments
    ---------
    features : torch.Tensor
        ``[n, dim]``.
    speakers : list of str
        The speaker of each row.
    eps : float
        Added to the variance.
    emotions : list, optional
        The emotion of each row (labelled sets): a speaker's statistics
        are then the average of their emotions' first and second
        moments, each emotion they said weighing the same, as for the
        training speakers. Rows of no class (a negative index) are left
        out, unless the speaker has no other.
    prior : (torch.Tensor, torch.Tensor or None), optional
        The prior mean and pooled standard deviation
        (:meth:`SpeakerNorm.prior`): each mean becomes the MAP estimate
        (:func:`map_mean`, ``tau``) and each standard deviation the
        pooled one (None: the speaker's own).
    tau : float
        The prior mean's worth in clips.

    Returns
    -------
    dict
        ``{speaker: (mean [dim], std [dim])}``.

    Example
    -------
    >>> x = torch.tensor([[1.0], [3.0], [10.0], [10.0]])
    >>> stats = speaker_stats(x, ["a", "a", "b", "b"])
    >>> stats["a"][0], stats["b"][0]
    (tensor([2.]), tensor([10.]))
    >>> speaker_stats(x, ["a"] * 4, emotions=[0, 0, 0, 1])["a"][0]
    tensor([7.3333])
    >>> prior = (torch.tensor([0.0]), torch.tensor([3.0]))
    >>> speaker_stats(x, ["a", "a", "b", "b"], prior=prior, tau=2.0)["b"]
    (tensor([5.]), tensor([3.]))
    """
    out = {}
    for spk in sorted(set(speakers)):
        idx = [i for i, s in enumerate(speakers) if s == spk]
        if emotions is None:
            rows = features[idx]
            mean = rows.mean(0)
            var = ((rows - mean) ** 2).mean(0)
        else:
            classes = sorted({emotions[i] for i in idx
                              if not _no_class(emotions[i])})
            cells = [features[[i for i in idx if emotions[i] == e]]
                     for e in classes] or [features[idx]]
            mean = torch.stack([c.mean(0) for c in cells]).mean(0)
            sq = torch.stack([(c**2).mean(0) for c in cells]).mean(0)
            var = (sq - mean**2).clamp_min(0.0)
        std = torch.sqrt(var + eps)
        if prior is not None:
            mean = map_mean(prior[0], mean * len(idx), len(idx), tau)
            std = std if prior[1] is None else prior[1]
        out[spk] = (mean, std)
    return out


class SpeakerNorm(torch.nn.Module):
    """Standardises features with their speaker's statistics.

    Arguments
    ---------
    input_size : int
        Feature size (the last dimension).
    n_speakers : int
        Training speakers (indices ``0..n_speakers-1``).
    momentum : float
        Weight of each batch in a training speaker's running statistics.
    eps : float
        Added to the variance.
    n_emotions : int
        With more than 1, training statistics per (speaker, emotion) cell,
        averaged over the speaker's emotions with equal weights (forward
        then needs ``emotion_index`` in training). Clips of no class
        (index -1, ``keep_all_emotions``) update no cell and are
        normalised with their speaker's statistics, or the prior while
        the speaker has none.
    tau : float or str
        The prior mean's worth in clips, for MAP means (0: plain means;
        ``"auto"``: :meth:`empirical_tau`, from the training speakers).
    std : str
        ``speaker``: each speaker's own standard deviation; ``pooled``:
        the pooled within-speaker one (:meth:`prior`), for everyone.
    train_clips : sequence, optional
        Train as deployed: each training utterance's mean is a MAP
        estimate as if from k clips of its speaker, k drawn uniformly from
        this (None entries: all clips, the speaker's running mean).
    train_tau : float, optional
        The prior's worth in those simulated training means (None: as
        ``tau``).
    train_offsets : str
        ``own``: a simulated mean is shrunk towards the prior mean, so
        what is left of the speaker's offset from the average voice is
        their own (as deployed); ``other``: towards the speaker's mean
        minus a random other training speaker's offset, so what is left
        is another voice's, unrelated to the clip's speaker and emotion;
        ``drawn``: minus a voice drawn at random (:meth:`_row_priors`);
        ``diagonal``: minus a voice drawn dimension by dimension.
    balance : str
        With ``n_emotions`` > 1, how a training speaker's statistics
        weigh their emotions: ``cells``, the average of their emotion
        cells' moments; ``additive``, their voice from
        :func:`additive_means` (every clip weighing the same, emotion
        effects shared by all speakers) and their variance the pooled
        within-cell one plus the effects' spread.

    Example
    -------
    >>> norm = SpeakerNorm(2, n_speakers=2, momentum=1.0)
    >>> x = torch.tensor([[[1.0, 0.0]], [[3.0, 2.0]], [[5.0, 5.0]]])
    >>> y = norm(x, speaker_index=torch.tensor([0, 0, 1]))  # training
    >>> y[:2].squeeze(1)
    tensor([[-1.0000, -1.0000],
            [ 1.0000,  1.0000]])
    >>> _ = norm.eval()
    >>> norm.set_eval_stats(speaker_stats(torch.tensor([[0.0, 0.0],
    ...                                                 [2.0, 4.0]]),
    ...                                   ["new", "new"]))
    >>> norm(torch.tensor([[[2.0, 4.0]]]), speaker_ids=["new"]).squeeze()
    tensor([1.0000, 1.0000])

    Balanced over emotions: speaker 0 says emotion 0 three times and
    emotion 1 once; its mean is the average of the two emotions' means.

    >>> norm = SpeakerNorm(1, n_speakers=1, momentum=1.0, n_emotions=2)
    >>> x = torch.tensor([[[0.0]], [[0.0]], [[0.0]], [[4.0]]])
    >>> y = norm(x, speaker_index=torch.tensor([0, 0, 0, 0]),
    ...          emotion_index=torch.tensor([0, 0, 0, 1]))
    >>> norm.speaker_stats(0)[0]
    tensor([2.])
    """

    def __init__(self, input_size, n_speakers, momentum=0.1, eps=1e-5,
                 n_emotions=1, tau=0.0, std="speaker", train_clips=None,
                 train_tau=None, train_offsets="own", balance="cells"):
        super().__init__()
        for name, value, modes in (
                ("std", std, STD_MODES),
                ("train_offsets", train_offsets, OFFSET_MODES),
                ("balance", balance, BALANCE_MODES)):
            if value not in modes:
                raise ValueError(f"SpeakerNorm {name} {value!r} is unknown; "
                                 f"use one of {', '.join(modes)}")
        self.train_offsets = train_offsets
        self.balance = balance
        if tau != AUTO and not isinstance(tau, (int, float)):
            raise ValueError(f"SpeakerNorm tau {tau!r}: use a number of "
                             f"clips or {AUTO!r}")
        self.tau = tau if tau == AUTO else float(tau)
        self.train_tau = None if train_tau is None else float(train_tau)
        self.std = std
        self.train_clips = list(train_clips or [])
        if all(k is None for k in self.train_clips):
            self.train_clips = []  # every mean from all clips
        if any(k is not None and k < 0 for k in self.train_clips):
            raise ValueError("SpeakerNorm train_clips: counts of clips "
                             "must be >= 0 (or null: all)")
        self.momentum = momentum
        self.eps = eps
        self.n_speakers = int(n_speakers)
        self.n_emotions = max(1, int(n_emotions))
        cells = self.n_speakers * self.n_emotions
        self.register_buffer("mean", torch.zeros(cells, input_size))
        self.register_buffer("sq_mean", torch.ones(cells, input_size))
        self.register_buffer("count", torch.zeros(cells))
        self.eval_stats = {}
        self._fitted = None  # additive statistics, within one forward

    def trained_stats(self, index):
        """:meth:`speaker_stats` of training speaker ``index`` (an int),
        or None if it is out of range or was never trained on (with
        ``std="pooled"``, the pooled standard deviation)."""
        if not 0 <= index < self.n_speakers:
            return None
        if not bool(self._seen_speakers()[index]):
            return None
        mean, std = self.speaker_stats(index)
        if self.std == "pooled":
            std = self.prior()[1]
        return mean, std

    def eval_prior(self):
        """The ``prior`` argument of :func:`speaker_stats` for evaluated
        speakers: None (plain statistics), or the prior mean and, with
        ``std="pooled"``, the pooled standard deviation."""
        if self.tau == 0 and self.std != "pooled":
            return None
        mean, std = self.prior()
        return mean, (std if self.std == "pooled" else None)

    def speaker_stats(self, index):
        """Training statistics ``(mean, std)`` of speakers ``index`` (an
        int or ``[batch]`` tensor): their cells' running statistics, each
        emotion they said weighing the same."""
        index = torch.as_tensor(index, device=self.mean.device)
        shape = index.shape
        index = index.reshape(-1)
        dim = self.mean.shape[-1]
        e = self.n_emotions
        if self.balance == "additive" and e > 1:
            mean, std = self._fitted or self._additive_stats()
            return (mean[index].reshape(shape + (dim,)),
                    std[index].reshape(shape + (dim,)))
        mean = self.mean.view(-1, e, dim)[index]
        sq = self.sq_mean.view(-1, e, dim)[index]
        seen = (self.count.view(-1, e)[index] > 0).to(mean.dtype)
        weight = seen / seen.sum(-1, keepdim=True).clamp_min(1)
        mean = (weight[..., None] * mean).sum(1)
        sq = (weight[..., None] * sq).sum(1)
        std = torch.sqrt((sq - mean**2).clamp_min(0) + self.eps)
        return mean.reshape(shape + (dim,)), std.reshape(shape + (dim,))

    def _additive_stats(self):
        """Every speaker's ``(mean, std)`` (``[n_speakers, dim]`` each)
        with ``balance="additive"``: the voice of :func:`additive_means`,
        and the pooled within-cell variance of the speaker plus the mean
        squared emotion effect."""
        e, dim = self.n_emotions, self.mean.shape[-1]
        means = self.mean.view(-1, e, dim)
        counts = self.count.view(-1, e)
        voice, effect = additive_means(means, counts)
        n = counts.to(means.dtype)[..., None]
        inside = (self.sq_mean.view(-1, e, dim) - means**2).clamp_min(0)
        within = (n * inside).sum(1) / n.sum(1).clamp_min(1)
        said = counts.sum(0) > 0
        spread = effect[said].pow(2).mean(0) if bool(said.any()) else 0.0
        return voice, torch.sqrt(within + spread + self.eps)

    def prior(self):
        """``(mean, std)`` of the prior: the mean of the trained speakers'
        means and the pooled within-speaker standard deviation (the root
        of their mean variance); zeros and ones before any training."""
        trained = self._trained_speaker_stats()
        if trained is None:
            dim = self.mean.shape[-1]
            return self.mean.new_zeros(dim), self.mean.new_ones(dim)
        mean, std = trained
        return mean.mean(0), std.pow(2).mean(0).sqrt()

    def _seen_speakers(self):
        """``[n_speakers]``: whether each speaker has a trained cell."""
        return (self.count.view(self.n_speakers, -1) > 0).any(-1)

    def _trained_index(self):
        """Indices (``[n]``) of the speakers trained on."""
        return torch.nonzero(self._seen_speakers()).squeeze(1)

    def _trained_speaker_stats(self):
        """:meth:`speaker_stats` of every speaker trained on (``[n,
        dim]`` each), or None before any training."""
        trained = self._trained_index()
        return self.speaker_stats(trained) if len(trained) else None

    def prior_tau(self):
        """The prior mean's worth in clips (a float): ``tau``, or
        :meth:`empirical_tau` with ``tau="auto"``."""
        return self.empirical_tau() if self.tau == AUTO else self.tau

    def empirical_tau(self):
        """The prior's worth in clips that the training speakers imply.

        In a Gaussian model of speakers' means around the average voice
        (between-speaker variance b) and of clips around their speaker's
        mean (within-speaker variance w), the posterior mean of a speaker
        from n clips is the MAP mean with τ = w / b. Here b and w are
        per dimension (the variance of the trained speakers' means, and
        their pooled within-speaker variance), and τ = 1 / mean(b / w):
        the dimensions weigh alike in the pooled-std units the model
        reads. Without two trained speakers: :data:`FALLBACK_TAU`.

        Example
        -------
        >>> norm = SpeakerNorm(1, n_speakers=2, momentum=1.0, tau="auto")
        >>> x = torch.tensor([[[0.0]], [[2.0]], [[4.0]], [[6.0]]])
        >>> _ = norm(x, speaker_index=torch.tensor([0, 0, 1, 1]))
        >>> round(norm.empirical_tau(), 4)  # w = 1, b = var(1, 5) = 8
        0.125
        """
        trained = self._trained_speaker_stats()
        if trained is None or len(trained[0]) < 2:
            return FALLBACK_TAU
        mean, std = trained
        return shrinkage_tau(mean.var(0, unbiased=True), std.pow(2).mean(0))

    def _as_deployed(self, mean, std, prior_mean, index):
        """Training means as if estimated from k clips (``train_clips``):
        the mean of k clips drawn around the speaker's mean with its
        spread, shrunk towards the prior (k = 0: the prior mean), or with
        ``train_offsets`` ``other`` or ``drawn`` towards the speaker's
        mean minus another voice's offset (:meth:`_row_priors`)."""
        choices = self.train_clips
        tau = self.prior_tau() if self.train_tau is None else self.train_tau
        pick = torch.randint(len(choices), (mean.shape[0],))
        priors = self._row_priors(mean, prior_mean, index)
        for row, j in enumerate(pick.tolist()):
            k = choices[j]
            if k is None:
                continue
            sample = mean[row] + std[row] * torch.randn_like(
                mean[row]) / max(k, 1) ** 0.5
            mean[row] = map_mean(priors[row], sample * k, k, tau)
        return mean

    def _row_priors(self, mean, prior_mean, index):
        """The prior mean each training row is shrunk towards: the prior
        mean (``train_offsets="own"``, or fewer than two trained
        speakers), else the row's speaker mean minus the offset of a
        training speaker other than its own, drawn uniformly
        (``other``), or minus a drawn voice (``drawn``): the other
        training speakers' offsets weighted by independent N(0, 1 / m)
        draws, m of them, whose mean square is theirs; ``diagonal``:
        each dimension drawn from N(0, the other speakers' mean squared
        offset in it), the same size but in any direction."""
        if self.train_offsets == "own":
            return prior_mean.expand_as(mean)
        trained = self._trained_index()
        if len(trained) < 2:
            return prior_mean.expand_as(mean)
        means = self.speaker_stats(trained)[0]
        others = (trained[None, :] != index[:, None]).float()
        offsets = means - prior_mean
        if self.train_offsets == "diagonal":
            spread = (others @ offsets.pow(2)) / others.sum(1, keepdim=True)
            return mean - torch.randn_like(mean) * spread.sqrt()
        if self.train_offsets == "drawn":
            weights = torch.randn(others.shape).to(others) * others
            weights = weights / others.sum(1, keepdim=True).sqrt()
            return mean - weights @ offsets
        # A uniform draw among the trained speakers other than the row's.
        other = torch.multinomial(others, 1)
        return mean - offsets[other.squeeze(1)]

    def _stats_or_prior(self, index):
        """:meth:`speaker_stats` of training speakers ``index``; the
        prior for those with no trained cell yet (clips of no class)."""
        mean, std = self.speaker_stats(index)
        unseen = ~self._seen_speakers()[index]
        if bool(unseen.any()):
            prior_mean, prior_std = self.prior()
            mean[unseen], std[unseen] = prior_mean, prior_std
        return mean, std

    def set_eval_stats(self, stats):
        """Statistics of the speakers to evaluate, ``{speaker: (mean,
        std)}`` (see :func:`speaker_stats`)."""
        self.eval_stats = {k: (m.to(self.mean.device), s.to(self.mean.device))
                           for k, (m, s) in stats.items()}

    def _update(self, flat, index):
        """Running statistics of the training speakers in the batch (under
        DDP, of the global batch: every process keeps the same ones)."""
        with torch.no_grad():
            n = torch.zeros_like(self.count).index_add_(
                0, index, torch.ones_like(index, dtype=self.count.dtype))
            sums = torch.zeros_like(self.mean).index_add_(0, index, flat)
            sqs = torch.zeros_like(self.mean).index_add_(0, index, flat**2)
            if distributed():
                for part in (n, sums, sqs):
                    torch.distributed.all_reduce(part)
            seen = n > 0
            mean = sums[seen] / n[seen, None]
            sq = sqs[seen] / n[seen, None]
            first = (self.count[seen] == 0)[:, None]
            w = torch.where(first, torch.ones_like(mean),
                            torch.full_like(mean, self.momentum))
            self.mean[seen] = (1 - w) * self.mean[seen] + w * mean
            self.sq_mean[seen] = (1 - w) * self.sq_mean[seen] + w * sq
            self.count += n

    def _train_stats(self, index):
        """The statistics training rows of speakers ``index`` are
        standardised with: their own, as deployed (``train_clips``) and
        with the pooled standard deviation where asked."""
        mean, std = self._stats_or_prior(index)
        if self.train_clips or self.std == "pooled":
            prior_mean, prior_std = self.prior()
            if self.train_clips:
                mean = self._as_deployed(mean, std, prior_mean, index)
            if self.std == "pooled":
                std = prior_std.expand_as(mean)
        return mean, std

    def forward(self, x, speaker_index=None, speaker_ids=None,
                emotion_index=None):
        """``x`` (``[batch, *, input_size]``) standardised per speaker.

        In training, ``speaker_index`` (``[batch]``, training speakers)
        and, with ``n_emotions`` > 1, ``emotion_index`` update and use the
        running statistics; in evaluation, ``speaker_ids`` (strings) look
        up :meth:`set_eval_stats`.
        """
        shape = x.shape
        flat = x.reshape(shape[0], -1, shape[-1]).mean(1)
        if self.training:
            index = speaker_index.reshape(-1).to(self.mean.device)
            rows, cell = flat.detach().float(), index
            if self.n_emotions > 1:
                if emotion_index is None:
                    raise ValueError("SpeakerNorm(n_emotions > 1) needs "
                                     "emotion_index in training")
                emotion = emotion_index.reshape(-1).to(self.mean.device)
                known = emotion >= 0  # clips of no class update no cell
                rows = rows[known]
                cell = (index * self.n_emotions + emotion)[known]
            self._update(rows, cell)
            if self.balance == "additive" and self.n_emotions > 1:
                self._fitted = self._additive_stats()  # fitted once
            try:
                mean, std = self._train_stats(index)
            finally:
                self._fitted = None
        else:
            missing = [s for s in speaker_ids if s not in self.eval_stats]
            if missing:
                raise KeyError(f"no speaker statistics for {missing[:3]}; "
                               "call set_eval_stats first")
            mean = torch.stack([self.eval_stats[s][0] for s in speaker_ids])
            std = torch.stack([self.eval_stats[s][1] for s in speaker_ids])
        view = (shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],)
        return (x - mean.view(view).to(x.dtype)) / std.view(view).to(x.dtype)
