"""Neural building blocks: gradient reversal and its λ schedule, the
speaker head (one classifier per emotion), running and per-speaker
normalisation, padded evaluation batches that encode each clip as if
alone (``exact_padding``), and a front end that computes no gradient for
the waveform, with the CPU convolution kernels of its training steps
(``front_end``)."""
