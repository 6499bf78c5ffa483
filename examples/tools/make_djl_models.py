#!/usr/bin/python3
"""Make the foreign (DJL) teachers that Distill4J ships, with Debian's PyTorch.

Needs Debian's python3-torch (1.13; `apt-get install python3-torch`), run with /usr/bin/python3.
Two jobs:

  fixtures  distill-core/src/test/resources/djl/tiny-mlp.{onnx,pt,json}
            A 13-6-5 tanh MLP with random weights, two outputs ("hidden" [N,6] and "logits" [N,5]) and a
            dynamic batch axis. The JSON holds the exact float32 weights, so the Java tests compute a
            float64 reference and check what DJL returns, value by value, on both engines.

  teacher   examples/models/fashion-mnist/cnn-teacher.{onnx,pt,json}
            A small CNN (conv 16 - conv 32 - fc 128 - fc 10, ~210k parameters) trained on the 60,000
            Fashion-MNIST training images (Debian's dataset-fashion-mnist), 8 epochs of Adam 1e-3, batch
            128, seed 20261122. Input "pixels" [N, 784] in [0, 1] (byte / 255, as Distill4J reads IDX
            files); outputs "logits" [N, 10] and "embedding" [N, 128] (the penultimate ReLU, for feature
            losses). The TorchScript twin returns the same pair as a tuple. The JSON records test
            accuracy on the 10,000 test images, the torch version, settings and the SHA-256 of both files.

Usage:  /usr/bin/python3 examples/tools/make_djl_models.py fixtures|teacher|all [FASHION_MNIST_DIR]

Re-running gives the same weights on the same machine and torch build (fixed seeds, deterministic
algorithms); other CPUs may differ in the last bits, so the shipped files, not this script, are the
reference the tests and the README numbers use.
"""
import hashlib
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fashion_mnist_subset  # noqa: E402  (the IDX reader)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "distill-core", "src", "test", "resources", "djl")
MODELS = os.path.join(ROOT, "examples", "models", "fashion-mnist")
SEED = 20261122


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def export(model, example, onnx_path, pt_path, input_name, output_names):
    model.eval()
    torch.onnx.export(model, (example,), onnx_path, input_names=[input_name], output_names=output_names,
                      dynamic_axes={input_name: {0: "batch"}, **{o: {0: "batch"} for o in output_names}},
                      opset_version=13, do_constant_folding=True)
    traced = torch.jit.trace(model, (example,))
    traced.save(pt_path)


class TinyMlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(13, 6)
        self.b = nn.Linear(6, 5)

    def forward(self, x):
        h = torch.tanh(self.a(x))
        return h, self.b(h)


def fixtures():
    torch.manual_seed(SEED)
    m = TinyMlp()
    with torch.no_grad():  # wide weights, so the logits are far from zero and differ per class
        m.a.weight.uniform_(-1.5, 1.5)
        m.a.bias.uniform_(-0.5, 0.5)
        m.b.weight.uniform_(-3, 3)
        m.b.bias.uniform_(-1, 1)
    os.makedirs(FIXTURES, exist_ok=True)
    onnx_path = os.path.join(FIXTURES, "tiny-mlp.onnx")
    pt_path = os.path.join(FIXTURES, "tiny-mlp.pt")
    export(m, torch.randn(3, 13), onnx_path, pt_path, "x", ["hidden", "logits"])
    weights = {
        "about": "tiny-mlp: hidden = tanh(x A^T + a), logits = hidden B^T + b; float32 weights, row-major "
                 "[out][in]; made by examples/tools/make_djl_models.py fixtures",
        "torch": torch.__version__,
        "A": m.a.weight.tolist(), "a": m.a.bias.tolist(),
        "B": m.b.weight.tolist(), "b": m.b.bias.tolist(),
        "sha256": {"tiny-mlp.onnx": sha256(onnx_path), "tiny-mlp.pt": sha256(pt_path)},
    }
    with open(os.path.join(FIXTURES, "tiny-mlp.json"), "w") as f:
        json.dump(weights, f, indent=1)
        f.write("\n")
    print("fixtures written to", FIXTURES)


def read_idx(path):
    shape, body = make_fashion_mnist_subset.read(path)
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)


class CnnTeacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(32 * 7 * 7, 128)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(128, 10)

    def forward(self, pixels):
        x = self.features(pixels.reshape(-1, 1, 28, 28))
        embedding = torch.relu(self.fc(x.flatten(1)))
        return self.head(self.drop(embedding)), embedding


def teacher(data_dir):
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    x = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz")).reshape(-1, 784).float() / 255
    y = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz")).long()
    tx = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz")).reshape(-1, 784).float() / 255
    ty = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz")).long()
    m = CnnTeacher()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    epochs, batch = 8, 128
    g = torch.Generator().manual_seed(SEED)
    for epoch in range(epochs):
        m.train()
        perm = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            logits, _ = m(x[idx])
            loss = nn.functional.cross_entropy(logits, y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        acc = accuracy(m, tx, ty)
        print(f"epoch {epoch + 1}: train loss {total / len(x):.4f}, test accuracy {acc:.4f}", flush=True)
    m.eval()
    os.makedirs(MODELS, exist_ok=True)
    onnx_path = os.path.join(MODELS, "cnn-teacher.onnx")
    pt_path = os.path.join(MODELS, "cnn-teacher.pt")
    export(m, x[:4], onnx_path, pt_path, "pixels", ["logits", "embedding"])
    meta = {
        "about": "Fashion-MNIST CNN teacher for Distill4J's DJL recipes; made by examples/tools/make_djl_models.py teacher",
        "input": {"name": "pixels", "shape": ["batch", 784], "range": "[0, 1] = byte / 255"},
        "outputs": {"logits": ["batch", 10], "embedding": ["batch", 128]},
        "parameters": sum(p.numel() for p in m.parameters()),
        "training": {"data": "Fashion-MNIST train (60,000)", "epochs": epochs, "batch": batch, "optimizer": "Adam 1e-3",
                     "dropout": 0.3, "seed": SEED},
        "test_accuracy": round(accuracy(m, tx, ty), 4),
        "torch": torch.__version__,
        "sha256": {"cnn-teacher.onnx": sha256(onnx_path), "cnn-teacher.pt": sha256(pt_path)},
    }
    with open(os.path.join(MODELS, "cnn-teacher.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print("teacher written to", MODELS, "test accuracy", meta["test_accuracy"])


def accuracy(m, x, y):
    m.eval()
    with torch.no_grad():
        correct = sum((m(x[i:i + 1000])[0].argmax(1) == y[i:i + 1000]).sum().item() for i in range(0, len(x), 1000))
    return correct / len(x)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    data = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    if what not in ("fixtures", "teacher", "all"):
        sys.exit(__doc__)
    if what in ("fixtures", "all"):
        fixtures()
    if what in ("teacher", "all"):
        teacher(data)
