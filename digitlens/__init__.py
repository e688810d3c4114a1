"""digitlens: handwritten digit recognition from MNIST to photos, live video and the browser.

    from digitlens import Recognizer
    reading = Recognizer.load().read(image)   # numbers and digits, with boxes and confidence
"""
from typing import Any

__version__ = "0.1.0"
__all__ = ["Recognizer", "Reading", "Digit", "Number", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import digitlens` (and `digitlens --help`) stays fast; OpenCV and onnxruntime load on first use.
    if name == "Recognizer":
        from digitlens.recognizer import Recognizer
        return Recognizer
    if name in ("Reading", "Digit", "Number"):
        from digitlens import reading
        return getattr(reading, name)
    raise AttributeError(f"module 'digitlens' has no attribute {name!r}")
