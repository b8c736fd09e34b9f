"""Checks an ONNX file written by `fmnist export` with tools that share no code
with fmnist: onnx's own checker (full check, strict shape inference) and
OpenCV's DNN module, which runs it on the Fashion-MNIST test images. OpenCV's
classes must equal fmnist's and its probabilities agree to 1e-4.

With test-time augmentation (flip) the graph must be the network twice on
one set of initializers, once on the input and once on its mirror (a MatMul
with the exchange matrix), then Add and Mul by 0.5; and OpenCV's output for
the mirrored images must equal its output for the images, as the mean of the
two passes is the same either way.

usage: check_onnx.py MODEL.onnx PROBS.f32 DATA_DIR COUNT TTA
  PROBS.f32  fmnist's probabilities for the first COUNT test images,
             COUNT x 10 float32 in this machine's byte order (fm_model_predict)
  DATA_DIR   folder with t10k-images-idx3-ubyte.gz
  TTA        the test-time augmentation the export must have: none or flip

Exit status: 0 pass, 1 fail, 77 skipped (python3-onnx / python3-opencv missing).
Run with Debian's /usr/bin/python3, which sees those packages.
"""
import gzip
import json
import sys

try:
    import cv2
    import numpy as np
    import onnx
    from onnx import numpy_helper
except ImportError as e:
    print(f"SKIPPED: {e}: apt-get install python3-onnx python3-opencv", file=sys.stderr)
    sys.exit(77)

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
ALLOWED_OPS = {"Conv", "Relu", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool",
               "Flatten", "Gemm", "Softmax"}
TTA_OPS = {"MatMul", "Add", "Mul"}  # the mirror and the mean, with flip only
TOL = 1e-4
# Below this gap between fmnist's two best classes, float rounding may
# legitimately pick either; such images are not counted as disagreements.
TIE = 1e-5

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg, file=sys.stderr)


def dims(value_info):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in value_info.type.tensor_type.shape.dim]


def check_tta(g):
    """The flip graph: mirror, two equal branches sharing initializers, mean."""
    nodes, inits = list(g.node), {t.name: numpy_helper.to_array(t) for t in g.initializer}
    check(len(inits) == len(g.initializer), "initializer names are unique")
    first, add, mul = nodes[0], nodes[-2], nodes[-1]
    check(first.op_type == "MatMul" and list(first.input) == ["input", "tta/mirror"],
          f"the graph starts by mirroring the input, got {first.op_type} {list(first.input)}")
    w = g.input[0].type.tensor_type.shape.dim[3].dim_value
    mirror = inits.get("tta/mirror")
    check(mirror is not None and np.array_equal(mirror, np.eye(w, dtype=np.float32)[::-1]),
          "tta/mirror is the exchange matrix of the width")
    body = nodes[1:-2]
    half = len(body) // 2
    a, b = body[:half], body[half:]
    check(len(a) == len(b) and [n.op_type for n in a] == [n.op_type for n in b],
          "the mirrored branch has the plain branch's nodes")
    outs = {o for n in a for o in n.output}
    check(a and a[0].input[0] == "input" and b and b[0].input[0] == first.output[0],
          "one branch reads the input, the other the mirror")
    for x, y in zip(a, b):
        # the same initializers; data inputs are the branch's own tensors
        same = [i for i in x.input if i not in outs and i != "input"]
        check(same == [i for i in y.input if i in inits],
              f"{y.name} reads {list(y.input)}, not {x.name}'s initializers")
    check(a[-1].op_type == "Softmax" and b[-1].op_type == "Softmax", "each branch ends in Softmax")
    check(add.op_type == "Add" and set(add.input) == {a[-1].output[0], b[-1].output[0]},
          "Add of the two softmax outputs")
    check(mul.op_type == "Mul" and mul.input[0] == add.output[0] and
          float(inits.get(mul.input[1], np.nan)) == 0.5 and mul.output[0] == "probabilities",
          "probabilities = 0.5 * the sum")


def check_structure(path, tta):
    onnx.checker.check_model(path, full_check=True)  # raises on any violation
    m = onnx.load(path)
    check([(o.domain, o.version) for o in m.opset_import] == [("", 13)],
          f"opset_import {m.opset_import}")
    g = m.graph
    check(len(g.input) == 1 and g.input[0].name == "input", "one graph input named 'input'")
    in_dims = dims(g.input[0])
    check(len(in_dims) == 4 and isinstance(in_dims[0], str) and in_dims[1:] == [1, 28, 28],
          f"input shape (N,1,28,28) with a symbolic N, got {in_dims}")
    check(g.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT, "input is float")
    check(len(g.output) == 1 and g.output[0].name == "probabilities",
          "one graph output named 'probabilities'")
    out_dims = dims(g.output[0])
    check(len(out_dims) == 2 and isinstance(out_dims[0], str) and out_dims[1] == 10,
          f"output shape (N,10) with a symbolic N, got {out_dims}")
    check(m.producer_name == "fmnist" and m.producer_version != "",
          f"producer {m.producer_name!r} version {m.producer_version!r}")
    ops = [n.op_type for n in g.node]
    allowed = ALLOWED_OPS | (TTA_OPS if tta == "flip" else set())
    check(set(ops) <= allowed, f"unexpected ops {set(ops) - allowed}")
    meta = {p.key: p.value for p in m.metadata_props}
    check(meta.get("test_time_augmentation") == tta,
          f"metadata test_time_augmentation {meta.get('test_time_augmentation')!r}, expected {tta!r}")
    if tta == "flip":
        check_tta(g)
    else:
        check(ops[-1] == "Softmax", "the graph ends in Softmax")
    check(json.loads(meta.get("class_names", "null")) == CLASS_NAMES,
          f"metadata class_names: {meta.get('class_names')}")
    check("/ 255" in meta.get("input_normalization", ""), "metadata input_normalization")
    check("255" in m.doc_string, "doc_string documents the /255 input scaling")
    desc = meta.get("model_description", "")
    check("input" in desc and "conv" in desc, "metadata model_description holds the description")
    # the symbolic batch survives strict shape inference through every node
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    for v in inferred.graph.value_info:
        d = dims(v)
        check(d and isinstance(d[0], str), f"{v.name}: batch dim not symbolic: {d}")
    return ops


def load_images(data_dir, count):
    with gzip.open(f"{data_dir}/t10k-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[4:8], "big")
    if count > n:
        sys.exit(f"FAIL: asked for {count} images, the test set has {n}")
    px = np.frombuffer(raw, np.uint8, count * 784, 16)
    return px.reshape(count, 1, 28, 28).astype(np.float32) / 255.0


def main():
    if len(sys.argv) != 6 or sys.argv[5] not in ("none", "flip"):
        sys.exit(__doc__)
    path, probs_path, data_dir, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    tta = sys.argv[5]
    ops = check_structure(path, tta)
    print(f"onnx checker: ok ({len(ops)} nodes: {' '.join(ops)})")

    ref = np.fromfile(probs_path, np.float32)
    check(ref.size == count * 10, f"{probs_path}: {ref.size} floats, expected {count * 10}")
    ref = ref.reshape(-1, 10)
    x = load_images(data_dir, count)

    net = cv2.dnn.readNetFromONNX(path)

    def run(images):
        out = []
        for i in range(0, count, 500):  # bounded memory, and a batch size other than 1
            net.setInput(np.ascontiguousarray(images[i:i + 500]))
            out.append(net.forward().copy())
        return np.concatenate(out)
    got = run(x)
    check(got.shape == ref.shape, f"OpenCV output shape {got.shape}, expected {ref.shape}")
    if failures:
        return 1

    diff = np.abs(got - ref).max()
    check(diff <= TOL, f"probabilities differ by up to {diff:.3g} (tolerance {TOL})")
    top2 = np.sort(ref, axis=1)[:, -2:]
    ties = top2[:, 1] - top2[:, 0] < TIE
    pred_cv, pred_fm = got.argmax(1), ref.argmax(1)
    wrong = np.flatnonzero((pred_cv != pred_fm) & ~ties)
    check(wrong.size == 0, f"{wrong.size} images classified differently, first {wrong[:10]}")
    check(ties.mean() < 0.01, f"{ties.sum()} near-ties: the model under test is degenerate")
    mirrored = ""
    if tta == "flip":
        dm = np.abs(run(x[..., ::-1]) - got).max()
        check(dm <= 1e-6, f"the mirrored images' probabilities differ by up to {dm:.3g}")
        mirrored = f"; mirrored images: max |dp| {dm:.3g}"
    hist = np.bincount(pred_fm, minlength=10)
    print(f"OpenCV {cv2.__version__} on {count} images: max |dp| {diff:.3g}, "
          f"{count - wrong.size} of {count} classes equal ({ties.sum()} near-ties), "
          f"fmnist's classes histogram {hist.tolist()}{mirrored}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
