"""khmer-digits-ocr: a Hydra-configured experiment runner for Khmer digit-sequence OCR.

    from runner import Reader
    reader = Reader("model.onnx")        # or a checkpoint / run dir; Reader() is the shipped model
    reader.read("scan.png")              # Reading(text='១២៣', confidence=0.99, value='123')

`import runner` imports nothing heavy: `Reader` is loaded on first use (runner.lazy), and an ONNX
model reads without torch.
"""

from runner.lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_exports(__name__, {"reader": ("Reader", "Reading")})
