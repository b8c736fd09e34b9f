#!/usr/bin/python3
"""An independent PyTorch run of an fmnist training recipe, to compare
learning curves and final accuracies with `fmnist train` on the same data.
It shares no code with fmnist beyond reading the model description
(bench/torch_bench.py's build_net) and the recipe file:

    /usr/bin/python3 bench/torch_recipe.py [--recipe NAME|FILE] [--data DIR]
        [--model CFG] [--epochs N] [--batch N] [--lr F] [--val-split F]
        [--no-augment] [--seed N] [--threads N] [--limit N] [--log FILE]

The recipe is fmnist's format: one `key = value` per line, '#' starts a
comment; a NAME (no '/' or '.') is configs/recipes/NAME.recipe, and the
default is notebook, the Keras notebook's recipe (SPEC.md). Keys left out
keep the notebook's values; the flags override the recipe's keys, and
--epochs rescales the per-step schedules. Each key, written here from the
published definitions rather than from fmnist's code:

Data: pixels / 255; `val_split` of the training set held out for validation
(a numpy RandomState(seed) permutation, so not fmnist's split; 0: none, and
then the rules that need it, early stopping, the plateau schedule and
save_best, are refused); batches of `batch`, reshuffled each epoch.

Augmentation of every training batch, in this order:
  augment   F.affine_grid + F.grid_sample (bilinear, align_corners=True so
            the centre is (N-1)/2, padding "border" = edge pixels repeated):
            rotation uniform in [-10, 10] degrees, zoom in x and y drawn
            independently from [0.9, 1.1], horizontal flip with probability 0.5
  flip      horizontal flip alone, probability 0.5 (refused with augment)
  translate pad-and-crop: shifts dx, dy uniform integers in [-N, N], zero
            fill where the shift uncovers
  erase_*   random erasing (Zhong et al. 2017, torchvision's RandomErasing
            written out): with probability erase_prob, up to 10 attempts of
            area U(erase_area_min, erase_area_max) * 28 * 28 and aspect
            exp(U(log a, log 1/a)), a = erase_aspect_min; h = round(sqrt(area
            * aspect)), w = round(sqrt(area / aspect)); the first with h < 28
            and w < 28 is placed at top U{0..28-h}, left U{0..28-w} and filled
            with 0 (erase_fill = zero) or uniform [0, 1) noise (random)

Loss: cross-entropy from the logits, F.cross_entropy's label_smoothing for
the training loss (which the log shows); validation and test loss plain.

Optimizer: adam is Keras's (epsilon 1e-7 on the uncorrected sqrt(v), written
out below as a torch.optim.Optimizer); adamw torch.optim.AdamW (eps 1e-8,
decoupled weight_decay); sgd torch.optim.SGD (momentum, nesterov, coupled
weight_decay). Unless decay_biases_norms, biases and BatchNorm gamma/beta are
a parameter group without weight decay.

Schedule: plateau is the notebook's ReduceLROnPlateau on val_loss, per epoch
(plateau_patience, plateau_factor, min_lr; improvement = below best - 1e-4,
absolute; lr = max(lr * factor, min_lr), cooldown 0). The others run per step
over the whole run, T = epochs * ceil(train images / batch) steps, through
torch.optim.lr_scheduler: W = round(warmup * T) steps of linear warm-up from
warmup_start * lr (LambdaLR: warmup_start * lr + (1 - warmup_start) * lr * i
/ W at step i; torch's LinearLR refuses a start of 0), then constant,
CosineAnnealingLR(T_max = T - W, eta_min = lr_floor * lr) or LinearLR(1 ->
lr_floor over T - W steps), joined by SequentialLR; onecycle is
OneCycleLR(max_lr = lr, total_steps = T, onecycle_pct_start,
onecycle_div_factor, onecycle_final_div_factor, cos annealing,
cycle_momentum=False), without warm-up. Step i (from 0) trains at the lr
after i scheduler steps; an epoch's log line shows its last step's lr.

EMA (ema, ema_decay, ema_warmup): after every optimizer step, a copy of the
network's parameters and BatchNorm running statistics: the first step copies
(Keras use_ema), then avg = d * avg + (1 - d) * w with d = ema_decay, or with
ema_warmup d = min(ema_decay, (1 + t) / (10 + t)), t = steps before this one.
Validation, the callbacks' saved weights and the final model use the average.

Callbacks, on validation: EarlyStopping on val_loss (early_stopping_patience,
0 = off; improvement = below the best; the best weights and BatchNorm
statistics are restored at the end whether or not it stopped early), and the
best val_accuracy weights kept as ModelCheckpoint would save them
(save_best). Without EarlyStopping the final model is the last epoch's.

precise_bn = K: at the end, after the above, the final model's BatchNorm
running statistics are reset and recomputed over K whole batches of
augmented training images (BatchNorm in training mode with momentum=None,
torch's cumulative average; dropout off), as the plain mean of the batch
means and of the biased batch variances (torch averages the unbiased ones:
they are scaled by (n - 1) / n, n values per channel in a batch).

tta = flip: validation and the test evaluations average the softmax
probabilities of each image and its mirror image, as fmnist's model does
from the first validation on (its loss: the cross-entropy of that mean).

One difference from Keras stays: PyTorch's BatchNorm updates its running
variance with the unbiased batch variance (n/(n-1) times Keras's; n =
64*28*28 for the first BatchNorm, so 1.00002).

Prints the effective recipe, one line per epoch in the columns of fmnist's
log.csv (and writes them as CSV with --log; without validation the val_
fields are empty), then the train/validation/test accuracy of the final
model, the test accuracy of the best-val_accuracy weights, and last
test_accuracy=N (the final model's). The notebook recipe takes about 130 s
an epoch on 2 cores, hours in all; --epochs and --limit make shorter
comparisons. Needs Debian's python3-torch and python3-numpy.
"""

import argparse
import copy
import gzip
import math
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import DEFAULT_CFG, build_net, threads_for  # noqa: E402

DEBIAN_DATA = "/usr/share/datasets/fashion-mnist"
RECIPES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "configs", "recipes")

# The recipe keys: (name, type, default, check of the value, what the check says).
# A type is int, float, bool (yes/no) or a tuple of the words allowed.
KEYS = [
    ("epochs", int, 100, lambda v: v >= 1, ">= 1"),
    ("batch", int, 64, lambda v: v >= 1, ">= 1"),
    ("lr", float, 1e-3, lambda v: 0 < v <= 10, "in (0, 10]"),
    ("augment", bool, True, None, None),
    ("flip", bool, False, None, None),
    ("translate", int, 0, lambda v: 0 <= v <= 27, "in [0, 27]"),
    ("erase_prob", float, 0.0, lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("erase_area_min", float, 0.02, lambda v: 0 < v <= 1, "in (0, 1]"),
    ("erase_area_max", float, 0.33, lambda v: 0 < v <= 1, "in (0, 1]"),
    ("erase_aspect_min", float, 0.3, lambda v: 0 < v <= 1, "in (0, 1]"),
    ("erase_fill", ("zero", "random"), "zero", None, None),
    ("val_split", float, 0.2, lambda v: 0 <= v <= 0.99, "in [0, 0.99]"),
    ("early_stopping_patience", int, 15, lambda v: v >= 0, ">= 0"),
    ("plateau_patience", int, 8, lambda v: v >= 1, ">= 1"),
    ("plateau_factor", float, 0.5, lambda v: 0 < v < 1, "in (0, 1)"),
    ("min_lr", float, 0.0, lambda v: v >= 0, ">= 0"),
    ("optimizer", ("adam", "adamw", "sgd"), "adam", None, None),
    ("weight_decay", float, 0.0, lambda v: v >= 0, ">= 0"),
    ("decay_biases_norms", bool, False, None, None),
    ("momentum", float, 0.9, lambda v: 0 <= v < 1, "in [0, 1)"),
    ("nesterov", bool, False, None, None),
    ("schedule", ("plateau", "constant", "cosine", "linear", "onecycle"), "plateau", None, None),
    ("warmup", float, 0.0, lambda v: 0 <= v < 1, "in [0, 1)"),
    ("warmup_start", float, 0.0, lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("lr_floor", float, 0.0, lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("onecycle_pct_start", float, 0.3, lambda v: 0 < v < 1, "in (0, 1)"),
    ("onecycle_div_factor", float, 25.0, lambda v: v > 0, "> 0"),
    ("onecycle_final_div_factor", float, 1e4, lambda v: v > 0, "> 0"),
    ("label_smoothing", float, 0.0, lambda v: 0 <= v < 1, "in [0, 1)"),
    ("ema", bool, False, None, None),
    ("ema_decay", float, 0.999, lambda v: 0 <= v < 1, "in [0, 1)"),
    ("ema_warmup", bool, False, None, None),
    ("precise_bn", int, 0, lambda v: v >= 0, ">= 0"),
    ("tta", ("none", "flip"), "none", None, None),
    ("save_best", bool, True, None, None),
    ("model", str, "default", None, None),
]


def parse_value(kind, text):
    if kind is bool:
        if text not in ("yes", "no"):
            raise ValueError("'%s' is not yes or no" % text)
        return text == "yes"
    if kind is str:
        return text
    if isinstance(kind, tuple):
        if text not in kind:
            raise ValueError("'%s' is not %s" % (text, " or ".join(kind)))
        return text
    try:
        v = kind(text)
    except ValueError:
        raise ValueError("'%s' is not %s" % (text, "an integer" if kind is int else "a number"))
    if not math.isfinite(v):
        raise ValueError("'%s' is not a finite number" % text)
    return v


def is_file_name(name):
    """fmnist's rule: a name with a '/' or a '.' is a file, else a built-in one."""
    return "/" in name or "." in name


def recipe_path(name):
    """A recipe file's path: NAME without '/' or '.' is a built-in one."""
    if is_file_name(name):
        return name
    path = os.path.join(RECIPES, name + ".recipe")
    if not os.path.exists(path):
        known = sorted(f[:-7] for f in os.listdir(RECIPES) if f.endswith(".recipe"))
        sys.exit("torch_recipe: %s: no such built-in recipe (%s has %s) and no such file (a "
                 "recipe file's name has a '.' or a '/')" % (name, RECIPES, ", ".join(known)))
    return path


def load_recipe(name):
    """{key: value} of the recipe file, the defaults where it says nothing."""
    path = recipe_path(name)
    kinds = {k[0]: k for k in KEYS}
    recipe, seen = {k[0]: k[2] for k in KEYS}, set()
    try:
        lines = open(path).read().split("\n")
    except OSError as e:
        sys.exit("torch_recipe: %s: %s" % (path, e.strerror))
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where = "%s:%d" % (path, number)
        key, eq, value = (s.strip() for s in line.partition("="))
        if not eq:
            sys.exit("torch_recipe: %s: expected 'key = value', got '%s'" % (where, line))
        if key not in kinds:
            sys.exit("torch_recipe: %s: unknown key '%s' (expected %s)"
                     % (where, key, ", ".join(kinds)))
        if key in seen:
            sys.exit("torch_recipe: %s: %s given twice" % (where, key))
        seen.add(key)
        try:
            recipe[key] = parse_value(kinds[key][1], value)
        except ValueError as e:
            sys.exit("torch_recipe: %s: %s: %s" % (where, key, e))
    return path, recipe


def check_recipe(r):
    """Exits with the first value or combination the recipe cannot have."""
    for name, _, _, ok, says in KEYS:
        if ok and not ok(r[name]):
            sys.exit("torch_recipe: %s = %s: must be %s" % (name, r[name], says))
    rules = [
        (r["augment"] and r["flip"], "flip = yes with augment = yes (the affine flips already)"),
        (r["optimizer"] == "adam" and r["weight_decay"] > 0,
         "weight_decay > 0 with optimizer = adam (use adamw or sgd)"),
        (r["nesterov"] and (r["optimizer"] != "sgd" or r["momentum"] == 0),
         "nesterov = yes needs optimizer = sgd and momentum > 0"),
        (r["erase_area_min"] > r["erase_area_max"], "erase_area_min > erase_area_max"),
        (r["warmup"] > 0 and r["schedule"] in ("plateau", "onecycle"),
         "warmup with schedule = %s (warm-up is for constant, cosine and linear)" % r["schedule"]),
    ]
    if r["val_split"] == 0:
        rules += [(r["early_stopping_patience"] > 0,
                   "val_split = 0 with early_stopping_patience > 0 (EarlyStopping needs "
                   "validation; set it to 0)"),
                  (r["schedule"] == "plateau",
                   "val_split = 0 with schedule = plateau (ReduceLROnPlateau needs validation)"),
                  (r["save_best"], "val_split = 0 with save_best = yes (ModelCheckpoint needs "
                   "validation; set it to no)")]
    for bad, why in rules:
        if bad:
            sys.exit("torch_recipe: refused: " + why)


def read_idx(path, offset):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load(data_dir, prefix):
    """(images (N, 1, 28, 28) float32 in [0, 1], labels int64) of an IDX pair."""
    for ext in (".gz", ""):
        images = os.path.join(data_dir, prefix + "-images-idx3-ubyte" + ext)
        labels = os.path.join(data_dir, prefix + "-labels-idx1-ubyte" + ext)
        if os.path.exists(images) and os.path.exists(labels):
            x = read_idx(images, 16).reshape(-1, 1, 28, 28)
            y = read_idx(labels, 8).astype(np.int64)
            return torch.tensor(x, dtype=torch.float32) / 255, torch.tensor(y)
    sys.exit("torch_recipe: no %s-images-idx3-ubyte(.gz) pair in %s" % (prefix, data_dir))


def affine(x, gen):
    """Random rotation, zoom and flip of a batch, as the notebook defines them.
    The affine map takes output coordinates to input ones (normalised, which
    for a square image is the same as pixels about the centre)."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=gen)
    theta = (2 * u[:, 0] - 1) * math.radians(10)
    zx, zy = 1 + (2 * u[:, 1] - 1) * 0.1, 1 + (2 * u[:, 2] - 1) * 0.1
    flip = torch.where(u[:, 3] < 0.5, -1.0, 1.0)  # flips the output x
    c, s = torch.cos(theta), torch.sin(theta)
    m = torch.zeros(n, 2, 3)
    m[:, 0, 0], m[:, 0, 1] = c * zx * flip, -s * zy
    m[:, 1, 0], m[:, 1, 1] = s * zx * flip, c * zy
    grid = F.affine_grid(m, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def flip(x, gen):
    mirror = torch.rand(x.shape[0], generator=gen) < 0.5
    return torch.where(mirror[:, None, None, None], x.flip(-1), x)


def translate(x, gen, n):
    """Pad by n zeros and crop 28x28 back at a random offset: a shift of
    -n..n pixels on each axis."""
    b, _, h, w = x.shape
    top = torch.randint(0, 2 * n + 1, (b,), generator=gen)
    left = torch.randint(0, 2 * n + 1, (b,), generator=gen)
    padded = F.pad(x, (n, n, n, n))
    rows = (top[:, None] + torch.arange(h))[:, :, None]
    cols = (left[:, None] + torch.arange(w))[:, None, :]
    return padded[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)


def erase(x, gen, r):
    """torchvision's RandomErasing on each image (value 0 or uniform noise)."""
    x = x.clone()
    _, _, h, w = x.shape
    log_a = math.log(r["erase_aspect_min"])
    for img in x:
        if torch.rand(1, generator=gen).item() >= r["erase_prob"]:
            continue
        for _ in range(10):
            area = h * w * (r["erase_area_min"] + (r["erase_area_max"] - r["erase_area_min"])
                            * torch.rand(1, generator=gen).item())
            aspect = math.exp(log_a + (-2 * log_a) * torch.rand(1, generator=gen).item())
            eh, ew = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if not (eh < h and ew < w):
                continue
            top = torch.randint(0, h - eh + 1, (1,), generator=gen).item()
            left = torch.randint(0, w - ew + 1, (1,), generator=gen).item()
            img[:, top:top + eh, left:left + ew] = (
                0.0 if r["erase_fill"] == "zero" else torch.rand(1, eh, ew, generator=gen))
            break
    return x


def augmenter(r, gen):
    """The recipe's augmentation of a training batch: affine, flip, translate, erase."""
    def apply(x):
        if r["augment"]:
            x = affine(x, gen)
        if r["flip"]:
            x = flip(x, gen)
        if r["translate"]:
            x = translate(x, gen, r["translate"])
        if r["erase_prob"] > 0:
            x = erase(x, gen, r)
        return x
    return apply


class KerasAdam(torch.optim.Optimizer):
    """Adam as Keras computes it (epsilon on the uncorrected sqrt(v)), as a
    torch optimizer so that the lr schedulers drive it as they drive AdamW."""

    def __init__(self, params, lr, b1=0.9, b2=0.999, eps=1e-7):
        super().__init__(params, dict(lr=lr, b1=b1, b2=b2, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, b1, b2, eps = group["lr"], group["b1"], group["b2"], group["eps"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["t"] += 1
                t, m, v, g = state["t"], state["m"], state["v"], p.grad
                lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                m.add_((g - m) * (1 - b1))
                v.add_((g * g - v) * (1 - b2))
                p.sub_(lr_t * m / (v.sqrt() + eps))


def make_optimizer(net, r):
    decay, plain = [], []
    for module in net.modules():
        norm = isinstance(module, nn.modules.batchnorm._BatchNorm)
        for name, p in module.named_parameters(recurse=False):
            if p.requires_grad:
                exempt = (norm or name == "bias") and not r["decay_biases_norms"]
                (plain if exempt else decay).append(p)
    groups = [{"params": decay, "weight_decay": r["weight_decay"]},
              {"params": plain, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if r["optimizer"] == "adam":
        return KerasAdam([{"params": g["params"]} for g in groups], r["lr"])
    if r["optimizer"] == "adamw":
        return torch.optim.AdamW(groups, lr=r["lr"], betas=(0.9, 0.999), eps=1e-8)
    return torch.optim.SGD(groups, lr=r["lr"], momentum=r["momentum"], nesterov=r["nesterov"])


def make_schedule(opt, r, total):
    """The per-step lr scheduler of the recipe (None: plateau, or constant
    without warm-up)."""
    kind = r["schedule"]
    if kind == "plateau":
        return None
    if kind == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=r["lr"], total_steps=total, pct_start=r["onecycle_pct_start"],
            anneal_strategy="cos", cycle_momentum=False, div_factor=r["onecycle_div_factor"],
            final_div_factor=r["onecycle_final_div_factor"])
    warm = int(math.floor(r["warmup"] * total + 0.5))
    rest = total - warm
    if kind == "constant":
        main = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    elif kind == "cosine":
        main = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=rest,
                                                          eta_min=r["lr_floor"] * r["lr"])
    else:
        main = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=r["lr_floor"],
                                                 total_iters=rest)
    if warm == 0:
        return main
    start = r["warmup_start"]
    ramp = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: start + (1 - start) * i / warm)
    return torch.optim.lr_scheduler.SequentialLR(opt, [ramp, main], milestones=[warm])


def set_lr(opt, lr):
    for g in opt.param_groups:
        g["lr"] = lr


def averaged(net):
    """The tensors an EMA follows: parameters and BatchNorm running statistics."""
    return [t for t in list(net.parameters()) + list(net.buffers()) if t.is_floating_point()]


@torch.no_grad()
def ema_update(avg_net, net, r, t):
    """Keras use_ema after step t + 1 (t steps before it): copy at the first."""
    d = r["ema_decay"]
    if r["ema_warmup"]:
        d = min(d, (1 + t) / (10 + t))
    for a, w in zip(averaged(avg_net), averaged(net)):
        if t == 0:
            a.copy_(w)
        else:
            a.mul_(d).add_(w, alpha=1 - d)


@torch.no_grad()
def precise_bn(net, x, r, gen, augment):
    """Recomputes the BatchNorm running statistics over K whole augmented
    training batches (see the module's docstring)."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    count = {}  # values per channel of one batch, for the variance's n

    def seen(module, inputs):
        count[module] = inputs[0].numel() // inputs[0].shape[1]
    hooks = [m.register_forward_pre_hook(seen) for m in bns]
    momentum = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    done, batch = 0, min(r["batch"], len(x))
    while done < r["precise_bn"]:
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(perm) - batch + 1, batch):
            net(augment(x[perm[i:i + batch]]))
            done += 1
            if done == r["precise_bn"]:
                break
    for m, mom, h in zip(bns, momentum, hooks):
        h.remove()
        m.momentum = mom
        n = count[m]
        m.running_var.mul_((n - 1) / n)
    net.eval()


def evaluate(net, x, y, tta=False):
    """(loss, accuracy); with tta the mean of the softmax of each image and its mirror."""
    if len(x) == 0:
        return math.nan, math.nan
    net.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            xb, yb = x[i:i + 500], y[i:i + 500]
            out = net(xb)
            if tta:
                prob = (F.softmax(out, 1) + F.softmax(net(xb.flip(-1)), 1)) / 2
                loss += F.nll_loss(prob.log(), yb, reduction="sum").item()
                correct += (prob.argmax(1) == yb).sum().item()
            else:
                loss += F.cross_entropy(out, yb, reduction="sum").item()
                correct += (out.argmax(1) == yb).sum().item()
    return loss / len(x), correct / len(x)


def field(v):
    return "" if math.isnan(v) else "%.6f" % v


def run(args, r):
    tta = r["tta"] == "flip"
    torch.set_num_threads(threads_for(args.threads))
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x, y = load(args.data, "train")
    xt, yt = load(args.data, "t10k")
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    order = np.random.RandomState(args.seed).permutation(len(x))
    n_val = int(round(len(x) * r["val_split"]))
    tr, va = torch.tensor(order[n_val:]), torch.tensor(order[:n_val])
    xtr, ytr, xva, yva = x[tr], y[tr], x[va], y[va]
    has_val = n_val > 0
    if r["val_split"] > 0 and not has_val:
        sys.exit("torch_recipe: val_split %g holds out no image of %d" % (r["val_split"], len(x)))

    net, _, _ = build_net(args.model)
    avg_net = copy.deepcopy(net) if r["ema"] else None
    model = avg_net or net  # what validation, the callbacks and the end see
    opt = make_optimizer(net, r)
    steps = math.ceil(len(xtr) / r["batch"])
    with warnings.catch_warnings():  # SequentialLR's step(0) is "deprecated"
        warnings.simplefilter("ignore")
        sched = make_schedule(opt, r, r["epochs"] * steps)
    augment = augmenter(r, gen)
    log = open(args.log, "w") if args.log else None
    header = "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds"
    print(header)
    if log:
        print(header, file=log, flush=True)

    es_on = has_val and r["early_stopping_patience"] > 0
    es_best, es_wait, es_state, es_epoch = math.inf, 0, None, 0
    rl_best, rl_wait = math.inf, 0
    ck_best, ck_state, ck_epoch = -math.inf, None, 0
    t = 0  # optimizer steps so far
    for epoch in range(1, r["epochs"] + 1):
        net.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, len(perm), r["batch"]):
            b = perm[i:i + r["batch"]]
            xb, yb = augment(xtr[b]), ytr[b]
            out = net(xb)
            loss = F.cross_entropy(out, yb, label_smoothing=r["label_smoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            lr_used = opt.param_groups[0]["lr"]
            opt.step()
            if sched:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sched.step()
            if avg_net:
                ema_update(avg_net, net, r, t)
            t += 1
            loss_sum += loss.item() * len(b)
            correct += (out.argmax(1) == yb).sum().item()
        val_loss, val_acc = evaluate(model, xva, yva, tta) if has_val else (math.nan, math.nan)
        line = "%d,%.6f,%.6f,%s,%s,%g,%.3f" % (epoch, loss_sum / len(xtr), correct / len(xtr),
                                               field(val_loss), field(val_acc), lr_used,
                                               time.time() - t0)
        print(line, flush=True)
        if log:
            print(line, file=log, flush=True)
        if not has_val:
            continue

        if r["save_best"] and val_acc > ck_best:  # ModelCheckpoint(val_accuracy, save_best_only)
            ck_best, ck_state, ck_epoch = val_acc, copy.deepcopy(model.state_dict()), epoch
        if r["schedule"] == "plateau":  # ReduceLROnPlateau(val_loss)
            if val_loss < rl_best - 1e-4:
                rl_best, rl_wait = val_loss, 0
            else:
                rl_wait += 1
                lr = opt.param_groups[0]["lr"]
                if rl_wait >= r["plateau_patience"] and lr > r["min_lr"]:
                    set_lr(opt, max(lr * r["plateau_factor"], r["min_lr"]))
                    rl_wait = 0
        if es_on:  # EarlyStopping(val_loss, restore_best_weights)
            if val_loss < es_best:
                es_best, es_wait, es_state, es_epoch = (val_loss, 0,
                                                        copy.deepcopy(model.state_dict()), epoch)
            else:
                es_wait += 1
                if es_wait >= r["early_stopping_patience"]:
                    break

    if ck_state is not None:  # before precise BN, which changes only the final model
        best = copy.deepcopy(model)
        best.load_state_dict(ck_state)
        _, ck_test = evaluate(best, xt, yt, tta)
    if es_state is not None:
        model.load_state_dict(es_state)
        how = "epoch %d, best val_loss restored" % es_epoch
    else:
        how = "epoch %d, the last" % epoch
    if r["ema"]:
        how += ", EMA"
    if r["precise_bn"]:
        precise_bn(model, xtr, r, gen, augment)
        how += ", precise BN over %d batches" % r["precise_bn"]
    _, train_acc = evaluate(model, xtr, ytr)
    _, val_acc = evaluate(model, xva, yva, tta) if has_val else (math.nan, math.nan)
    _, test_acc = evaluate(model, xt, yt, tta)
    print("final model (%s): train %.4f val %s test %.4f%s"
          % (how, train_acc, "-" if math.isnan(val_acc) else "%.4f" % val_acc, test_acc,
             " (flip TTA)" if tta else ""))
    if ck_state is not None:
        print("best val_accuracy (epoch %d, %.4f): test %.4f" % (ck_epoch, ck_best, ck_test))
    print("test_accuracy=%.4f" % test_acc)


def main():
    ap = argparse.ArgumentParser(description="an fmnist training recipe in PyTorch")
    ap.add_argument("--recipe", default="notebook",
                    help="built-in recipe name (configs/recipes/NAME.recipe) or recipe file "
                    "(default %(default)s)")
    ap.add_argument("--data", default=DEBIAN_DATA, help="IDX folder (default %(default)s)")
    ap.add_argument("--model", help="model description (default: the recipe's model, a "
                    "built-in name meaning configs/NAME.cfg, else %s)" % DEFAULT_CFG)
    ap.add_argument("--epochs", type=int, help="epochs (at most, with early stopping); "
                    "rescales per-step schedules (default: the recipe's)")
    ap.add_argument("--batch", type=int, help="batch (default: the recipe's)")
    ap.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    ap.add_argument("--val-split", type=float, help="validation fraction (default: the recipe's)")
    ap.add_argument("--no-augment", action="store_true", help="augment = no")
    ap.add_argument("--seed", type=int, default=42, help="seed (default 42)")
    ap.add_argument("--threads", type=int, default=0, help="threads (default 0 = all cores)")
    ap.add_argument("--limit", type=int, default=0, help="use the first N training images")
    ap.add_argument("--log", help="also write the epoch lines to this CSV file")
    args = ap.parse_args()
    if args.limit < 0 or args.threads < 0:
        ap.error("--limit and --threads must be >= 0")
    path, r = load_recipe(args.recipe)
    overridden = []
    for key, value in (("epochs", args.epochs), ("batch", args.batch), ("lr", args.lr),
                       ("val_split", args.val_split), ("augment", False if args.no_augment
                                                       else None)):
        if value is not None:
            r[key] = value
            overridden.append(key)
    if args.model:
        r["model"] = args.model
        overridden.append("model")
    args.model = (DEFAULT_CFG if r["model"] == "default" else r["model"]
                  if is_file_name(r["model"])
                  else os.path.join(os.path.dirname(DEFAULT_CFG), r["model"] + ".cfg"))
    check_recipe(r)
    print("recipe %s (%s)%s:" % (args.recipe, path,
                                 ", with the command line's " + ", ".join(overridden)
                                 if overridden else ""))
    for name, kind, _, _, _ in KEYS:
        v = r[name]
        print("  %s = %s" % (name, ("yes" if v else "no") if kind is bool else "%g" % v
                             if kind is float else v))
    run(args, r)


if __name__ == "__main__":
    main()
