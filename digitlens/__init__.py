"""digitlens: handwritten digit recognition from MNIST to photos, live video and the browser."""
__version__ = "0.1.0"
