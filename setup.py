"""Installs speechbrain-grl, a SpeechBrain plugin for speaker-normalised
speech emotion recognition on self-supervised encoders."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent

setup(
    name="speechbrain_grl",
    version="0.2.0",
    description=(
        "Speaker-adversarial (GRL, TAP, SNP) speech emotion recognition "
        "on SSL encoders for SpeechBrain"
    ),
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["speechbrain_grl", "speechbrain_grl.*"]),
    package_data={"speechbrain_grl.inference": ["hparams/*.yaml"]},
    python_requires=">=3.9",
    install_requires=[
        "speechbrain>=1.1.2,<1.2",
        "torch>=2.7.1",
        "torchaudio>=2.7.1",
        "transformers>=4.40",
        "hyperpyyaml>=1.2",
        "pyyaml>=5.1",
        "ruamel.yaml>=0.17.28",
        "scipy>=1.4",
        "sentencepiece",
        "soundfile>=0.12",
        "scikit-learn>=1.3",
        "matplotlib>=3.7",
        "numpy",
        "tqdm",
    ],
    extras_require={
        # --precision int8 of the predict CLI runs fastest through ONNX
        # Runtime (PyTorch's dynamic quantisation otherwise).
        "onnx": ["onnxruntime>=1.17", "onnx>=1.15"],
        "test": ["pytest>=7", "pytest-xdist>=3.5", "ruff",
                 "onnxruntime>=1.17", "onnx>=1.15"],
    },
    entry_points={
        "console_scripts": [
            "speechbrain-grl-export = speechbrain_grl.inference.export:cli",
            "speechbrain-grl-predict = speechbrain_grl.inference.predict:cli",
            "speechbrain-grl-prepare = speechbrain_grl.dataio.prepare:cli",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Sound/Audio :: Speech",
    ],
)
