"""Losses: 1 − CCC over valence, arousal, dominance, and the weights that
balance a loss over (speaker, emotion) cells.

The concordance correlation coefficient (Lin, 1989) of a batch,

    CCC = 2 cov(p, t) / (var(p) + var(t) + (mean(p) − mean(t))²),

with population (biased) moments, is 1 for a perfect prediction and 0 for
a constant one. It is computed in float32 even under autocast: half
precision loses the small variances of a batch.
"""

import torch

__all__ = ["ccc_loss", "cell_weights"]

EPS = 1e-8


def _as_rows(x, name):
    """``x`` as ``[batch, dims]`` (a ``[batch, 1, dims]`` is squeezed).

    Arguments
    ---------
    x : torch.Tensor
        ``[batch, dims]`` or ``[batch, 1, dims]``.
    name : str
        What ``x`` is, for the error message.

    Returns
    -------
    torch.Tensor
        ``[batch, dims]``.

    Example
    -------
    >>> _as_rows(torch.zeros(4, 1, 3), "pred").shape
    torch.Size([4, 3])
    """
    if x.dim() == 3 and x.shape[1] == 1:
        x = x.squeeze(1)
    if x.dim() != 2:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected "
                         "[batch, dims] or [batch, 1, dims]")
    return x


def ccc_loss(pred, target, weights=(1.0, 1.0, 1.0), lengths=None):
    """The weighted mean over dimensions of 1 − CCC over the batch.

    Arguments
    ---------
    pred : torch.Tensor
        Predictions, ``[batch, 3]`` or ``[batch, 1, 3]``.
    target : torch.Tensor
        Targets, same shape as ``pred``.
    weights : sequence of float
        One weight per dimension (valence, arousal, dominance); the mean
        is ``sum(w · (1 − CCC)) / sum(w)``.
    lengths : torch.Tensor, optional
        Relative lengths, as SpeechBrain passes them to losses; unused:
        one target per utterance has no padding to mask.

    Returns
    -------
    torch.Tensor
        A float32 scalar in [0, 2], differentiable with respect to
        ``pred``. The denominator gets ``1e-8`` so that a constant batch
        gives a loss of 1 rather than NaN.

    Example
    -------
    >>> t = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.9, 0.4], [0.8, 0.4, 0.6]])
    >>> round(ccc_loss(t.clone(), t).item(), 4)  # perfect
    0.0
    >>> ccc_loss(torch.full_like(t, 0.5), t).item()  # constant
    1.0
    """
    del lengths  # utterance-level targets: nothing to mask
    pred = _as_rows(pred, "pred")
    target = _as_rows(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target "
                         f"{tuple(target.shape)} differ in shape")
    w = torch.as_tensor(weights, dtype=torch.float32, device=pred.device)
    if w.dim() != 1 or w.numel() != pred.shape[1]:
        raise ValueError(f"{w.numel()} weights for {pred.shape[1]} "
                         "dimensions")
    with torch.autocast(device_type=pred.device.type, enabled=False):
        p, t = pred.float(), target.float()
        mean_p, mean_t = p.mean(dim=0), t.mean(dim=0)
        dp, dt = p - mean_p, t - mean_t
        var_p = (dp * dp).mean(dim=0)
        var_t = (dt * dt).mean(dim=0)
        cov = (dp * dt).mean(dim=0)
        ccc = 2 * cov / (var_p + var_t + (mean_p - mean_t) ** 2 + EPS)
        return ((1 - ccc) * w).sum() / w.sum()


def cell_weights(counts):
    """Weights ``1 / count`` of each (speaker, emotion) cell of ``counts``
    (``[n_speakers, n_emotions]`` training utterances), normalised to
    mean 1 per utterance: every speaker counts equally within an emotion,
    and a weighted loss's plain mean stays unbiased.

    Example
    -------
    >>> w = cell_weights(torch.tensor([[3.0, 1.0], [1.0, 0.0]]))
    >>> w
    tensor([[0.5556, 1.6667],
            [1.6667, 0.0000]])
    >>> float((w * torch.tensor([[3.0, 1.0], [1.0, 0.0]])).sum() / 5)
    1.0
    """
    weights = torch.where(counts > 0, 1.0 / counts.clamp_min(1), 0.0)
    return weights * counts.sum() / (weights * counts).sum()
