#!/usr/bin/python3
"""The PyTorch side of bench/compare: the network of a model description
(configs/fashion-cnn.cfg by default) built from torch.nn layers with the
Keras settings fmnist uses, timed the way `fmnist bench` times it.

    /usr/bin/python3 bench/torch_bench.py [--model CFG] [--threads N] [--batch N]
        [--steps N] [--warmup N] [--infer-batch N]

Training step (model.train()): zero the gradients, forward (dropout on,
BatchNorm batch statistics), cross-entropy from the logits, backward, one
Adam step. Inference batch: model.eval() under torch.no_grad(), forward and
softmax. Synthetic data: uniform random pixels and labels, seed 42, float32.
Each run is timed alone (time.perf_counter) after `warmup` untimed ones;
like fmnist bench it prints medians and ends with the two lines
    train_img_per_s=N
    infer_img_per_s=N

Keras settings in PyTorch terms: BatchNorm eps 1e-3 and momentum 0.01
(Keras's 0.99 counts the other way), conv padding "same", Glorot-uniform
weights and zero biases, Adam lr 1e-3 with eps 1e-7 (torch adds eps to the
bias-corrected sqrt(v), Keras to the uncorrected one: a different number, the
same work). Needs Debian's python3-torch (the pyenv python3 on PATH lacks it).
"""

import argparse
import os
import re
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CFG = os.path.join("configs", "fashion-cnn.cfg")


def parse_cfg(path):
    """(input (h, w, c), [(kind, {key: value})]) from a model description;
    bare values (`maxpool 2`, `dropout 0.25`) come as key "_"."""
    shape, layers = None, []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            kind, args = words[0], {}
            for w in words[1:]:
                key, _, value = w.rpartition("=")
                args[key or "_"] = value
            if kind == "input":
                shape = tuple(int(v) for v in words[1:4])
            else:
                layers.append((kind, args, "%s:%d" % (path, number)))
    if shape is None:
        sys.exit("torch_bench: %s: no input line" % path)
    return shape, layers


def activation(module, args):
    """module followed by its activation; softmax is left to the loss (training)
    and to the caller (inference)."""
    return [module, nn.ReLU()] if args.get("activation") == "relu" else [module]


def build_net(path):
    """(net, (c, h, w) of an input image, classes): an nn.Sequential from a
    model description (the layer types of README's "Model files") giving
    logits, with Keras's initialisation."""
    (h, w, c), layers = parse_cfg(path)
    image = (c, h, w)
    flat, mods = None, []  # flat: features once flattened, else None
    for kind, args, where in layers:
        if kind == "conv":
            k, stride = int(args["kernel"]), int(args.get("stride", 1))
            padding = args.get("padding", "valid")
            if padding == "same" and stride != 1:
                sys.exit("torch_bench: %s: padding=same with stride %d is not supported here"
                         % (where, stride))
            filters = int(args["filters"])
            mods += activation(nn.Conv2d(c, filters, k, stride, padding=padding), args)
            c = filters
            if padding == "same":
                h, w = -(-h // stride), -(-w // stride)
            else:
                h, w = (h - k) // stride + 1, (w - k) // stride + 1
        elif kind == "batchnorm":
            eps, momentum = float(args.get("eps", 1e-3)), float(args.get("momentum", 0.99))
            bn = nn.BatchNorm1d if flat else nn.BatchNorm2d
            mods.append(bn(flat or c, eps=eps, momentum=round(1.0 - momentum, 9)))
        elif kind == "maxpool":
            size = int(args.get("size", args.get("_", 2)))
            mods.append(nn.MaxPool2d(size, size))
            h, w = h // size, w // size
        elif kind == "dropout":
            mods.append(nn.Dropout(float(args.get("rate", args.get("_")))))
        elif kind == "flatten":
            mods.append(nn.Flatten())
            flat = c * h * w
        elif kind == "dense":
            units = int(args["units"])
            mods += activation(nn.Linear(flat, units), args)
            flat = units
        elif kind == "relu":
            mods.append(nn.ReLU())
        elif kind != "softmax":
            sys.exit("torch_bench: %s: unknown layer '%s'" % (where, kind))
    net = nn.Sequential(*mods)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net, image, flat or c


def kernels(torch):
    """PyTorch's own name for the vector code it runs ("CPU capability usage"
    in its build configuration) and whether oneDNN is on, as "kernels ..."."""
    m = re.search(r"CPU capability usage:\s*(\S+)", torch.__config__.show())
    dnn = "oneDNN" if torch.backends.mkldnn.is_available() else "no oneDNN"
    return "kernels %s (%s)" % (m.group(1) if m else "unknown", dnn)


def blas():
    """The BLAS library this process has loaded, by the folder Debian's
    alternatives keep it in ("openblas-pthread", ...; "blas" is the
    reference netlib BLAS, several times slower), as "BLAS ..."."""
    names = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if re.match(r"lib(open)?blas(64)?[._]", os.path.basename(path)):
                folder = os.path.basename(os.path.dirname(path))
                names.add("reference (netlib)" if folder == "blas" else folder)
    return "BLAS " + (", ".join(sorted(names)) if names else "unknown")


def threads_for(requested):
    """0 means all the cores this process may use (what OpenMP takes)."""
    return requested if requested > 0 else len(os.sched_getaffinity(0))


def timed(fn, warmup, steps):
    """Seconds of each of `steps` calls of fn, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def run(args):
    threads = threads_for(args.threads)
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    net, image, classes = build_net(args.model)
    n = max(args.batch, args.infer_batch)
    x = torch.rand(n, *image, dtype=torch.float32)
    y = torch.randint(0, classes, (n,))
    xt, yt, xi = x[: args.batch], y[: args.batch], x[: args.infer_batch]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)

    def train_step():
        opt.zero_grad()
        loss = F.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()

    def infer_batch():
        with torch.no_grad():
            net(xi).softmax(dim=1)

    net.train()
    train_t = timed(train_step, args.warmup, args.steps)
    net.eval()
    infer_t = timed(infer_batch, args.warmup, args.steps)

    params = sum(p.numel() for p in net.parameters())
    tm, im = statistics.median(train_t), statistics.median(infer_t)
    print("torch_bench: %s, %d trainable parameters, PyTorch %s, %s, %s, %d thread%s"
          % (args.model, params, torch.__version__, kernels(torch), blas(), threads,
             "" if threads == 1 else "s"))
    print("synthetic data; %d warm-up run%s, then %d timed"
          % (args.warmup, "" if args.warmup == 1 else "s", args.steps))
    print("training  batch %4d: step median %9.3f ms (fastest %9.3f ms) %10.1f images/s"
          % (args.batch, 1e3 * tm, 1e3 * min(train_t), args.batch / tm))
    print("inference batch %4d: batch median %8.3f ms (fastest %9.3f ms) %10.1f images/s"
          % (args.infer_batch, 1e3 * im, 1e3 * min(infer_t), args.infer_batch / im))
    print("train_img_per_s=%.2f" % (args.batch / tm))
    print("infer_img_per_s=%.2f" % (args.infer_batch / im))


def positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1 (got %d)" % v)
    return v


def main():
    ap = argparse.ArgumentParser(description="PyTorch twin of `fmnist bench` (see bench/compare)")
    ap.add_argument("--model", default=DEFAULT_CFG, help="model description (default %(default)s)")
    ap.add_argument("--threads", type=int, default=0, help="threads (default 0 = all cores)")
    ap.add_argument("--batch", type=positive, default=64, help="training batch (default 64)")
    ap.add_argument("--steps", type=positive, default=30, help="timed runs of each (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    ap.add_argument("--infer-batch", type=positive, default=500,
                    help="inference batch (default 500)")
    args = ap.parse_args()
    if args.threads < 0 or args.warmup < 0:
        ap.error("--threads and --warmup must be >= 0")
    run(args)


if __name__ == "__main__":
    main()
