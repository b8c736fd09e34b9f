#!/usr/bin/python3
"""Independent reference for the augmentation blocks of src/train/augment.h
(flip, translate, random erasing, and their order after the affine), for
tests/test_augment.c. The fixture is committed, so the C test needs no Python.

Regenerate from the repository root with Debian's python3-torch and
python3-numpy (the pyenv `python3` on PATH lacks them):

    /usr/bin/python3 tests/torch/gen_augment_fixture.py

It is deterministic and rewrites tests/fixtures/torch_augment_blocks.safetensors.

How it is independent. torchvision is not installed here, so its rules are
written out from its source (torchvision/transforms/transforms.py,
RandomHorizontalFlip, RandomCrop with padding, RandomErasing.get_params and
F.erase), as PyTorch tensor operations where there is one: torch.flip,
F.pad then a crop, slice assignment. Only torchvision's random calls are
replaced, by `Draws` below, fed the same stream of uniforms the C code reads:
fm_rng (xoshiro256** seeded through splitmix64, Blackman and Vigna's published
algorithm, ported in `Xoshiro`; the fixture keeps its first uniforms so a wrong
port shows as such). Each torch call becomes one uniform u in [0, 1):
  torch.rand(1)                 u
  empty(1).uniform_(a, b)       a + (b - a) u   (torch's own formula)
  torch.randint(lo, hi)         lo + floor(u (hi - lo))
The project's semantics differ from torchvision's in three chosen ways, and
the reference follows the project: the fill noise is uniform [0, 1), not
normal; it is drawn after top and left, not before; and the translation is
drawn as a shift dx, dy = randint(-N, N + 1) (x then y) and applied as a crop
of the zero-padded image at (N - dy, N - dx), where RandomCrop draws the crop
corner top first. The affine (fm__aug_draw's four uniforms, then the warp) is
tests/torch/gen_fixtures.py's numpy warp, checked there against
torch.grid_sample.

Conditioning. h and w are round(sqrt(...)) of float64 values; the C side
computes the same formulas in double, but a value within rounding of a
half-integer could round the other way there, so the script asserts every
such value is at least 1e-9 from a half-integer (it prints the closest).

Fixture (float32; integers exactly, seeds below 2^24):
  rng.seed (1), rng.uniforms (32)   the first fm_rng_uniform values of the seed
  rect.params (K,4)   erase_prob, area_min, area_max, aspect_min
  rect.seeds (K)      each case's generator seed
  rect.draws (K,M,5)  M successive fm__aug_erase_draw(28 x 28) results:
                      erased (0/1), top, left, h, w (zeros when not erased)
  rect.after (K)      the uniform that follows the M draws (so every draw
                      used as many uniforms as the reference)
  batch.images (5,28,28)  bytes as float32; batch.idx (4) the batch's indices
  aug.params (C,8)    affine, flip, translate, erase_prob, area_min, area_max,
                      aspect_min, erase_random_fill: an fm__aug_params
  aug.seeds (C), aug.out (C,4,28,28), aug.after (C)
                      fm__aug_batch's output from that seed and the uniform
                      after it. Exact where affine is 0 (values are moved,
                      zeroed or uniforms, all float32); the affine cases
                      carry the warp's float rounding (TOL_AUG in the C test).
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import OUT, save_safetensors, synth_batch, warp_numpy  # noqa: E402

H = W = 28
M64 = (1 << 64) - 1
closest_half = [1.0]  # the conditioning margin seen


class Xoshiro:
    """fm_rng: xoshiro256** with its state seeded by four splitmix64 outputs;
    a uniform is the top 24 bits of an output over 2^24."""

    def __init__(self, seed):
        self.s, x = [], seed
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    def next(self):
        s = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M64
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next() >> 40) / 16777216.0


class Draws:
    """torchvision's random calls, each one uniform from the stream."""

    def __init__(self, seed):
        self.g = Xoshiro(seed)

    def rand(self):
        return self.g.uniform()

    def uniform_(self, a, b):
        return a + (b - a) * self.g.uniform()

    def randint(self, lo, hi):
        return lo + math.floor(self.g.uniform() * (hi - lo))


def f32(x):
    """A setting as the C side holds it (a float)."""
    return float(np.float32(x))


def rounded(v):
    """int(round(v)) as torchvision writes it (Python rounds ties to even),
    noting how close v came to a tie."""
    closest_half[0] = min(closest_half[0], abs(v - math.floor(v) - 0.5))
    return int(round(v))


def erasing_params(d, img_h, img_w, scale, ratio):
    """RandomErasing.get_params: (i, j, h, w), or None where torchvision
    returns the image unchanged (no attempt fitted). The value is drawn by
    the caller, after i and j (the project's order)."""
    area = img_h * img_w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        erase_area = area * d.uniform_(scale[0], scale[1])
        aspect_ratio = math.exp(d.uniform_(log_ratio[0], log_ratio[1]))
        h = rounded(math.sqrt(erase_area * aspect_ratio))
        w = rounded(math.sqrt(erase_area / aspect_ratio))
        if not (h < img_h and w < img_w):
            continue
        i = d.randint(0, img_h - h + 1)
        j = d.randint(0, img_w - w + 1)
        return i, j, h, w
    return None


def erasing_decision(d, p, scale, aspect_min):
    """RandomErasing.forward's choice: `if torch.rand(1) < p`, then
    get_params with ratio (a, 1/a). (chosen, rect): rect None when the image
    stays. p 0 is the block switched off: no draw."""
    if p == 0 or not d.rand() < p:
        return False, None
    return True, erasing_params(d, H, W, scale, (aspect_min, 1.0 / aspect_min))


def augment_one(img, prm, d):
    """One image through the blocks in the project's order."""
    affine, flip, n, p, amin, amax, asp, random_fill = prm
    n = int(n)
    if affine:
        angle = (2.0 * d.rand() - 1.0) * 10.0
        zx = 1.0 + (2.0 * d.rand() - 1.0) * 0.1
        zy = 1.0 + (2.0 * d.rand() - 1.0) * 0.1
        mirror = d.rand() < 0.5
        x = torch.from_numpy(warp_numpy(img.astype(np.float64), angle, zx, zy, mirror)).float()
    else:
        x = torch.from_numpy(np.float32(img) / np.float32(255.0))  # float32 x / 255, as C
    if flip and d.rand() < 0.5:  # RandomHorizontalFlip
        x = torch.flip(x, [1])
    if n > 0:  # pad-and-crop
        dx, dy = d.randint(-n, n + 1), d.randint(-n, n + 1)
        padded = F.pad(x[None, None], (n, n, n, n), mode="constant", value=0.0)[0, 0]
        x = padded[n - dy:n - dy + H, n - dx:n - dx + W].clone()
    _, r = erasing_decision(d, p, (amin, amax), asp)
    if r is not None:  # F.erase: img[..., i:i + h, j:j + w] = v
        i, j, h, w = r
        v = torch.tensor([[d.rand() for _ in range(w)] for _ in range(h)]) if random_fill else 0.0
        x[i:i + h, j:j + w] = v
    return x.numpy()


def gen():
    out = {}
    seed = 20240612
    g = Xoshiro(seed)
    out["rng.seed"] = np.float32([seed])
    out["rng.uniforms"] = np.float32([g.uniform() for _ in range(32)])

    # erasing rectangles: (p, area_min, area_max, aspect_min)
    rect_cases = [(0.5, 0.02, 0.33, 0.3),   # the recipe defaults, p 1/2
                  (1.0, 0.02, 0.33, 0.3),
                  (1.0, 0.3, 0.9, 0.2),     # big and long: many attempts fail
                  (1.0, 1.0, 1.0, 1.0),     # 28 x 28 never fits: 21 draws, no erase
                  (0.25, 0.1, 0.1, 1.0),    # always 9 x 9 (sqrt(78.4) = 8.85)
                  (1.0, 0.02, 0.4, 0.5)]
    M = 300
    params, seeds, draws, after = [], [], [], []
    for k, (p, amin, amax, asp) in enumerate(rect_cases):
        prm = tuple(f32(v) for v in (p, amin, amax, asp))
        s = 1000 + k
        d = Draws(s)
        rows, erased, fails = [], 0, 0
        for _ in range(M):
            chosen, r = erasing_decision(d, prm[0], (prm[1], prm[2]), prm[3])
            rows.append((1, *r) if r else (0, 0, 0, 0, 0))
            erased += r is not None
            fails += chosen and r is None
        params.append(prm)
        seeds.append(s)
        draws.append(rows)
        after.append(d.rand())
        print("rect case %d (p %.3g, area %.3g..%.3g, aspect from %.3g): %d of %d erased, "
              "%d with no attempt fitting" % (k, *prm, erased, M, fails))
    out["rect.params"] = np.float32(params)
    out["rect.seeds"] = np.float32(seeds)
    out["rect.draws"] = np.float32(draws)
    out["rect.after"] = np.float32(after)

    imgs = np.rint(synth_batch(np.random.default_rng(20240613), 5)[0][:, 0] * 255.0)
    imgs[:, 3:6, 2:12] = 255.0  # an off-centre bar: a moved or erased image shows it
    idx = [4, 0, 2, 2]
    # affine, flip, translate, erase_prob, area_min, area_max, aspect_min, random_fill
    aug_cases = [(0, 0, 0, 0, 0.02, 0.33, 0.3, 0),      # all off: the scaled input, no draws
                 (0, 1, 0, 0, 0.02, 0.33, 0.3, 0),      # flip
                 (0, 0, 3, 0, 0.02, 0.33, 0.3, 0),      # translate 3
                 (0, 0, 27, 0, 0.02, 0.33, 0.3, 0),     # translate 27, the most
                 (0, 0, 0, 1, 0.02, 0.33, 0.3, 0),      # erase, zero fill
                 (0, 0, 0, 0.5, 0.05, 0.5, 0.4, 1),     # erase, random fill
                 (0, 1, 2, 0.5, 0.02, 0.33, 0.3, 1),    # flip, translate, erase
                 (1, 0, 0, 0, 0.02, 0.33, 0.3, 0),      # the notebook's affine alone
                 (1, 0, 4, 1, 0.02, 0.33, 0.3, 1),      # affine, translate, erase
                 (0, 0, 1, 1, 1.0, 1.0, 1.0, 0)]        # erase never fits, then translate
    params, seeds, outs, after = [], [], [], []
    for k, c in enumerate(aug_cases):
        prm = tuple(f32(v) for v in c)
        s = 2000 + k
        d = Draws(s)
        outs.append([augment_one(imgs[i], prm, d) for i in idx])
        params.append(prm)
        seeds.append(s)
        after.append(d.rand())
    # all off: the input itself
    assert np.array_equal(np.float32(outs[0]), np.float32(imgs[idx]) / np.float32(255.0))
    out["batch.images"] = np.float32(imgs)
    out["batch.idx"] = np.float32(idx)
    out["aug.params"] = np.float32(params)
    out["aug.seeds"] = np.float32(seeds)
    out["aug.out"] = np.float32(outs)
    out["aug.after"] = np.float32(after)

    assert closest_half[0] > 1e-9, closest_half[0]
    print("closest to a rounding tie of h or w: %.3g" % closest_half[0])
    path = os.path.join(OUT, "torch_augment_blocks.safetensors")
    save_safetensors(path, out)
    print("%s: %d bytes" % (os.path.relpath(path), os.path.getsize(path)))


if __name__ == "__main__":
    gen()
