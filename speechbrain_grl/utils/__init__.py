"""Infrastructure: the error base class, hparams checks, kill-safe
checkpoints, atomic JSON, data-loader options, threads, whether bf16 has
kernels, phase timing, the random state kept across evaluation, and a
process's start and end."""
