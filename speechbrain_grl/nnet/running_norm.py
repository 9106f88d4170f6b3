"""Feature standardisation with running statistics, at any batch size.

The speaker head reads utterance embeddings whose dimensions share a large
common offset and vary little between speakers; an MLP on them learns the
speaker slowly, while a probe on standardised features finds it at once.
Batch normalisation would fix that but fails on one-utterance batches,
which dynamic batching produces. This layer standardises with running
estimates of the mean and the second moment instead, so it works for any
batch size. Under DDP the batch statistics are summed over all processes
first, so N processes with B utterances each normalise exactly as one
process with N·B would.
"""

import torch
import torch.distributed as dist

__all__ = ["RunningNorm"]


class RunningNorm(torch.nn.Module):
    """Standardises the last dimension with running mean and variance.

    In training, the statistics first absorb the batch (exponential moving
    average of the mean and of the second moment; the first batch sets
    them; under DDP the batch is the global one), then normalise it; in
    evaluation they are fixed. No affine parameters: gradients pass
    through scaled by 1/std.

    Arguments
    ---------
    input_size : int
        Size of the last dimension.
    momentum : float
        Weight of each new batch in the running estimates.
    eps : float
        Added to the variance.
    scale : bool
        False: centre only (subtract the running mean), which leaves the
        gradient that flows back unscaled.

    Example
    -------
    >>> norm = RunningNorm(2, momentum=0.5)
    >>> x = torch.tensor([[[1.0, 10.0]], [[3.0, 30.0]]])  # [B, 1, C]
    >>> norm(x).squeeze(1)
    tensor([[-1.0000, -1.0000],
            [ 1.0000,  1.0000]])
    >>> norm(torch.tensor([[[2.0, 20.0]]])).shape  # one utterance works
    torch.Size([1, 1, 2])
    """

    def __init__(self, input_size, momentum=0.05, eps=1e-5, scale=True):
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.scale = scale
        self.register_buffer("mean", torch.zeros(input_size))
        self.register_buffer("sq_mean", torch.ones(input_size))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        # Whether no batch was absorbed yet, kept on the host so that a
        # training step does not wait for the device to read ``count``;
        # None after a load: read ``count`` once.
        self._first = True

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._first = None

    def forward(self, x):
        """Standardises ``x``, whose last dimension is ``input_size``."""
        if self.training:
            with torch.no_grad():
                flat = x.detach().reshape(-1, x.shape[-1]).float()
                n = flat.new_full((1,), flat.shape[0])
                sums = torch.cat([flat.sum(0), (flat**2).sum(0), n])
                if dist.is_available() and dist.is_initialized():
                    dist.all_reduce(sums)
                size = x.shape[-1]
                mean = sums[:size] / sums[-1]
                sq = sums[size:2 * size] / sums[-1]
                if self._first is None:
                    self._first = bool(self.count == 0)
                w = 1.0 if self._first else self.momentum
                self._first = False
                self.mean.mul_(1 - w).add_(mean, alpha=w)
                self.sq_mean.mul_(1 - w).add_(sq, alpha=w)
                self.count += 1
        if not self.scale:
            return x - self.mean
        var = (self.sq_mean - self.mean**2).clamp_min(0.0)
        return (x - self.mean) / torch.sqrt(var + self.eps)
