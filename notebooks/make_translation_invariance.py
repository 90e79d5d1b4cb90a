"""Writes notebooks/translation_invariance.ipynb (outputs empty): `python notebooks/make_...py`.

The notebook is generated so its text and code stay reviewable as plain Python here.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    (
        "md",
        """# How translation invariant is a CNN?

The seed notes say max pooling gives a CNN translation invariance, "but only over small
distances". This notebook shows what `experiments/translation_invariance.py` measured: a family
of otherwise identical CNNs (max / average / anti-aliased pooling, strided convolution, no
downsampling, flatten vs global-average-pooling head, SAME / VALID / circular padding, with and
without shift augmentation), several seeds each, evaluated on test images moved over a grid of
shifts (dy, dx). The digit moves on a zero canvas; it never leaves the image.

It loads the newest results under `runs/` (the full digits or MNIST config if you ran them);
when there are none it runs the smoke config (4 variants x 2 seeds, about a minute) into a
temporary directory. Smoke numbers are a sanity check, not a measurement.""",
    ),
    (
        "code",
        """import os
import sys
import tempfile
from pathlib import Path

ROOT = Path.cwd()
while not (ROOT / "pyproject.toml").exists() and ROOT != ROOT.parent:
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

from IPython.display import Image, display

from cnn_jax.results import read_json
from experiments import translation_invariance as ti
from experiments.configs import invariance_smoke

CANDIDATES = ["runs/invariance_mnist", "runs/invariance_digits", "runs/invariance_smoke"]
found = [Path(c) for c in CANDIDATES if (Path(c) / "results.json").exists()]
if found:
    workdir = found[0]
    results = read_json(workdir / "results.json")
else:
    workdir = Path(tempfile.mkdtemp(prefix="invariance_smoke_"))
    results = ti.run_experiment(invariance_smoke.get_config(), workdir)
results = read_json(workdir / "results.json")  # the JSON form, whichever way we got here
summary, exp = results["summary"], results["config"]["experiment"]
print(f"results from {workdir}: dataset {results['config']['dataset']['name']}, "
      f"seeds {results['seeds']}, shifts up to {exp['max_shift']} px ({exp['mode']} canvas)")""",
    ),
    (
        "md",
        """## Consistency per variant

**Consistency** (Zhang 2019, *Making Convolutional Networks Shift-Invariant Again*): the
probability that two random shifts of the same image, drawn uniformly from the grid, get the
same top-1 class. Computed exactly over the grid (sum over classes of the squared fraction of
shifts predicting each class), so there is no sampling noise; the intervals are 95% Student-t
intervals over seeds. Zhang reports 85-91% on ImageNet for standard architectures, and
anti-aliasing (BlurPool) raising it by one to a few points.

**1-pixel top-1 change** (Azulay & Weiss 2019): the probability that the predicted class
changes when the image moves by one pixel; they found it far from zero for ImageNet CNNs.""",
    ),
    (
        "code",
        """print(ti.format_table(summary, ("consistency", "p_top1_change_1px", "test_accuracy")))
display(Image(str(workdir / "consistency.png")))""",
    ),
    (
        "md",
        """### What the numbers say

The next cell compares variants with the baseline (max pooling, SAME padding, flatten head).
A difference counts as clear only when the two 95% intervals do not overlap; with few seeds
many differences are not clear, and that is a result too.""",
    ),
    (
        "code",
        """def compare(variant, baseline="max", metric="consistency"):
    if variant not in summary or baseline not in summary:
        return f"{variant}: not in this run"
    a, b = summary[variant][metric], summary[baseline][metric]
    diff = a["mean"] - b["mean"]
    clear = a["ci_low"] > b["ci_high"] or a["ci_high"] < b["ci_low"]
    verdict = ("clearly " + ("higher" if diff > 0 else "lower")) if clear else "not clearly different"
    return (f"{variant}: {metric} {a['mean']:.3f} vs {baseline} {b['mean']:.3f} "
            f"({diff:+.3f}): {verdict}")

for variant in ["max_blur", "strided_blur", "gap", "max_blur_gap", "avg", "strided", "none",
                "valid", "circular", "augment"]:
    print(compare(variant))
print(compare("strided_blur", baseline="strided"))""",
    ),
    (
        "md",
        """## Accuracy as a function of the shift

Each curve is the test accuracy when every image is moved by the same shift, along the
diagonal (dy = dx) and horizontally. A network that only learned centred digits loses
accuracy as the digit moves; shift augmentation and global average pooling flatten the curve.
The maps show the whole (dy, dx) grid.""",
    ),
    (
        "code",
        """display(Image(str(workdir / "accuracy_vs_shift.png")))
display(Image(str(workdir / "accuracy_maps.png")))""",
    ),
    (
        "md",
        """## Where in the network is shift equivariance lost?

For each layer, the equivariance error is ||f(shift(x)) - shift'(f(x))|| / ||shift'(f(x))||:
shift' moves the layer's map by the input shift divided by the layer's cumulative stride.
Shifts that are multiples of the stride land on the layer's grid (*aligned*); the others fall
between its pixels (*off-grid*, compared with a linearly interpolated shift). Convolutions
are equivariant up to border effects, so the error is near zero before the first pooling on
aligned shifts; subsampling breaks it for off-grid shifts, which is the aliasing Zhang 2019
blurs away. Kayhan & van Gemert 2020 (*On Translation Invariance in CNNs*) show that zero
padding lets a CNN learn absolute position from the borders, which circular padding removes.
The right panel shows how much the globally averaged features change (cosine similarity).""",
    ),
    (
        "code",
        """display(Image(str(workdir / "equivariance_by_depth.png")))
for run in results["runs"]:
    if run["seed"] == results["seeds"][0]:
        cells = [f"{r['layer']}: {r['error_off_grid'] if r['error_off_grid'] is not None else float('nan'):.3f}"
                 for r in run["layers"]]
        print(f"{run['variant']:<14} off-grid error  " + ", ".join(cells))""",
    ),
    (
        "md",
        """## The two dots

The seed notes' picture: two dots some distance apart, pooled 2x2 again and again, until they
become one blob. The dots count as distinguishable while the map keeps two peaks with a valley
between them. Every position of the pair relative to the pooling grid is tried; the right panel
gives the number of poolings until they merge (mean, min-max over positions). Dots 2^k pixels
apart merge after k max poolings: after k poolings the network cannot tell where within a
2^k-pixel cell a feature was, which is exactly the "invariance over small distances".""",
    ),
    (
        "code",
        """display(Image(str(workdir / "two_dots.png")))
for row in results["two_dots"]:
    print(f"{row['kind']:<9} distance {row['distance']:>3}: merged after "
          f"{row['min']}-{row['max']} poolings (mean {row['mean']})")""",
    ),
]


def build() -> nbformat.NotebookNode:
    """The notebook with empty outputs."""
    nb = new_notebook()
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


if __name__ == "__main__":
    path = Path(__file__).with_name("translation_invariance.ipynb")
    nbformat.write(build(), path)
    print(f"wrote {path}")
