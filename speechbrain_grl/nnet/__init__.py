"""Neural building blocks: gradient reversal and its λ schedule, the
speaker head (one classifier per emotion), running and per-speaker
normalisation."""
