#!/usr/bin/python3
"""An independent PyTorch run of fmnist's training recipe (SPEC.md, the Keras
notebook's), to compare learning curves and final accuracies with
`fmnist train` on the same data. It shares no code with fmnist beyond
reading the model description (bench/torch_bench.py's build_net):

    /usr/bin/python3 bench/torch_recipe.py [--data DIR] [--model CFG]
        [--epochs N] [--seed N] [--threads N] [--limit N] [--log FILE]

Recipe: pixels / 255; an 80/20 train/validation split of the training set
(numpy RandomState(seed) permutation, so not fmnist's split); batch 64,
reshuffled each epoch; augmentation of every training batch by
F.affine_grid + F.grid_sample (bilinear, align_corners=True so the centre is
((N-1)/2), padding "border" = edge pixels repeated): rotation uniform in
[-10, 10] degrees, zoom in x and y drawn independently from [0.9, 1.1],
horizontal flip with probability 0.5; cross-entropy from the logits; Keras's
Adam (epsilon on the uncorrected sqrt(v), written out below rather than
torch.optim.Adam); EarlyStopping on val_loss (patience 15, best weights and
BatchNorm statistics restored at the end), ReduceLROnPlateau on val_loss
(patience 8, factor 0.5, improvement = below best - 1e-4) and the best
val_accuracy weights kept as ModelCheckpoint would save them.

One difference stays: PyTorch's BatchNorm updates its running variance with
the unbiased batch variance (n/(n-1) times Keras's; n = 64*28*28 for the
first BatchNorm, so 1.00002).

Prints one line per epoch (and writes them as CSV with --log), then the
train/validation/test accuracy of the restored weights and the test accuracy
of the best-val_accuracy weights. The full recipe takes about 130 s an epoch
on 2 cores, hours in all; --epochs and --limit make shorter comparisons.
Needs Debian's python3-torch and python3-numpy.
"""

import argparse
import copy
import gzip
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import DEFAULT_CFG, build_net, threads_for  # noqa: E402

DEBIAN_DATA = "/usr/share/datasets/fashion-mnist"


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


def augment(x, gen):
    """Random rotation, zoom and flip of a batch, as the recipe defines them.
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


class KerasAdam:
    """Adam as Keras computes it (epsilon on the uncorrected sqrt(v))."""

    def __init__(self, params, lr, b1=0.9, b2=0.999, eps=1e-7):
        self.params, self.lr, self.b1, self.b2, self.eps, self.t = list(params), lr, b1, b2, eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        self.t += 1
        lr_t = self.lr * math.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            m.add_((g - m) * (1 - self.b1))
            v.add_((g * g - v) * (1 - self.b2))
            p.sub_(lr_t * m / (v.sqrt() + self.eps))


def evaluate(net, x, y):
    net.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            out = net(x[i:i + 500])
            loss += F.cross_entropy(out, y[i:i + 500], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + 500]).sum().item()
    return loss / len(x), correct / len(x)


def run(args):
    torch.set_num_threads(threads_for(args.threads))
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x, y = load(args.data, "train")
    xt, yt = load(args.data, "t10k")
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    order = np.random.RandomState(args.seed).permutation(len(x))
    n_val = int(round(len(x) * 0.2))
    tr, va = torch.tensor(order[n_val:]), torch.tensor(order[:n_val])
    xtr, ytr, xva, yva = x[tr], y[tr], x[va], y[va]

    net, _, _ = build_net(args.model)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = KerasAdam(params, args.lr)
    log = open(args.log, "w") if args.log else None
    header = "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds"
    print(header)
    if log:
        print(header, file=log, flush=True)

    es_best, es_wait, es_state, es_epoch = math.inf, 0, None, 0
    rl_best, rl_wait = math.inf, 0
    ck_best, ck_state, ck_epoch = -math.inf, None, 0
    for epoch in range(1, args.epochs + 1):
        net.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, len(perm), args.batch):
            b = perm[i:i + args.batch]
            xb, yb = augment(xtr[b], gen), ytr[b]
            out = net(xb)
            loss = F.cross_entropy(out, yb)
            for p in params:
                p.grad = None
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(b)
            correct += (out.argmax(1) == yb).sum().item()
        lr_used = opt.lr
        val_loss, val_acc = evaluate(net, xva, yva)
        line = "%d,%.6f,%.6f,%.6f,%.6f,%g,%.3f" % (epoch, loss_sum / len(xtr), correct / len(xtr),
                                                   val_loss, val_acc, lr_used, time.time() - t0)
        print(line, flush=True)
        if log:
            print(line, file=log, flush=True)

        if val_acc > ck_best:  # ModelCheckpoint(val_accuracy, save_best_only)
            ck_best, ck_state, ck_epoch = val_acc, copy.deepcopy(net.state_dict()), epoch
        if val_loss < rl_best - 1e-4:  # ReduceLROnPlateau(val_loss)
            rl_best, rl_wait = val_loss, 0
        else:
            rl_wait += 1
            if rl_wait >= 8:
                opt.lr, rl_wait = opt.lr * 0.5, 0
        if val_loss < es_best:  # EarlyStopping(val_loss, restore_best_weights)
            es_best, es_wait, es_state, es_epoch = val_loss, 0, copy.deepcopy(net.state_dict()), epoch
        else:
            es_wait += 1
            if es_wait >= 15:
                break

    net.load_state_dict(es_state)
    _, train_acc = evaluate(net, xtr, ytr)
    _, val_acc = evaluate(net, xva, yva)
    _, test_acc = evaluate(net, xt, yt)
    net.load_state_dict(ck_state)
    _, ck_test = evaluate(net, xt, yt)
    print("restored (epoch %d, best val_loss): train %.4f val %.4f test %.4f"
          % (es_epoch, train_acc, val_acc, test_acc))
    print("best val_accuracy (epoch %d, %.4f): test %.4f" % (ck_epoch, ck_best, ck_test))
    print("test_accuracy=%.4f" % test_acc)


def main():
    ap = argparse.ArgumentParser(description="fmnist's training recipe in PyTorch")
    ap.add_argument("--data", default=DEBIAN_DATA, help="IDX folder (default %(default)s)")
    ap.add_argument("--model", default=DEFAULT_CFG, help="model description (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=100, help="at most this many (default 100)")
    ap.add_argument("--batch", type=int, default=64, help="batch (default 64)")
    ap.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    ap.add_argument("--seed", type=int, default=42, help="seed (default 42)")
    ap.add_argument("--threads", type=int, default=0, help="threads (default 0 = all cores)")
    ap.add_argument("--limit", type=int, default=0, help="use the first N training images")
    ap.add_argument("--log", help="also write the epoch lines to this CSV file")
    args = ap.parse_args()
    if args.epochs < 1 or args.batch < 1 or args.lr <= 0 or args.limit < 0 or args.threads < 0:
        ap.error("--epochs and --batch must be >= 1, --lr > 0, --limit and --threads >= 0")
    run(args)


if __name__ == "__main__":
    main()
