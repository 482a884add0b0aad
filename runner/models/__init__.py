"""OCR models and the preset factory.

    from runner.models import create_model
    model = create_model("small")                    # conf/model/small.yaml, 32x128, max_length 8
    model = create_model("ctc_small", image_width=96)
    model = create_model("ctc_small", charset="numbers", max_length=20, image_width=168)

Every model has `head` ("attention" or "ctc"), `name`, `max_length`, `forward`, `decode_logits`,
`predict`, `predict_with_confidence` and `config_dict` (see runner/models/encoder.py).
"""

from __future__ import annotations

from runner.models.attention import AttentionOCR
from runner.models.config import AttentionModelConfig, CTCModelConfig, register_model_configs
from runner.models.ctc import CRNN
from runner.models.encoder import OCRModel
from runner.models.presets import available_presets, create_model, preset_config
from runner.models.registry import MODEL_CLASSES, model_from_config

__all__ = [
    "AttentionOCR", "CRNN", "OCRModel", "AttentionModelConfig", "CTCModelConfig", "MODEL_CLASSES", "available_presets",
    "create_model", "model_from_config", "preset_config", "register_model_configs",
]
