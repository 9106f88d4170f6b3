"""Neural building blocks: gradient reversal and its λ schedule, the
speaker head (one classifier per emotion), running and per-speaker
normalisation, and padded evaluation batches that encode each clip as if
alone (``exact_padding``)."""
