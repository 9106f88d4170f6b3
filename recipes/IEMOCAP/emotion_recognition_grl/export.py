#!/usr/bin/env python3
"""Exports a trained run for SpeechBrain's stock EncoderClassifier.

> python export.py --from results/demo_spknorm/1986 --to exported/demo

The folder then loads with no plugin installed:
> EncoderClassifier.from_hparams(source="exported/demo", savedir=tmp)
"""

from speechbrain_grl.inference.export import main

if __name__ == "__main__":
    main()
