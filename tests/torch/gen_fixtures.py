#!/usr/bin/python3
"""Independent PyTorch reference values for tests/test_torch_reference.c and
tests/test_optim.c.

The C test compares the whole network (forward, loss, every gradient, the
BatchNorm moving statistics, three Adam steps) and the augmentation warp with
values computed here by a different implementation: PyTorch's conv,
batch-norm, pooling, linear and cross-entropy ops with autograd for the
gradients; numpy and torch.grid_sample for the warp. The fixtures are
committed, so the C test needs no Python.

Regenerate from the repository root with Debian's python3-torch and
python3-numpy (the pyenv `python3` on PATH lacks them):

    /usr/bin/python3 tests/torch/gen_fixtures.py [NAME...]

It is deterministic (fixed seeds; every reference value is computed in
float64 and stored rounded to float32, learning rates as float64) and
rewrites tests/fixtures/torch_* (only the NAMEs given, e.g. torch_optim).
It also runs the same graphs in float32 -- a second float32 implementation
standing in for the C one -- and asserts that run passes the C test's
tolerances (TOL_* below, the same numbers as in the C file; the warp has its
own there).

Keras-equivalent settings, in PyTorch terms:
- the C side's layouts: NCHW activations, conv weights (OC, C, K, K), dense
  weights (OUT, IN), flatten in (C, H, W) order;
- conv 3x3, stride 1, padding same; max-pool 2x2 stride 2;
- BatchNorm in training mode normalises with the batch mean and the *biased*
  variance over N*H*W (N for a dense input), eps 1e-3, as F.batch_norm does.
  The moving statistics are NOT PyTorch's running_var (which blends in the
  unbiased variance): they are computed here as Keras does,
  moving = 0.99 * moving + 0.01 * batch, with the biased variance;
- loss: mean softmax cross-entropy from the logits (F.cross_entropy);
- Adam by hand with Keras's epsilon placement (torch.optim.Adam puts eps on
  the bias-corrected v): m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
  w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), lr 1e-3, eps 1e-7.

Dropout is random, so training-mode comparisons run it as the identity: the
reduced networks' cfgs say `dropout 0`, and for the full network's
training-mode check the C test sets its dropout layers' rate to 0 (its
inference-mode check keeps the real rates; dropout is the identity there).

Conditioning. A float32 implementation differs from these values by rounding,
which must stay small next to the tolerances, so each reduced network's seed
is the first that avoids two traps: a ReLU input within 1e-6 (relative) of
zero (rounding could flip it and switch a gradient path), and, where Adam
steps follow, an analytically zero gradient (a conv or dense bias feeding
BatchNorm through a ReLU that is active for the whole batch: the gradient is
rounding noise, which Adam turns into full +-lr steps). Adam is still ill-conditioned where |g| is near its epsilon
scale, so each weight after three steps has its own tolerance (adam3tol.*):
1e-3 lr plus the largest change of its result when each step's non-zero
gradients move by TOL_GRAD of their tensor's largest (every sign pattern),
i.e. what a gradient that passes the gradient check may do to it.

Fixtures (float32 safetensors; labels and indices as exact float32 integers,
scalars as shape [1]). Parameter names: "<layer>.weight" and "<layer>.bias"
(conv2d, dense), "<layer>.gamma", "<layer>.beta", "<layer>.moving_mean",
"<layer>.moving_variance" (batchnorm), layers named as the C model names them
(conv2d, conv2d_1, batch_normalization, dense, ...).

torch_small.{cfg,safetensors}: the notebook network reduced (conv+relu,
  batchnorm, conv, maxpool, dropout, ... flatten, dense relu, dense softmax),
  4,430 parameters, batch 8:
    input (8,1,28,28), labels (8), init.<p> (parameters and statistics)
    logits, probs, loss       training-mode forward from init
    grad.<p>                  every parameter gradient of that loss
    step1.<stat>              moving statistics after that forward
    losses (3)                loss before each of three Adam steps (same batch)
    adam3.<p>, adam3tol.<p>   parameters after the three steps, and tolerance
    adam3.<stat>              moving statistics after the three forwards
torch_readme.{cfg,safetensors}: the README variant reduced (its dense block is
  dense relu -> batchnorm -> dropout: BatchNorm on a flat input), batch 8:
    input, labels, init.<p>, logits, probs, loss, grad.<p>, step1.<stat>
torch_full.{cfg,safetensors}: the notebook network itself (1,868,234
  parameters), batch 4. Its weights are not stored (7 MB): both sides make them
  with full_weights() below (an integer hash, exact in float32):
    input, labels
    infer.logits, infer.loss  inference mode (moving statistics)
    train.logits, train.loss  training mode, dropout identity
    train.<stat>              moving statistics after that forward
    gradidx.<p>, gradval.<p>  32 gradient entries per tensor (its 16 largest in
                              magnitude, 16 at random; all of a smaller one)
    gradnorm.<p>              L2 norm of the whole gradient tensor
torch_augment.safetensors: the training warp (src/train/augment.h):
    image (28,28)             bytes as float32 0..255
    params (K,4)              angle (degrees, counter-clockwise on screen), zx
                              (column scale), zy (row scale), flip: fm__aug
    warped (K,28,28)          expected output in [0,1]
  Keras's apply_affine_transform works in (row, col) coordinates, so its
  (theta, zx, zy) are (-angle, zy, zx) here: the same distribution for its
  symmetric random ranges. Computed by hand in numpy and with
  torch.grid_sample (bilinear, align_corners, border padding = edge repeat);
  the two must agree.
torch_optim.safetensors: the training recipes' building blocks, for
  tests/test_optim.c (tolerances TOL_OPT, TOL_SCHED, TOL_XENT below):
    opt.w0 (48), opt.grads (6,48)  parameters and each step's gradients: scales
                              1e-3..1, every 8th near AdamW's epsilon (1e-8.5..1e-6,
                              where Keras's and PyTorch's placements differ), one
                              zero on fresh moments
    opt.spans (S,2)           the decayed [begin, end) of the masked cases
    <case>.hyper (7)          beta1, beta2, eps, momentum, nesterov, weight_decay,
                              masked (decay on opt.spans only, else everywhere)
    <case>.lrs (6)            the rate of each step
    <case>.w (6,48)           weights after each step, from torch.optim itself
                              (Adam, AdamW, SGD; a masked case runs its pieces as
                              parameter groups with and without weight decay)
    <case>.m, <case>.v (48)   exp_avg / momentum_buffer and exp_avg_sq after the
                              steps, where torch keeps them
  cases (OPT_CASES): adam (torch.optim.Adam: AdamW's arithmetic without decay),
  adamw, adamw_mask (other betas and eps), sgd, sgd_momentum, sgd_nesterov,
  sgd_wd, sgd_nesterov_wd_mask;
    sched.<name>.cfg (8) F64  lr, warmup_steps, warmup_start, floor, pct_start,
                              div_factor, final_div_factor, anneal_linear
    sched.<name>.lr (T) F64   the rate of each of the T steps from torch's own
                              schedulers: LinearLR (warm-up), CosineAnnealingLR or
                              LinearLR (decay) chained by SequentialLR, OneCycleLR,
                              LambdaLR (constant); they must agree with the
                              formulas of src/train/schedule.h written out here
  schedules (SCHED_CASES): constant, warmup_constant, cosine, warmup_cosine,
  linear, warmup_linear, onecycle, onecycle_linear, onecycle_short (3 steps),
  onecycle_one (1 step);
    xent.logits (8,10), xent.labels (8), xent.smoothing (4: 0, 0.1, 0.25, 1)
    xent.probs (8,10)         softmax
    xent.loss (4), xent.grad (4,8,10)  F.cross_entropy(label_smoothing=s) and its
                              autograd gradient, checked here against Keras's
                              definition (target onehot*(1-s) + s/K)
"""

import itertools
import json
import math
import os
import struct
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures")

BN_MOMENTUM, BN_EPS = 0.99, 1e-3
ADAM_LR, ADAM_B1, ADAM_B2, ADAM_EPS = 1e-3, 0.9, 0.999, 1e-7
BATCH = 8  # reduced networks

# Tolerances of the C test, scale-relative: |a - b| <= TOL * max(1, max|b|)
# over a tensor (TOL_GRAD: * max|b| of the gradient tensor). Sized from the
# float32-vs-float64 errors this script prints, with a wide margin because
# the C kernels sum in other orders (and use FMA).
TOL_FWD = 2e-5    # logits, probs, loss, moving statistics after one forward
TOL_GRAD = 1e-4   # gradients: sums of up to N*H*W = 6272 products that cancel
TOL_STATS3 = 5e-5  # moving statistics after three Adam steps

# Layer lists: (kind, argument, activation), kinds as the cfg spells them.
SMALL = [("conv", 4, "relu"), ("batchnorm", None, None), ("conv", 4, "relu"), ("maxpool", 2, None),
         ("dropout", 0.0, None), ("conv", 6, "relu"), ("batchnorm", None, None), ("conv", 6, "relu"),
         ("maxpool", 2, None), ("dropout", 0.0, None), ("flatten", None, None),
         ("dense", 12, "relu"), ("dropout", 0.0, None), ("dense", 10, "softmax")]
README = SMALL[:11] + [("dense", 12, "relu"), ("batchnorm", None, None), ("dropout", 0.0, None),
                       ("dense", 10, "softmax")]
FULL = [("conv", 64, "relu"), ("batchnorm", None, None), ("conv", 64, "relu"), ("maxpool", 2, None),
        ("dropout", 0.25, None), ("conv", 128, "relu"), ("batchnorm", None, None),
        ("conv", 128, "relu"), ("maxpool", 2, None), ("dropout", 0.25, None),
        ("flatten", None, None), ("dense", 256, "relu"), ("dropout", 0.5, None),
        ("dense", 10, "softmax")]


def cfg_text(layers, title):
    """The model description the C side parses (src/model/cfg.c)."""
    lines = ["# %s (generated by tests/torch/gen_fixtures.py)" % title, "input 28 28 1"]
    for kind, arg, act in layers:
        if kind == "conv":
            lines.append("conv filters=%d kernel=3 stride=1 padding=same activation=%s" % (arg, act))
        elif kind == "batchnorm":
            lines.append("batchnorm momentum=0.99 eps=0.001")
        elif kind in ("maxpool", "dropout"):
            lines.append("%s %g" % (kind, arg))
        elif kind == "flatten":
            lines.append("flatten")
        else:
            lines.append("dense units=%d activation=%s" % (arg, act))
    return "\n".join(lines) + "\n"


class Net:
    """The network over explicit tensors named as the C model names them."""

    STEMS = {"conv": "conv2d", "batchnorm": "batch_normalization", "maxpool": "max_pooling2d",
             "dropout": "dropout", "flatten": "flatten", "dense": "dense"}

    def __init__(self, layers):
        self.layers = []  # (kind, name, arg, act)
        self.params = {}  # trainable shapes, in model order
        self.stats = {}   # moving mean / variance shapes
        counts = {}
        c, hw = 1, 28
        for kind, arg, act in layers:
            k = counts.get(kind, 0)
            counts[kind] = k + 1
            name = self.STEMS[kind] + ("_%d" % k if k else "")
            self.layers.append((kind, name, arg, act))
            if kind == "conv":
                self.params[name + ".weight"] = (arg, c, 3, 3)
                self.params[name + ".bias"] = (arg,)
                c = arg
            elif kind == "batchnorm":
                self.params[name + ".gamma"] = self.params[name + ".beta"] = (c,)
                self.stats[name + ".moving_mean"] = self.stats[name + ".moving_variance"] = (c,)
            elif kind == "maxpool":
                hw //= arg
            elif kind == "flatten":
                c, hw = c * hw * hw, 1
            elif kind == "dense":
                self.params[name + ".weight"] = (arg, c)
                self.params[name + ".bias"] = (arg,)
                c = arg

    def forward(self, x, p, stats, training, margins=None):
        """Logits and the moving statistics after this forward (updated in
        training mode). margins, when a list, gets each ReLU's smallest |input|
        relative to its largest."""
        new_stats = dict(stats)
        for kind, name, arg, act in self.layers:
            if kind == "conv":
                x = F.conv2d(x, p[name + ".weight"], p[name + ".bias"], stride=1, padding=1)
            elif kind == "dense":
                x = F.linear(x, p[name + ".weight"], p[name + ".bias"])
            elif kind == "batchnorm":
                mm, mv = stats[name + ".moving_mean"], stats[name + ".moving_variance"]
                if training:
                    dims = [0] + list(range(2, x.dim()))
                    bmean = x.detach().mean(dim=dims)
                    bvar = x.detach().var(dim=dims, unbiased=False)
                    new_stats[name + ".moving_mean"] = BN_MOMENTUM * mm + (1 - BN_MOMENTUM) * bmean
                    new_stats[name + ".moving_variance"] = BN_MOMENTUM * mv + (1 - BN_MOMENTUM) * bvar
                # clones: PyTorch's own running update (unbiased variance) is discarded
                x = F.batch_norm(x, mm.clone(), mv.clone(), p[name + ".gamma"], p[name + ".beta"],
                                 training=training, momentum=1 - BN_MOMENTUM, eps=BN_EPS)
            elif kind == "maxpool":
                x = F.max_pool2d(x, arg, arg)
            elif kind == "dropout":
                assert arg == 0.0 or not training, "training-mode dropout must be the identity"
            elif kind == "flatten":
                x = x.reshape(x.shape[0], -1)
            if act == "relu":
                if margins is not None:
                    margins.append(float(x.abs().min() / x.abs().max()))
                x = F.relu(x)
        return x, new_stats


def fan_limit(shape):
    """Glorot-uniform limit sqrt(6/(fan_in+fan_out)), as float32."""
    rf = shape[2] * shape[3] if len(shape) == 4 else 1
    return np.float32(math.sqrt(6.0 / ((shape[0] + shape[1]) * rf)))


def hash_uniform(tensor_index, n):
    """Uniform in [-1, 1) from an integer hash, exact in float32: murmur3's
    finaliser of i*0x9E3779B1 + (tensor+1)*0x85EBCA77 (mod 2^32), top 24 bits.
    The C test has the same few lines."""
    m = np.uint64(0xFFFFFFFF)
    h = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B1) + np.uint64((tensor_index + 1) * 0x85EBCA77)) & m
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & m
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & m
    h ^= h >> np.uint64(16)
    return (h >> np.uint64(8)).astype(np.float32) * np.float32(2.0 ** -23) - np.float32(1)


def full_weights(net):
    """The full network's parameters and statistics. Tensors are numbered in
    model order (a layer's weight or gamma, its bias or beta, then a
    batchnorm's moving mean and variance); every product is one rounding or by
    a power of two, so C makes the same float32 values:
      conv/dense weight: r * glorot limit      bias, beta, moving mean: r / 8
      gamma, moving variance: 1 + r / 4"""
    out, k = {}, 0
    for kind, name, _, _ in net.layers:
        if kind in ("conv", "dense"):
            shape = net.params[name + ".weight"]
            out[name + ".weight"] = (hash_uniform(k, int(np.prod(shape))) * fan_limit(shape)).reshape(shape)
            out[name + ".bias"] = hash_uniform(k + 1, shape[0]) * np.float32(0.125)
            k += 2
        elif kind == "batchnorm":
            n = net.params[name + ".gamma"][0]
            out[name + ".gamma"] = np.float32(1) + hash_uniform(k, n) * np.float32(0.25)
            out[name + ".beta"] = hash_uniform(k + 1, n) * np.float32(0.125)
            out[name + ".moving_mean"] = hash_uniform(k + 2, n) * np.float32(0.125)
            out[name + ".moving_variance"] = np.float32(1) + hash_uniform(k + 3, n) * np.float32(0.25)
            k += 4
    return out


def save_safetensors(path, tensors, f64=()):
    """float32 tensors (float64 for the names in f64) by hand: 8-byte
    little-endian header length, the JSON header padded with spaces to a
    multiple of 8, then the raw data."""
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(np.asarray(arr, dtype="<f8" if name in f64 else "<f4"))
        header[name] = {"dtype": "F64" if name in f64 else "F32",
                        "shape": list(a.shape) if a.ndim else [1],
                        "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def scale_err(a, b):
    """max |a - b| / max(1, max |b|): the error measure of TOL_FWD / TOL_STATS3."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


def grad_err(a, b):
    """max |a - b| / max |b|: the error measure of TOL_GRAD."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def train_step(net, x, y, p, stats, margins=None):
    logits, new_stats = net.forward(x, p, stats, True, margins)
    loss = F.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, list(p.values()))
    return logits, loss, dict(zip(p.keys(), grads)), new_stats


def adam_step(w, m, v, g, t):
    """Keras Adam step t on float64 numpy arrays: updates m, v in place and
    returns the new weights."""
    m += (g - m) * (1 - ADAM_B1)
    v += (g * g - v) * (1 - ADAM_B2)
    return w - ADAM_LR * math.sqrt(1 - ADAM_B2 ** t) / (1 - ADAM_B1 ** t) * m / (np.sqrt(v) + ADAM_EPS)


def keras_adam(w, gs):
    """Weights after Adam steps t = 1, 2, ... with gradients gs[t-1]."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(gs, 1):
        w = adam_step(w, m, v, g, t)
    return w


def adam_tolerance(w0, gs):
    """Per-element tolerance of the weights after Adam on gradients gs: 1e-3 lr
    plus the largest change when every step's gradients move by TOL_GRAD of
    their tensor's largest, over all sign patterns. Exact zeros stay: they
    come from dead ReLUs and unpicked max-pool inputs, exact in any
    implementation once no ReLU input is near zero."""
    ref = keras_adam(w0, gs)
    worst = np.zeros_like(ref)
    for signs in itertools.product((-1, 1), repeat=len(gs)):
        moved = [g + s * TOL_GRAD * np.abs(g).max() * (g != 0) for g, s in zip(gs, signs)]
        worst = np.maximum(worst, np.abs(keras_adam(w0, moved) - ref))
    return 1e-3 * ADAM_LR + worst


def synth_batch(rng, n):
    """Image-like bytes (smooth blobs over a noisy background) scaled to
    [0, 1], and random labels."""
    yy, xx = np.mgrid[0:28, 0:28]
    imgs = np.zeros((n, 1, 28, 28))
    for i in range(n):
        for _ in range(3):
            cy, cx, s = rng.uniform(6, 22), rng.uniform(6, 22), rng.uniform(3, 8)
            imgs[i, 0] += rng.uniform(100, 255) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
        imgs[i, 0] += rng.uniform(0, 30, (28, 28))
    return np.clip(np.rint(imgs), 0, 255) / 255.0, rng.integers(0, 10, n)


def random_init(net, rng):
    """Glorot-like weights, and biases, BatchNorm parameters and statistics
    away from their defaults so every path carries a non-trivial value."""
    init = {}
    for k, shape in net.params.items():
        if k.endswith(".weight"):
            init[k] = rng.uniform(-1, 1, shape) * float(fan_limit(shape))
        elif k.endswith(".gamma"):
            init[k] = rng.uniform(0.8, 1.2, shape)
        else:
            init[k] = rng.uniform(-0.1, 0.1, shape)
    for k, shape in net.stats.items():
        init[k] = rng.uniform(-0.1, 0.1, shape) if k.endswith("mean") else rng.uniform(0.8, 1.2, shape)
    return {k: np.float32(v) for k, v in init.items()}


def run_reduced(net, x_np, y_np, init, dtype, adam_steps, margins=None):
    """Forward/backward from init, then adam_steps Keras Adam steps on the
    same batch; everything the fixture stores, plus the per-step gradients."""
    x, y = torch.tensor(x_np, dtype=dtype), torch.tensor(y_np, dtype=torch.long)
    as_t = lambda keys, grad: {k: torch.tensor(init[k], dtype=dtype, requires_grad=grad) for k in keys}
    p, stats = as_t(net.params, True), as_t(net.stats, False)
    logits, loss, grads, stats1 = train_step(net, x, y, p, stats, margins)
    r = {"logits": logits, "probs": F.softmax(logits, 1), "loss": loss}
    r.update({"grad." + k: g for k, g in grads.items()})
    r.update({"step1." + k: s for k, s in stats1.items()})
    step_grads, losses = [], []
    if adam_steps:
        w = {k: init[k].astype(np.float64) for k in net.params}
        m = {k: np.zeros_like(v) for k, v in w.items()}
        v2 = {k: np.zeros_like(v) for k, v in w.items()}
        st = stats
        for t in range(1, adam_steps + 1):
            pt = {k: torch.tensor(w[k], dtype=dtype, requires_grad=True) for k in w}
            _, l, g, st = train_step(net, x, y, pt, st, margins)
            losses.append(float(l))
            g = {k: gk.detach().double().numpy() for k, gk in g.items()}
            step_grads.append(g)
            for k in w:
                w[k] = adam_step(w[k], m[k], v2[k], g[k], t)
                if dtype == torch.float32:  # weights kept in float32 between steps
                    w[k] = w[k].astype(np.float32).astype(np.float64)
        r["losses"] = torch.tensor(losses, dtype=torch.float64)
        r.update({"adam3." + k: torch.tensor(v) for k, v in w.items()})
        r.update({"adam3." + k: s for k, s in st.items()})
    return {k: np.float32(v.detach().numpy()) for k, v in r.items()}, step_grads


def check_f32(f32, ref, tols):
    """The float32 PyTorch run must pass the C test's tolerances; returns the
    worst error per group for the log."""
    worst = {}
    for k in f32:
        group = k.split(".")[0]
        if group == "adam3" and k in tols:
            err = float((np.abs(f32[k].astype(np.float64) - ref[k]) / tols[k]).max())
        elif group in ("grad", "gradval", "gradnorm"):
            err = grad_err(f32[k], ref[k]) / TOL_GRAD
        elif group == "adam3":
            err = scale_err(f32[k], ref[k]) / TOL_STATS3
        else:
            err = scale_err(f32[k], ref[k]) / TOL_FWD
        worst[group] = max(worst.get(group, 0.0), err)
    return worst


def analytic_zero(step_grads):
    """Whether any gradient is rounding noise around an analytic zero (a
    non-zero below 1e-9 of its tensor's largest)."""
    for g in step_grads:
        for v in g.values():
            a = np.abs(v)
            if ((a > 0) & (a < 1e-9 * a.max())).any():
                return True
    return False


def gen_reduced(layers, name, title, first_seed, adam_steps):
    net = Net(layers)
    for seed in range(first_seed, first_seed + 1000):
        rng = np.random.default_rng(seed)
        x_np, y_np = synth_batch(rng, BATCH)
        x_np = np.float32(x_np)
        init = random_init(net, rng)
        margins = []
        ref, step_grads = run_reduced(net, x_np, y_np, init, torch.float64, adam_steps, margins)
        if min(margins) >= 1e-6 and not analytic_zero(step_grads):
            break
    else:
        raise SystemExit("%s: no well-conditioned seed" % name)
    out = {"input": x_np, "labels": np.float32(y_np)}
    out.update({"init." + k: v for k, v in init.items()})
    # stored reference values are float32 roundings of the float64 ones
    out.update(ref)
    tols = {}
    if adam_steps:
        for k in net.params:
            tols["adam3." + k] = adam_tolerance(init[k].astype(np.float64), [g[k] for g in step_grads])
            out["adam3tol." + k] = np.float32(tols["adam3." + k])
    f32, _ = run_reduced(net, x_np, y_np, init, torch.float32, adam_steps)
    worst = check_f32(f32, {k: np.float64(v) for k, v in ref.items()}, tols)
    print("%s: seed %d, %d parameters, loss %.6f, min relative |ReLU input| %.1e" % (
        name, seed, sum(int(np.prod(s)) for s in net.params.values()), float(ref["loss"]), min(margins)))
    print("  float32 run, worst error / tolerance:", ", ".join("%s %.3f" % kv for kv in worst.items()))
    assert max(worst.values()) <= 1.0
    with open(os.path.join(OUT, name + ".cfg"), "w") as f:
        f.write(cfg_text(layers, title))
    save_safetensors(os.path.join(OUT, name + ".safetensors"), out)


def gen_full():
    rng = np.random.default_rng(20240602)
    net = Net(FULL)
    assert sum(int(np.prod(s)) for s in {**net.params, **net.stats}.values()) == 1868234
    x_np, y_np = synth_batch(rng, 4)
    x_np = np.float32(x_np)
    w = full_weights(net)
    train_net = Net([(k, 0.0 if k == "dropout" else a, act) for k, a, act in FULL])
    res = {}
    for dtype in (torch.float64, torch.float32):
        x, y = torch.tensor(x_np, dtype=dtype), torch.tensor(y_np, dtype=torch.long)
        p = {k: torch.tensor(w[k], dtype=dtype, requires_grad=True) for k in net.params}
        stats = {k: torch.tensor(w[k], dtype=dtype) for k in net.stats}
        with torch.no_grad():
            li, _ = net.forward(x, p, stats, False)
        logits, loss, grads, stats1 = train_step(train_net, x, y, p, stats)
        r = {"infer.logits": li, "infer.loss": F.cross_entropy(li, y), "train.logits": logits,
             "train.loss": loss}
        r.update({"train." + k: s for k, s in stats1.items()})
        res[dtype] = ({k: v.detach().numpy() for k, v in r.items()},
                      {k: g.detach().numpy().reshape(-1) for k, g in grads.items()})
    (ref, g64), (f32, g32) = res[torch.float64], res[torch.float32]
    out = {"input": x_np, "labels": np.float32(y_np)}
    out.update({k: np.float32(v) for k, v in ref.items()})
    f32_out = {k: np.float32(v) for k, v in f32.items()}
    for k, g in g64.items():
        if g.size <= 32:
            idx = np.arange(g.size)
        else:
            top = np.argsort(-np.abs(g), kind="stable")[:16]
            idx = np.concatenate([top, rng.choice(np.setdiff1d(np.arange(g.size), top), 16, replace=False)])
        assert idx.max() < 2 ** 24  # exact as float32
        out["gradidx." + k] = np.float32(idx)
        out["gradval." + k] = np.float32(g[idx])
        out["gradnorm." + k] = np.float32(np.linalg.norm(g))
        f32_out["gradval." + k] = g32[k][idx]
        f32_out["gradnorm." + k] = np.linalg.norm(g32[k].astype(np.float64))
    worst = check_f32(f32_out, {k: np.float64(v) for k, v in out.items()}, {})
    print("torch_full: infer loss %.6f, train loss %.6f" % (float(ref["infer.loss"]), float(ref["train.loss"])))
    print("  float32 run, worst error / tolerance:", ", ".join("%s %.3f" % kv for kv in worst.items()))
    assert max(worst.values()) <= 1.0
    with open(os.path.join(OUT, "torch_full.cfg"), "w") as f:
        f.write(cfg_text(FULL, "the notebook network, for tests/test_torch_reference.c"))
    save_safetensors(os.path.join(OUT, "torch_full.safetensors"), out)


def warp_numpy(img, angle, zx, zy, flip):
    """fm__aug_warp written independently: output (x, y) samples the source at
    c + R(angle) diag(zx, zy) (x' - c, y - c), x' mirrored when flip, bilinear,
    coordinates clamped (edge repeat)."""
    n = img.shape[0]
    c = (n - 1) / 2.0
    th = math.radians(angle)
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float64)
    if flip:
        xs = n - 1 - xs
    dx, dy = xs - c, ys - c
    sx = np.clip(c + math.cos(th) * zx * dx - math.sin(th) * zy * dy, 0, n - 1)
    sy = np.clip(c + math.sin(th) * zx * dx + math.cos(th) * zy * dy, 0, n - 1)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    x1, y1 = np.minimum(x0 + 1, n - 1), np.minimum(y0 + 1, n - 1)
    fx, fy = sx - x0, sy - y0
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return (top * (1 - fy) + bot * fy) / 255.0


def warp_torch(img, angle, zx, zy, flip):
    """The same map through torch.grid_sample: align_corners=True puts -1 and +1
    on the centres of the edge pixels (so 0 is (N-1)/2), border padding
    repeats the edge, and the flip mirrors the warped image."""
    th = math.radians(angle)
    theta = torch.tensor([[[math.cos(th) * zx, -math.sin(th) * zy, 0.0],
                           [math.sin(th) * zx, math.cos(th) * zy, 0.0]]], dtype=torch.float64)
    src = torch.tensor(img, dtype=torch.float64)[None, None]
    grid = F.affine_grid(theta, src.shape, align_corners=True)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=True)[0, 0]
    return (torch.flip(out, [1]) if flip else out).numpy() / 255.0


def gen_augment():
    rng = np.random.default_rng(20240603)
    img = np.rint(synth_batch(rng, 1)[0][0, 0] * 255.0)
    img[3:6, 2:12] = 255.0  # an off-centre bar so flips and turns show
    # as stored (float32), so C warps with exactly these parameters
    params = np.float32([(0, 1, 1, 0), (0, 1, 1, 1), (10, 1, 1, 0), (-10, 1, 1, 0), (0, 0.9, 1.1, 0),
                         (0, 1.1, 0.9, 0), (7.3, 1.07, 0.93, 1), (-4.2, 0.95, 1.04, 1), (90, 1, 1, 0),
                         (-30, 1.2, 0.8, 0)])
    warped = []
    for a in params.astype(np.float64):
        wn, wt = warp_numpy(img, *a), warp_torch(img, *a)
        assert np.abs(wn - wt).max() < 1e-9, (a, np.abs(wn - wt).max())
        warped.append(wn)
    assert np.array_equal(warped[0], img / 255.0)
    # +90 is counter-clockwise on screen: the top row shows the right column
    assert np.allclose(warped[8][0, :], img[:, 27] / 255.0)
    save_safetensors(os.path.join(OUT, "torch_augment.safetensors"),
                     {"image": np.float32(img), "params": params, "warped": np.float32(warped)})
    print("torch_augment: %d warps; numpy and grid_sample agree" % len(params))



# ---- torch_optim.safetensors: the recipe building blocks -------------------
# (src/train/optim.h, src/train/schedule.h, label smoothing in softmax_xent)

OPT_N, OPT_STEPS = 48, 6
OPT_SPANS = [(0, 20), (28, 40)]  # where a masked case decays, as an fm__decay lists it
# Tolerances of tests/test_optim.c (the same numbers there).
TOL_OPT = 1e-6     # weights and moments after each step: max|a - b| / max(1, max|b|)
TOL_SCHED = 1e-12  # learning rates: max|a - b| / the schedule's peak rate
TOL_XENT = 1e-6    # smoothed loss, probabilities, gradient: max|a - b| / max(1, max|b|)


def f32(x):
    """A setting as the C side holds it (a float), so both sides compute
    with the same value."""
    return float(np.float32(x))


# name, torch class; beta1, beta2, eps, momentum, nesterov, weight_decay,
# masked (decay only OPT_SPANS; else everything). "adam" is torch.optim.Adam,
# PyTorch's epsilon placement without decay: what AdamW is with decay 0.
OPT_CASES = [
    ("adam", "Adam", 0.9, 0.999, 1e-8, 0, 0, 0.0, 0),
    ("adamw", "AdamW", 0.9, 0.999, 1e-8, 0, 0, 0.1, 0),
    ("adamw_mask", "AdamW", 0.85, 0.995, 1e-6, 0, 0, 0.1, 1),
    ("sgd", "SGD", 0, 0, 0, 0.0, 0, 0.0, 0),
    ("sgd_momentum", "SGD", 0, 0, 0, 0.9, 0, 0.0, 0),
    ("sgd_nesterov", "SGD", 0, 0, 0, 0.9, 1, 0.0, 0),
    ("sgd_wd", "SGD", 0, 0, 0, 0.9, 0, 0.05, 0),
    ("sgd_nesterov_wd_mask", "SGD", 0, 0, 0, 0.8, 1, 0.05, 1),
]
# The rate of each step (changing, as a schedule makes it); SGD's are 10x.
OPT_LRS = [1e-2, 2e-2, 1.5e-2, 5e-3, 1e-2, 8e-3]


def run_optim(case, w0, grads, lrs, dtype):
    """Weights after each step (OPT_STEPS, OPT_N) and the final per-parameter
    state (exp_avg or momentum_buffer, exp_avg_sq; None where there is none)
    from torch.optim itself. The block is cut where decay starts or stops;
    the pieces are parameter groups with or without weight decay."""
    name, cls, b1, b2, eps, mom, nes, wd, masked = case
    decayed = np.zeros(OPT_N, bool)
    for b, e in (OPT_SPANS if masked else [(0, OPT_N)]):
        decayed[b:e] = True
    cuts = [0] + [i for i in range(1, OPT_N) if decayed[i] != decayed[i - 1]] + [OPT_N]
    pieces = list(zip(cuts[:-1], cuts[1:]))
    params = [torch.tensor(w0[b:e], dtype=dtype, requires_grad=True) for b, e in pieces]
    groups = [{"params": [p], "weight_decay": f32(wd) if decayed[b] else 0.0}
              for p, (b, e) in zip(params, pieces)]
    if cls == "SGD":
        opt = torch.optim.SGD(groups, lr=lrs[0], momentum=f32(mom), nesterov=bool(nes))
    else:
        opt = getattr(torch.optim, cls)(groups, lr=lrs[0], betas=(f32(b1), f32(b2)), eps=f32(eps))
    ws = []
    for k in range(OPT_STEPS):
        for grp in opt.param_groups:
            grp["lr"] = lrs[k]
        for p, (b, e) in zip(params, pieces):
            p.grad = torch.tensor(grads[k, b:e], dtype=dtype)
        opt.step()
        ws.append(torch.cat([p.detach() for p in params]).numpy())

    def state(key):
        parts = [opt.state[p].get(key) for p in params]
        return None if any(x is None for x in parts) else torch.cat(parts).numpy()
    m = state("momentum_buffer") if cls == "SGD" else state("exp_avg")
    return np.array(ws), m, None if cls == "SGD" else state("exp_avg_sq")


def gen_optim_steps(out):
    rng = np.random.default_rng(20240604)
    w0 = np.float32(rng.uniform(-1.5, 1.5, OPT_N))
    scale = 10.0 ** rng.uniform(-3, 0, OPT_N)
    # a few gradients near AdamW's epsilon, where its placement shows
    scale[3::8] = 10.0 ** rng.uniform(-8.5, -6, len(scale[3::8]))
    grads = np.float32(rng.normal(size=(OPT_STEPS, OPT_N)) * scale)
    grads[0, 5] = 0.0  # a zero gradient on fresh moments
    out["opt.w0"], out["opt.grads"] = w0, grads
    out["opt.spans"] = np.float32(OPT_SPANS)
    worst = 0.0
    for case in OPT_CASES:
        name, cls = case[0], case[1]
        lrs = [f32(lr * (10 if cls == "SGD" else 1)) for lr in OPT_LRS]
        ref = run_optim(case, w0.astype(np.float64), grads.astype(np.float64), lrs, torch.float64)
        low = run_optim(case, w0, grads, lrs, torch.float32)
        out[name + ".hyper"] = np.float32([f32(x) for x in case[2:]])
        out[name + ".lrs"] = np.float32(lrs)
        out[name + ".w"] = np.float32(ref[0])
        for key, r, l in (("m", ref[1], low[1]), ("v", ref[2], low[2])):
            if r is not None:
                out[name + "." + key] = np.float32(r)
                worst = max(worst, scale_err(l, r) / TOL_OPT)
        for k in range(OPT_STEPS):
            worst = max(worst, scale_err(low[0][k], ref[0][k]) / TOL_OPT)
        # each case must move the weights well beyond the tolerance
        assert scale_err(ref[0][-1], w0) > 1e3 * TOL_OPT, name
    # the distinctions the C test relies on are far above its tolerance
    w = {c[0]: out[c[0] + ".w"][-1].astype(np.float64) for c in OPT_CASES}
    for a, b in (("adam", "adamw"), ("sgd_momentum", "sgd_nesterov"), ("sgd", "sgd_momentum"),
                 ("sgd_momentum", "sgd_wd")):
        assert scale_err(w[a], w[b]) > 100 * TOL_OPT, (a, b)
    print("torch_optim: %d optimizer cases of %d steps; float32 run, worst error / tolerance %.3f"
          % (len(OPT_CASES), OPT_STEPS, worst))
    assert worst <= 1.0


# name, total steps; lr, warmup_steps, warmup_start, floor, pct_start,
# div_factor, final_div_factor, anneal_linear (the fields of fm__schedule;
# the C test knows each name's kind).
SCHED_CASES = [
    ("constant", 4, 1e-3, 0, 0, 0, 0, 0, 0, 0),
    ("warmup_constant", 20, 1e-3, 5, 0.1, 0, 0, 0, 0, 0),
    ("cosine", 30, 0.1, 0, 0, 0.02, 0, 0, 0, 0),
    ("warmup_cosine", 100, 3e-3, 10, 0.05, 0.01, 0, 0, 0, 0),
    ("linear", 25, 0.05, 0, 0, 0.1, 0, 0, 0, 0),
    ("warmup_linear", 50, 1e-2, 7, 0.25, 0.0, 0, 0, 0, 0),
    ("onecycle", 100, 0.01, 0, 0, 0, 0.3, 25, 1e4, 0),
    ("onecycle_linear", 57, 0.05, 0, 0, 0, 0.25, 10, 100, 1),
    ("onecycle_short", 3, 0.1, 0, 0, 0, 0.5, 25, 1e4, 0),
    ("onecycle_one", 1, 0.1, 0, 0, 0, 0.3, 25, 1e4, 0),
]


def torch_scheduler(opt, case):
    """The case as torch's own schedulers: LinearLR for the warm-up, then
    CosineAnnealingLR or LinearLR for the decay, chained by SequentialLR at
    the end of the warm-up; OneCycleLR; LambdaLR(1) for the constant rate."""
    name, total, lr, w, start, floor, pct, div, final, linear = case
    S = torch.optim.lr_scheduler
    if name.startswith("onecycle"):
        return S.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=pct, div_factor=div,
                            final_div_factor=final, anneal_strategy="linear" if linear else "cos",
                            three_phase=False, cycle_momentum=False)
    kind = name.split("_")[-1]
    if kind == "constant":
        return S.LinearLR(opt, start_factor=start, end_factor=1.0, total_iters=w) if w else \
            S.LambdaLR(opt, lambda step: 1.0)
    d = total - w
    decay = (S.CosineAnnealingLR(opt, T_max=d, eta_min=floor * lr) if kind == "cosine" else
             S.LinearLR(opt, start_factor=1.0, end_factor=floor, total_iters=d))
    if not w:
        return decay
    warm = S.LinearLR(opt, start_factor=start, end_factor=1.0, total_iters=w)
    return S.SequentialLR(opt, [warm, decay], milestones=[w])


def schedule_written_out(case):
    """The rates as src/train/schedule.h defines them, for a check of the
    torch run (and of what the header claims torch does)."""
    name, total, lr, w, start, floor, pct, div, final, linear = case
    out = []
    for s in range(total):
        if name.startswith("onecycle"):
            initial = lr / div
            end1 = pct * total - 1
            lo, hi, a, b = ((initial, lr, 0.0, end1) if s <= end1 else
                            (lr, initial / final, end1, total - 1.0))
            p = (s - a) / (b - a) if b > a else 1.0
            out.append((hi - lo) * p + lo if linear else hi + (lo - hi) / 2 * (math.cos(math.pi * p) + 1))
        elif s < w:
            out.append(lr * (start + (1 - start) * s / w))
        else:
            p, d, kind = s - w, total - w, name.split("_")[-1]
            f = {"constant": 1.0, "cosine": floor + (1 - floor) * (1 + math.cos(math.pi * p / d)) / 2,
                 "linear": 1 - (1 - floor) * p / d}[kind]
            out.append(lr * f)
    return np.array(out)


def gen_schedules(out, f64):
    worst = 0.0
    for case in SCHED_CASES:
        name, total, lr = case[0], case[1], case[2]
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=lr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SequentialLR's deprecated step(0)
            sched = torch_scheduler(opt, case)
            lrs = []
            for s in range(total):
                lrs.append(opt.param_groups[0]["lr"])
                opt.step()
                if s < total - 1:  # OneCycleLR refuses a step past its end
                    sched.step()
        lrs = np.array(lrs)
        err = float(np.abs(lrs - schedule_written_out(case)).max() / lr)
        assert err <= TOL_SCHED / 10, (name, err)
        worst = max(worst, err)
        out["sched.%s.cfg" % name] = np.float64(case[2:])
        out["sched.%s.lr" % name] = lrs
        f64 += ["sched.%s.cfg" % name, "sched.%s.lr" % name]
    print("torch_optim: %d schedules; torch's and schedule.h's written out differ by %.1e of the peak"
          % (len(SCHED_CASES), worst))


def gen_xent(out):
    """Label-smoothed cross-entropy: F.cross_entropy(label_smoothing=s) and
    its autograd gradient, checked against Keras's definition (target
    onehot * (1 - s) + s / K, loss -sum target * log softmax)."""
    rng = np.random.default_rng(20240605)
    n, k = 8, 10
    logits = np.float32(rng.normal(size=(n, k)) * 3)
    logits[2, 4] = 40.0  # exp would overflow unshifted in float32
    labels = rng.integers(0, k, n)
    labels[2] = 4
    smoothing = np.float32([0.0, 0.1, 0.25, 1.0])
    losses, grads, worst = [], [], 0.0
    for s in smoothing.astype(np.float64):
        res = {}
        for dtype in (torch.float64, torch.float32):
            x = torch.tensor(logits, dtype=dtype, requires_grad=True)
            loss = F.cross_entropy(x, torch.tensor(labels), label_smoothing=s)
            (g,) = torch.autograd.grad(loss, [x])
            res[dtype] = (float(loss), g.numpy(), F.softmax(x, dim=1).detach().numpy())
        target = np.eye(k)[labels] * (1 - s) + s / k
        logp = F.log_softmax(torch.tensor(logits, dtype=torch.float64), 1).numpy()
        keras = float(-(target * logp).sum(1).mean())
        assert abs(keras - res[torch.float64][0]) <= 1e-12 * abs(keras), (s, keras)
        (l64, g64, p64), (l32, g32, p32) = res[torch.float64], res[torch.float32]
        worst = max(worst, scale_err([l32], [l64]) / TOL_XENT, scale_err(g32, g64) / TOL_XENT,
                    scale_err(p32, p64) / TOL_XENT)
        losses.append(l64)
        grads.append(g64)
    out.update({"xent.logits": logits, "xent.labels": np.float32(labels), "xent.smoothing": smoothing,
                "xent.probs": np.float32(p64), "xent.loss": np.float32(losses),
                "xent.grad": np.float32(grads)})
    print("torch_optim: label smoothing %s; Keras's and torch's losses agree; float32 run, worst "
          "error / tolerance %.3f" % (", ".join("%g" % s for s in smoothing), worst))
    assert worst <= 1.0


def gen_optim():
    out, f64 = {}, []
    gen_optim_steps(out)
    gen_schedules(out, f64)
    gen_xent(out)
    save_safetensors(os.path.join(OUT, "torch_optim.safetensors"), out, f64)


if __name__ == "__main__":
    # Names on the command line regenerate only those files (default: all).
    GENERATORS = {
        "torch_small": lambda: gen_reduced(
            SMALL, "torch_small", "the notebook network reduced, for tests/test_torch_reference.c",
            20240601, 3),
        "torch_readme": lambda: gen_reduced(
            README, "torch_readme", "the README variant reduced, for tests/test_torch_reference.c",
            20240701, 0),
        "torch_full": gen_full,
        "torch_augment": gen_augment,
        "torch_optim": gen_optim,
    }
    chosen = sys.argv[1:] or list(GENERATORS)
    unknown = [n for n in chosen if n not in GENERATORS]
    if unknown:
        raise SystemExit("unknown fixture %s; choose from %s" % (", ".join(unknown), ", ".join(GENERATORS)))
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for name in chosen:
        GENERATORS[name]()
    for name in sorted(os.listdir(OUT)):
        if name.startswith("torch_"):
            print("%-28s %7d bytes" % (name, os.path.getsize(os.path.join(OUT, name))))
