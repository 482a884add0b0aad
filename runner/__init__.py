"""khmer-digits-ocr: a Hydra-configured experiment runner for Khmer digit-sequence OCR."""

__version__ = "0.1.0"
