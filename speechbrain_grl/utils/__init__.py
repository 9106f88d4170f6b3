"""Infrastructure: the error base class, hparams checks, kill-safe
checkpoints, atomic JSON, data-loader options, threads, phase timing and
the random state kept across evaluation."""
