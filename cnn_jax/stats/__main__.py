"""``python -m cnn_jax.stats plan``: the design that detects an effect, before or after a study.

Design question (effects and standard deviations in percentage points):
  plan --effect 0.5 --seed-sd 0.4 --image-sd 3 --residual-sd 10 --seeds 5 --images 10000 --family 20
A study's record (one line per claim of its results.json "claims" list):
  plan --record results/<study>
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnn_jax.stats.power import VarianceComponents, design_line, plan_claims

PROG = "python -m cnn_jax.stats"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, naming the flag (argparse's text does)
        self.exit(2, f"{self.prog}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plan = sub.add_parser(
        "plan",
        help="power: the seeds x images that detect an effect",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    plan.add_argument("--record", help="study folder (or its results.json) to plan every claim of")
    pt = "(percentage points)"
    plan.add_argument("--effect", type=float, help=f"effect to detect {pt}")
    plan.add_argument("--seed-sd", type=float, help=f"seed sd of paired differences {pt}")
    plan.add_argument("--image-sd", type=float, help=f"image sd of paired differences {pt}")
    plan.add_argument("--residual-sd", type=float, help=f"seed x image residual sd {pt}")
    plan.add_argument("--seeds", type=int, help="seeds of the design (images are counted here)")
    plan.add_argument("--images", type=int, help="test images of the design (seeds counted here)")
    plan.add_argument("--family", type=int, default=1, help="Holm family size (default 1)")
    plan.add_argument("--alpha", type=float, default=0.05, help="family-wise level (0.05)")
    plan.add_argument("--power", type=float, default=0.8, help="power to reach (0.8)")
    plan.add_argument("--max-seeds", type=int, default=1000, help="seed cap (1000)")
    return p


DESIGN_FLAGS = ("effect", "seed_sd", "image_sd", "residual_sd", "seeds", "images")


def _design(args) -> list[str]:
    missing = [f"--{f.replace('_', '-')}" for f in DESIGN_FLAGS if getattr(args, f) is None]
    if missing:
        raise ValueError(f"{missing[0]}: missing; give {' '.join(missing)} (or --record)")
    for flag, v in (("--seeds", args.seeds), ("--images", args.images)):
        if v < 2:
            raise ValueError(f"{flag}: {v}; allowed: an integer >= 2")
    if args.family < 1:
        raise ValueError(f"--family: {args.family}; allowed: an integer >= 1")
    if not (0 < args.alpha < args.power < 1):
        raise ValueError(
            f"--alpha, --power: {args.alpha}, {args.power}; need 0 < alpha < power < 1"
        )
    if args.effect == 0:
        raise ValueError("--effect: 0; allowed: a nonzero effect in percentage points")
    sds = {f: getattr(args, f) for f in ("seed_sd", "image_sd", "residual_sd")}
    for f, v in sds.items():
        if v < 0:
            raise ValueError(f"--{f.replace('_', '-')}: {v}; allowed: a standard deviation >= 0")
    c = VarianceComponents(
        sds["seed_sd"] ** 2, sds["image_sd"] ** 2, sds["residual_sd"] ** 2, args.seeds, args.images
    )
    line = design_line(
        c, args.effect, seeds=args.seeds, images=args.images, family_size=args.family,
        alpha=args.alpha, power=args.power, max_seeds=args.max_seeds,
    )  # fmt: skip
    return [line]


def _record(where: str, args) -> list[str]:
    path = Path(where)
    path = path / "results.json" if path.suffix != ".json" else path
    if not path.is_file():
        raise ValueError(f"--record: {path} not found; pass a study folder under results/")
    try:
        claims = json.loads(path.read_text(encoding="utf-8")).get("claims")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"--record: {path} is not a JSON object ({e})") from None
    if not (isinstance(claims, list) and claims and all(isinstance(c, dict) for c in claims)):
        raise ValueError(
            f"--record: {path} has no 'claims' list (claims-engine schema); re-analyse the study"
        )
    try:
        return plan_claims(claims, power=args.power, max_seeds=args.max_seeds)
    except ValueError as e:
        raise ValueError(f"--record: {path}: {e}") from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        lines = _record(args.record, args) if args.record else _design(args)
    except ValueError as e:
        print(f"{PROG} plan: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
