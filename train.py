"""The seed's command: train the seed's CNN on MNIST and save it.

    python train.py            # same as: digitlens train --arch seed
    python train.py --help     # every option of `digitlens train`

Conv2D 32 3x3 ReLU, Conv2D 64 3x3 ReLU, MaxPool 2x2, Dropout 0.25, Flatten, Dense 128 ReLU, Dropout 0.5,
Dense 10 softmax; Adadelta at lr 1.0, batch 128, 12 epochs. Writes runs/seed/model.onnx (and
mymodel2.onnx here, beside where the seed's Keras script wrote mymodel2.h5).
"""
import sys

from digitlens.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--arch" not in args:
        args = ["--arch", "seed", *args]
    if "--export" not in args and "-h" not in args and "--help" not in args:
        args = [*args, "--export", "mymodel2.onnx"]
    sys.exit(main(["train", *args]))
