"""Convert scikit-learn's bundled copy of the UCI 8x8 hand-written digits into digits.bin.

Run once from the repository root (no download: the data ships inside scikit-learn):

    python data/digits/convert.py

Format of digits.bin (little-endian), read by data/digits.ts:

    bytes 0..7    ASCII magic "DIGITS01"
    bytes 8..11   uint32 n, number of images (1797)
    bytes 12..15  uint32 f, pixels per image (64, an 8x8 image in row-major order)
    next n*f      uint8 pixels, integers 0..16, image after image
    next n        uint8 labels, digits 0..9

The rows keep scikit-learn's order, so row i here is load_digits().data[i].
"""

import hashlib
import os
import struct

import numpy as np
import sklearn
from sklearn.datasets import load_digits

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.bin")


def main() -> None:
    digits = load_digits()
    pixels = digits.data
    labels = digits.target
    # The pixels are stored as float64 but are integer counts 0..16; check before narrowing.
    assert pixels.shape == (1797, 64), pixels.shape
    assert np.all(pixels == np.round(pixels)) and pixels.min() >= 0 and pixels.max() <= 16
    assert labels.min() >= 0 and labels.max() <= 9

    n, f = pixels.shape
    blob = (
        b"DIGITS01"
        + struct.pack("<II", n, f)
        + pixels.astype(np.uint8).tobytes(order="C")
        + labels.astype(np.uint8).tobytes()
    )
    with open(OUT, "wb") as fh:
        fh.write(blob)

    print(f"scikit-learn {sklearn.__version__}: wrote {OUT} ({len(blob)} bytes)")
    print("sha256", hashlib.sha256(blob).hexdigest())
    print("label counts", np.bincount(labels, minlength=10).tolist())


if __name__ == "__main__":
    main()
