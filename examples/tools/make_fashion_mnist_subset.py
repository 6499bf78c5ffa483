#!/usr/bin/env python3
"""Cut the embedded Fashion-MNIST subset shipped in distill-examples.

Reads the full dataset (Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist) and writes a
class-balanced random subset in the same IDX format, gzip-compressed with a fixed header time so the
output is byte-for-byte reproducible:

  train: 1,000 images per class (10,000) drawn from the 60,000 training images
  test:    200 images per class  (2,000) drawn from the 10,000 test images

Selection: Python's random.Random(SEED).sample over each class's indices, then the chosen indices in
ascending order (the original order is kept). Usage:

  python3 examples/tools/make_fashion_mnist_subset.py [SOURCE_DIR] [OUT_DIR]
"""
import gzip
import os
import random
import struct
import sys

SEED = 20261122
PER_CLASS = {"train": 1000, "t10k": 200}
SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    os.path.dirname(__file__), "..", "src", "main", "resources", "distill4j", "datasets", "fashion-mnist-subset")


def read(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08, path
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]


def write(path, shape, body):
    header = struct.pack(">HBB", 0, 0x08, len(shape)) + struct.pack(">" + "I" * len(shape), *shape)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as f:
            f.write(header + body)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(SEED)
    for split, per_class in PER_CLASS.items():
        (n, rows, cols), pixels = read(os.path.join(SRC, f"{split}-images-idx3-ubyte.gz"))
        (n_labels,), labels = read(os.path.join(SRC, f"{split}-labels-idx1-ubyte.gz"))
        assert n == n_labels
        chosen = []
        for c in range(10):
            idx = [i for i in range(n) if labels[i] == c]
            chosen.extend(rng.sample(idx, per_class))
        chosen.sort()
        size = rows * cols
        write(os.path.join(OUT, f"{split}-images-idx3-ubyte.gz"), (len(chosen), rows, cols),
              b"".join(pixels[i * size:(i + 1) * size] for i in chosen))
        write(os.path.join(OUT, f"{split}-labels-idx1-ubyte.gz"), (len(chosen),), bytes(labels[i] for i in chosen))
        print(f"{split}: {len(chosen)} samples")


if __name__ == "__main__":
    main()
