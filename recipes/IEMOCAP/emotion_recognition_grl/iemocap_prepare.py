"""Prepare IEMOCAP manifests for the GRL emotion recognition recipe.

Re-exports :func:`speechbrain_grl.dataio.iemocap.prepare_iemocap` for
``train.py`` and runs as a script::

    python iemocap_prepare.py --data_folder D --save_folder S \\
        [--split session --test_session 5 | --split random] [--seed 1234]
"""

import argparse
import logging
import pathlib
import sys

try:
    from speechbrain_grl.dataio.iemocap import IEMOCAPError, prepare_iemocap
except ImportError:  # running from a source checkout
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3]))
    from speechbrain_grl.dataio.iemocap import IEMOCAPError, prepare_iemocap

__all__ = ["prepare_iemocap"]


def main(argv=None):
    """Parse arguments, prepare the manifests, return an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_folder", required=True)
    parser.add_argument("--save_folder", required=True)
    parser.add_argument("--split", default="session",
                        choices=["session", "speaker", "random"])
    parser.add_argument("--test_session", type=int, default=5)
    parser.add_argument("--test_speaker", default=None)
    parser.add_argument("--valid_ratio", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--sessions", type=int, nargs="+",
                        default=[1, 2, 3, 4, 5])
    parser.add_argument("--valid_from", default=None,
                        choices=["held_out_speakers", "training_speakers"])
    parser.add_argument("--min_duration", type=float, default=0.05)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        out = prepare_iemocap(
            args.data_folder, args.save_folder, split=args.split,
            test_session=args.test_session, test_speaker=args.test_speaker,
            valid_ratio=args.valid_ratio, seed=args.seed,
            sessions=args.sessions, valid_from=args.valid_from,
            min_duration=args.min_duration)
    except (IEMOCAPError, OSError) as err:
        print(f"iemocap_prepare: error: {err}", file=sys.stderr)
        return 2
    counts = " ".join(f"{k}={len(v)}" for k, v in out.items())
    print(f"prepared IEMOCAP {counts} (split={args.split}) "
          f"in {args.save_folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
