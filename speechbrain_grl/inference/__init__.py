"""Deployment: export to SpeechBrain's stock ``EncoderClassifier`` and the
``speechbrain-grl-predict`` command."""
