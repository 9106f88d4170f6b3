"""The adversary's speaker classifier, optionally one per emotion.

When training speakers carry an emotion shortcut (each says one emotion
more often), an unconditional speaker classifier can recognise the
speaker *through the emotion*: knowing that an utterance is angry already
narrows it to the speakers who are often angry. An adversary against that
classifier then removes emotion along with the voice, and the emotion
classifier collapses. A classifier per emotion (``per_emotion=True``)
only has the voice left to go on: it asks "which of the speakers who said
*this emotion* said it", so the encoder is pushed to forget speaker
information that the emotion does not explain, P(z | emotion, speaker) =
P(z | emotion), and no more.
"""

import torch

from speechbrain_grl.nnet.running_norm import RunningNorm

__all__ = ["SpeakerHead"]


class SpeakerHead(torch.nn.Module):
    """MLP speaker classifier; with ``per_emotion``, one output layer per
    emotion class, chosen by the utterance's (true) emotion.

    Arguments
    ---------
    input_size : int
        Embedding size.
    n_speakers : int
        Output classes (training speakers).
    n_emotions : int
        Emotion classes (used with ``per_emotion``).
    per_emotion : bool
        Condition the classifier on the emotion label.
    hidden_size : int, optional
        Hidden layer size (default: ``input_size``); 0: no hidden layer,
        a linear classifier (what a linear emotion head could exploit).
    normalize : str or bool
        ``"center"``: subtract the running mean of the input first (the
        embedding's common offset otherwise stalls the head, and the
        gradient sent back to the encoder keeps its scale);
        ``"standardize"`` (or True): divide by the running standard
        deviation too, which scales that gradient by 1/std per dimension;
        ``"none"`` (or False): neither.

    Example
    -------
    >>> head = SpeakerHead(8, n_speakers=3, n_emotions=4)
    >>> emb = torch.randn(5, 1, 8)
    >>> head(emb, torch.tensor([0, 1, 2, 3, 0])).shape
    torch.Size([5, 1, 3])
    >>> SpeakerHead(8, 3, 4, per_emotion=False)(emb).shape
    torch.Size([5, 1, 3])
    """

    def __init__(self, input_size, n_speakers, n_emotions=4,
                 per_emotion=True, hidden_size=None, normalize="center"):
        super().__init__()
        hidden = input_size if hidden_size is None else int(hidden_size)
        self.n_speakers = int(n_speakers)
        self.blocks = int(n_emotions) if per_emotion else 1
        if normalize is True:
            normalize = "standardize"
        if normalize not in ("center", "standardize", "none", False, None):
            raise ValueError(f"normalize={normalize!r}: use center, "
                             "standardize or none")
        self.norm = None
        if normalize in ("center", "standardize"):
            self.norm = RunningNorm(input_size,
                                    scale=normalize == "standardize")
        if hidden > 0:
            self.hidden = torch.nn.Sequential(
                torch.nn.Linear(input_size, hidden), torch.nn.LeakyReLU())
        else:
            self.hidden = torch.nn.Identity()
        self.out = torch.nn.Linear(hidden or input_size,
                                   self.n_speakers * self.blocks)

    @property
    def per_emotion(self):
        """True when there is one output layer per emotion."""
        return self.blocks > 1

    def forward(self, x, emotion=None):
        """Speaker logits (last dimension ``n_speakers``) of ``x``.

        ``emotion`` (``[batch]`` class indices) is required with
        ``per_emotion``; ``x`` is ``[batch, ..., input_size]``.
        """
        if self.norm is not None:
            x = self.norm(x)
        logits = self.out(self.hidden(x))
        if self.blocks == 1:
            return logits
        if emotion is None:
            raise ValueError("a per-emotion speaker head needs the emotion")
        shape = logits.shape[:-1] + (self.blocks, self.n_speakers)
        logits = logits.reshape(shape)
        index = emotion.reshape((-1,) + (1,) * (logits.dim() - 1))
        index = index.expand(shape[:-2] + (1, self.n_speakers))
        return logits.gather(-2, index).squeeze(-2)
