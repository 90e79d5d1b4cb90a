"""Writes notebooks/cnn_anatomy.ipynb (outputs empty): `python notebooks/make_cnn_anatomy.py`.

The notebook is generated so its text and code stay reviewable as plain Python here.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    (
        "md",
        """# CNN anatomy: the seed notes' four questions, answered by running code

The seed notes end with four questions. Each section below answers one with a computation you
can rerun, then the notebook shows what the experiments measured:

1. Why convolve RGB images (multi-channel kernels)?
2. Why an activation after a convolution (linear collapse)?
3. Why a dot product (im2col + one matrix product)?
4. What is max pooling with stride 1 for in detection (peak finding / NMS)?

Then: the kernel-size / stride / padding / depth study (`experiments/hyperparameters.py`), the
activation study (`experiments/activations.py`) and feature-map pictures
(`experiments/feature_maps.py`). Each loads full results from `runs/` when they are there, and
otherwise runs the smoke config into a temporary directory: smoke numbers check the pipeline,
they are not measurements.""",
    ),
    (
        "code",
        """import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path.cwd()
while not (ROOT / "pyproject.toml").exists() and ROOT != ROOT.parent:
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

import jax
import jax.numpy as jnp
import numpy as np
from IPython.display import Image, Markdown, display

from cnn_jax import im2col, linear_collapse, peaks, visualize
from cnn_jax.results import read_json
from tests import naive

TMP = Path(tempfile.mkdtemp(prefix="cnn_anatomy_"))
rng = np.random.default_rng(0)
print(f"jax {jax.__version__} on {jax.default_backend()}, {os.cpu_count()} CPU cores")""",
    ),
    (
        "md",
        """## 1. Why convolve RGB images? A colour kernel sums one 2-D convolution per channel

A conv layer's kernel has shape `[kh, kw, C_in, C_out]`: for an RGB input each filter has a
separate `kh x kw` slice for R, G and B. The layer convolves each channel with its own slice
and **adds the three results** (plus a bias). Checked numerically on a random 12x12 RGB image
and 4 filters of 3x3x3:""",
    ),
    (
        "code",
        """x_bhwc = jnp.asarray(rng.normal(size=(1, 12, 12, 3)), jnp.float32)
kernel_hwio = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)
together = im2col.conv_direct(x_bhwc, kernel_hwio)  # one multi-channel convolution
per_channel = [
    im2col.conv_direct(x_bhwc[..., c : c + 1], kernel_hwio[:, :, c : c + 1, :]) for c in range(3)
]
summed = per_channel[0] + per_channel[1] + per_channel[2]
print("output shape", together.shape, "| max |multi-channel - sum of per-channel|:",
      float(jnp.max(jnp.abs(together - summed))))""",
    ),
    (
        "md",
        """Because each channel has its own weights, a filter can weigh colours differently: it
can respond to *colour contrast*, which no filter on a grey image can. Below, two hand-made
3x3x3 filters on an image whose left half is red and right half green, with equal
brightness: the grey image (mean of R, G, B) is flat, so a luminance edge filter sees
nothing, while a red-minus-green opponent edge filter fires at the border.""",
    ),
    (
        "code",
        """img = np.zeros((1, 10, 10, 3), np.float32)
img[:, :, :5, 0] = 1.0  # red left half
img[:, :, 5:, 1] = 1.0  # green right half
edge = np.array([[-1, 0, 1]] * 3, np.float32)  # horizontal gradient
luminance_edge = np.stack([edge / 3] * 3, axis=2)[..., None]  # same on R, G, B
opponent_edge = np.stack([-edge, edge, 0 * edge], axis=2)[..., None]  # R - G contrast
grey = img.mean(axis=-1, keepdims=True)
for name, k in [("luminance edge", luminance_edge), ("red-green edge", opponent_edge)]:
    response = im2col.conv_direct(jnp.asarray(img), jnp.asarray(k))
    print(f"{name:15s} max |response| = {float(jnp.max(jnp.abs(response))):.2f}")
print(f"grey image: min {grey.min():.3f}, max {grey.max():.3f} (no edge to find)")
_, picture = visualize.save_filter_grid(np.concatenate([luminance_edge, opponent_edge], -1),
                                        TMP / "colour_filters.png", "hand-made colour filters")
display(Image(str(TMP / "colour_filters.png")))""",
    ),
    (
        "md",
        """**What colour filters learn** needs a colour dataset. None can be downloaded here
(the project's offline datasets, digits / shapes / MNIST / Fashion-MNIST, are grey), so this
cell shows learned first-layer filters only if you trained a colour run and point
`CNN_JAX_COLOUR_RUN` at its directory (e.g. CIFAR-10 prepared as a TFDS dataset, see
`cnn_jax/datasets`). For grey inputs, section 6 shows the learned filters.""",
    ),
    (
        "code",
        """colour_run = os.environ.get("CNN_JAX_COLOUR_RUN")
if colour_run and (Path(colour_run) / "config.json").exists():
    from cnn_jax.runs import load_run
    from experiments.feature_maps import first_kernel

    run = load_run(colour_run)
    visualize.save_filter_grid(first_kernel(run.variables["params"]), TMP / "learned.png",
                               f"learned filters of {colour_run}")
    display(Image(str(TMP / "learned.png")))
else:
    print("No colour run given (set CNN_JAX_COLOUR_RUN to a trained RGB run directory).")""",
    ),
    (
        "md",
        """## 2. Why an activation after a convolution? Without one, the stack collapses

Two convolutions with nothing in between are one convolution. For kernels of size k1, k2
and strides s1, s2 the single equivalent kernel is the **full convolution** of the two
(the second dilated by s1): size `k1 + s1 (k2 - 1)`, stride `s1 s2`, with the channel
dimensions multiplied through and the biases carried (`b1 @ sum(K2) + b2`).
`cnn_jax.linear_collapse.compose` builds it; here for three layers of random weights:""",
    ),
    (
        "code",
        """stack = [
    linear_collapse.make_layer(rng.normal(size=(3, 3, 3, 8)), rng.normal(size=8), stride=1),
    linear_collapse.make_layer(rng.normal(size=(3, 3, 8, 8)), rng.normal(size=8), stride=2),
    linear_collapse.make_layer(rng.normal(size=(5, 5, 8, 4)), rng.normal(size=4), stride=1),
]
one = linear_collapse.compose(stack)
print(f"3 layers (3x3 s1, 3x3 s2, 5x5 s1) -> one {one.kernel_size} conv, stride {one.stride}, "
      f"{one.kernel_hwio.shape[2]} -> {one.kernel_hwio.shape[3]} channels")
x_bhwc = jnp.asarray(rng.normal(size=(2, 24, 24, 3)), jnp.float32)
for mode in ("VALID", "CIRCULAR"):
    a = linear_collapse.apply_stack(stack, x_bhwc, mode)
    b = linear_collapse.apply_conv(one, x_bhwc, mode)
    diff, scale = float(jnp.max(jnp.abs(a - b))), float(jnp.max(jnp.abs(a)))
    print(f"{mode:8s} padding: output {a.shape}, max |stack - one conv| = {diff:.1e} "
          f"(outputs up to {scale:.0f})")""",
    ),
    (
        "md",
        """With **SAME zero padding** the equality breaks at the border: the stack pads every
intermediate map with zeros, while the single conv sees the real neighbouring pixels (and
no bias) there. The interior still matches exactly:""",
    ),
    (
        "code",
        """same_stack = [linear_collapse.make_layer(s.kernel_hwio, s.bias_o, 1) for s in stack]
same_one = linear_collapse.compose(same_stack)
y = x_bhwc
for layer in same_stack:
    y = im2col.conv_direct(y, jnp.asarray(layer.kernel_hwio, jnp.float32),
                           jnp.asarray(layer.bias_o, jnp.float32), 1, "SAME")
z = im2col.conv_direct(x_bhwc, jnp.asarray(same_one.kernel_hwio, jnp.float32),
                       jnp.asarray(same_one.bias_o, jnp.float32), 1, "SAME")
diff_hw = np.asarray(jnp.max(jnp.abs(y - z), axis=(0, 3)))
b = (same_one.kernel_size[0] - 1) // 2
print(f"max difference: interior {diff_hw[b:-b, b:-b].max():.1e}, whole map {diff_hw.max():.1f}")
print("rows of |difference| > 1e-3 (1 = differs):")
print((diff_hw > 1e-3).astype(int))""",
    ),
    (
        "md",
        """So depth buys nothing without a nonlinearity: a deep linear CNN is one convolution
(then a linear head: a linear classifier). The activation study below trains a 3-layer
linear CNN, the single 7x7 conv it collapses to, and the same 3 layers with ReLU, and
collapses each trained linear net into one conv with identical logits.

## 3. Why a dot product? A convolution is im2col + one matrix product

Each output pixel is the dot product of the kernel with the patch under it. `im2col` copies
every patch into a row, so the whole layer is one matrix product
`[B * H_out * W_out, kh * kw * C_in] @ [kh * kw * C_in, C_out]`:""",
    ),
    (
        "code",
        """x_bhwc = jnp.asarray(rng.normal(size=(2, 16, 16, 3)), jnp.float32)
kernel_hwio = jnp.asarray(rng.normal(size=(5, 5, 3, 8)), jnp.float32)
bias_o = jnp.asarray(rng.normal(size=8), jnp.float32)
patches = im2col.im2col(x_bhwc, (5, 5), stride=1, padding="SAME")
print("patch matrix:", patches.shape, "-> rows x columns",
      (int(np.prod(patches.shape[:3])), patches.shape[3]))
direct = im2col.conv_direct(x_bhwc, kernel_hwio, bias_o, 1, "SAME")
matmul = im2col.conv_im2col(x_bhwc, kernel_hwio, bias_o, 1, "SAME")
loops = naive.conv2d(np.asarray(x_bhwc[0]), np.asarray(kernel_hwio), np.asarray(bias_o), 1,
                     im2col.explicit_pads((16, 16), (5, 5), 1, "SAME"))
print("max |im2col+matmul - XLA conv| =", float(jnp.max(jnp.abs(matmul - direct))))
print("max |im2col+matmul - python loops| =", float(np.max(np.abs(matmul[0] - loops))))
one_pixel = im2col.patch_dot(x_bhwc[0], kernel_hwio, 3, 4) + bias_o  # a literal dot product
print("one VALID pixel as a dot product matches:",
      bool(jnp.allclose(one_pixel, im2col.conv_direct(x_bhwc, kernel_hwio, bias_o)[0, 3, 4],
                        atol=1e-4)))""",
    ),
    (
        "md",
        """Speed of each path **on this machine** (jitted, median of repeats; the python-loop
reference only on the smallest case). im2col pays for copying each pixel `kh * kw` times;
XLA's native convolution avoids the copy. Timings depend on the machine and its load.""",
    ),
    (
        "code",
        """def median_ms(fn, *args, repeats=7):
    jax.block_until_ready(fn(*args))  # compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


direct_fn = jax.jit(lambda x, k: im2col.conv_direct(x, k, None, 1, "SAME"))
matmul_fn = jax.jit(lambda x, k: im2col.conv_im2col(x, k, None, 1, "SAME"))
rows = []
for batch, size, k, c_in, c_out in [(8, 16, 3, 1, 16), (32, 28, 3, 16, 32), (32, 28, 5, 16, 32)]:
    x = jnp.asarray(rng.normal(size=(batch, size, size, c_in)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(k, k, c_in, c_out)), jnp.float32)
    t_direct, t_matmul = median_ms(direct_fn, x, w), median_ms(matmul_fn, x, w)
    t_loops = "-"
    if size == 16:
        t0 = time.perf_counter()
        naive.conv2d(np.asarray(x[0]), np.asarray(w), np.zeros(c_out), 1, ((1, 1), (1, 1)))
        t_loops = f"{1000 * (time.perf_counter() - t0) * batch:.0f}"
    flops = 2 * batch * size * size * k * k * c_in * c_out
    rows.append(f"| {batch}x{size}x{size}x{c_in}, {k}x{k}, {c_out} filters | {t_direct:.2f} | "
                f"{t_matmul:.2f} | {t_loops} | {flops / t_direct / 1e6:.1f} |")
header = ("| input, kernel, filters | XLA conv ms | im2col + matmul ms "
          "| python loops ms (1 image x B) | XLA conv GFLOP/s |")
display(Markdown(header + "\\n|---|---|---|---|---|\\n" + "\\n".join(rows)))""",
    ),
    (
        "md",
        """## 4. Max pooling with stride 1 in detection: peak finding / non-maximum suppression

A detector that predicts a *heat map* of object centres (CenterNet, keypoint heads) needs
the local maxima of that map. Max pooling with **stride 1** and SAME padding keeps the map's
resolution, and `pooled == heat` is true exactly at pixels that are the maximum of their
neighbourhood. Keeping those above a threshold is non-maximum suppression in one op. A
stride-2 pool would halve the resolution and move the peaks.""",
    ),
    (
        "code",
        """centres = np.array([[8, 10], [20, 30], [30, 12], [12, 34]])
heat = peaks.gaussian_heat_map((40, 44), centres, sigma=2.5, amplitudes=[1.0, 0.8, 0.6, 0.9])
heat = heat + 0.05 * rng.random(heat.shape).astype(np.float32)  # detector noise
pooled = np.asarray(peaks.local_max_pool(heat, window=7))
found = peaks.find_peaks(heat, window=7, threshold=0.3)
print("heat map", heat.shape, "| stride-1 max pool", pooled.shape,
      "| stride-2 max pool", tuple(s // 2 for s in heat.shape))
print("true centres (strongest first):", centres[np.argsort([-1.0, -0.8, -0.6, -0.9])].tolist())
print("peaks found:                   ", found.tolist())
print("local maxima without a threshold (noise peaks too):",
      int(np.asarray(peaks.peak_mask(heat, 7, threshold=-1.0)).sum()))

from matplotlib.figure import Figure

fig = Figure(figsize=(10, 3.2))
axes = fig.subplots(1, 3)
axes[0].imshow(heat, cmap="magma"); axes[0].set_title("heat map")
axes[1].imshow(pooled, cmap="magma"); axes[1].set_title("max pool 7x7, stride 1")
axes[2].imshow(np.asarray(peaks.suppress(heat, 7)) > 0.3, cmap="gray")
axes[2].scatter(found[:, 1], found[:, 0], marker="x", color="red")
axes[2].set_title("kept: pooled == heat and > 0.3")
for ax in axes:
    ax.axis("off")
fig.savefig(TMP / "peaks.png")
display(Image(str(TMP / "peaks.png")))""",
    ),
    (
        "md",
        """## 5. Kernel size, stride, padding, depth: the seed's claims measured

`experiments/hyperparameters.py` trains plain ReLU CNNs (no pooling, flatten + dense head)
one factor at a time around 3x3 / stride 1 / SAME / 2 layers, plus depth 1-4 x kernel {3, 7}
x padding {VALID, SAME}, over seeds. Layer sides and receptive fields come from the formulas
(checked against the traced model); each claim gets a verdict from Welch's t-test over seeds
(or from the formula).""",
    ),
    (
        "code",
        """from experiments import hyperparameters
from experiments.configs import hyperparameters_smoke

found = [Path(p) for p in ("runs/hyperparameters", "runs/hyperparameters_smoke")
         if (Path(p) / "results.json").exists()]
hyper_dir = found[0] if found else TMP / "hyperparameters_smoke"
if not found:
    hyperparameters.run_experiment(hyperparameters_smoke.get_config(), hyper_dir)
hyper = read_json(hyper_dir / "results.json")
print(f"results from {hyper_dir}: {hyper['dataset']} {hyper['image_shape']}, "
      f"seeds {hyper['seeds']}, {hyper['epochs']} epochs")
display(Markdown((hyper_dir / "table.md").read_text()))
display(Markdown((hyper_dir / "claims.md").read_text()))
display(Image(str(hyper_dir / "hyperparameters.png")))""",
    ),
    (
        "md",
        """## 6. Activations: training speed, and linear collapse of trained networks

`experiments/activations.py`: one CNN (average pooling and a linear head, so the identity
activation makes it linear end to end) trained with each activation; the steps and seconds
(steady-state step time x steps, compile excluded) until the training accuracy of a logging
window reaches the target. Then the collapse variants.""",
    ),
    (
        "code",
        """from experiments import activations
from experiments.configs import activations_smoke

found = [Path(p) for p in ("runs/activations", "runs/activations_smoke")
         if (Path(p) / "results.json").exists()]
act_dir = found[0] if found else TMP / "activations_smoke"
if not found:
    activations.run_experiment(activations_smoke.get_config(), act_dir)
act = read_json(act_dir / "results.json")
print(f"results from {act_dir}: target {act['target_accuracy']:.0%} train accuracy, "
      f"{act['total_steps']} steps, seeds {act['seeds']}")
display(Markdown((act_dir / "speed.md").read_text()))
display(Image(str(act_dir / "activation_curves.png")))
display(Markdown((act_dir / "collapse.md").read_text()))
display(Markdown((act_dir / "claims.md").read_text()))""",
    ),
    (
        "md",
        """## 7. Feature maps: the CNN Explainer view

`experiments/feature_maps.py` shows a trained model's first-layer filters, the output of every
layer for a test image (each row one layer, each column a channel, with its receptive field),
and the test images that drive a channel of the last block most.""",
    ),
    (
        "code",
        """from experiments import feature_maps
from experiments.configs import feature_maps as feature_maps_config

maps_dir = Path("runs/feature_maps")
if not (maps_dir / "results.json").exists():
    maps_dir = TMP / "feature_maps"
    feature_maps.run_experiment(feature_maps_config.get_config(), maps_dir)
fm = read_json(maps_dir / "results.json")
print(f"{fm['model']} ({fm['source']}), test accuracy {fm.get('test_accuracy', float('nan')):.3f}")
display(Markdown((maps_dir / "receptive_field.md").read_text()))
for name in fm["files"]:
    display(Image(str(maps_dir / name)))""",
    ),
]


def build() -> nbformat.NotebookNode:
    """The notebook with empty outputs."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        new_markdown_cell(text) if kind == "md" else new_code_cell(text) for kind, text in CELLS
    ]
    return nb


if __name__ == "__main__":
    path = Path(__file__).with_name("cnn_anatomy.ipynb")
    nbformat.write(build(), path)
    print(f"wrote {path}")
