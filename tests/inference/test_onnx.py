"""runner/inference/onnx.py: an exported model reads images with numpy, Pillow and onnxruntime alone, as its
checkpoint does with torch."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from runner.data.preprocess import load_image, preprocess_image
from runner.errors import CheckpointError
from runner.inference.metadata import sidecar_path, write_sidecar
from runner.inference.onnx import OnnxModel

from .helpers import digits_image

REPO = Path(__file__).resolve().parents[2]
# Packages an ONNX deployment does not install: importing any of them fails in the child process.
BLOCKED = ("torch", "onnx", "omegaconf", "hydra", "yaml")

BLOCKER = f"""
import sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is not installed in this test (an ONNX-only deployment)")
        return None

sys.meta_path.insert(0, Blocked())
"""

CHILD = """
import json, sys
import numpy as np
from PIL import Image
from runner import Reader
from runner.inference.onnx import OnnxModel

model_path, image_path = sys.argv[1:3]
reading = Reader(model_path).read(image_path)
model = OnnxModel(model_path)
texts, confidences, char_confidences = model.read_pixels(np.stack([model.preprocess_pixels(Image.open(image_path))]))
try:
    import torch
    torch_blocked = False
except ImportError:
    torch_blocked = True
third_party = sorted({name.split(".")[0] for name in sys.modules if not name.startswith("_")}
                     - set(sys.stdlib_module_names))
print(json.dumps({"reader": [reading.text, reading.confidence, reading.value, list(reading.char_confidences)],
                  "model": [texts[0], confidences[0], char_confidences[0]],
                  "torch_blocked": torch_blocked, "third_party": third_party}))
"""


def run_without_torch(tmp_path: Path, *args: str) -> dict:
    """CHILD in a fresh interpreter where importing torch (and the other BLOCKED packages) fails."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_onnx_model_reads_like_its_checkpoint_in_a_process_without_torch(predictor, onnx_model, tmp_path):
    image_path = tmp_path / "digits.png"
    digits_image("៣៦៩", (140, 50)).save(image_path)
    expected_texts, expected_confidences, expected_char_confidences = predictor.predict(preprocess_image(load_image(image_path)).unsqueeze(0))

    child = run_without_torch(tmp_path, str(onnx_model), str(image_path))  # onnx_model: metadata embedded only

    assert child["torch_blocked"]
    assert set(child["third_party"]) - {"sitecustomize"} <= {"numpy", "PIL", "onnxruntime", "runner"}, \
        child["third_party"]  # sitecustomize: the blocker above
    for text, confidence, char_confidences in (child["reader"][:2] + child["reader"][3:], child["model"]):
        assert text == expected_texts[0]
        assert confidence == pytest.approx(expected_confidences[0], rel=1e-4, abs=1e-6)
        assert char_confidences == pytest.approx(expected_char_confidences[0], rel=1e-4, abs=1e-6)


def test_onnx_predictor_and_onnx_model_are_one_path(predictor, onnx_model):
    from runner.inference.predictors import OnnxPredictor

    exported = OnnxPredictor(onnx_model)
    assert isinstance(exported.runtime, OnnxModel) and exported.metadata == exported.runtime.metadata
    pixels = np.stack([exported.preprocess_pixels(digits_image(text)) for text in ("១២", "៤៥៦៧")])
    assert exported.read_pixels(pixels) == exported.runtime.read_pixels(pixels)


def test_a_sidecar_is_checked_before_onnx_runtime_parses_the_file(predictor, tmp_path):
    model_file = tmp_path / "model.onnx"
    model_file.write_bytes(b"not an onnx graph")
    config = {**predictor.metadata["model"]["config"], "_target_": "runner.models.ctc.CRNN"}
    write_sidecar(sidecar_path(model_file), model_file.name,
                  {**predictor.metadata, "model": {**predictor.metadata["model"], "config": config}}, "onnx")
    with pytest.raises(CheckpointError, match="model.head is 'attention' but model.config names a 'ctc' model"):
        OnnxModel(model_file)
    write_sidecar(sidecar_path(model_file), model_file.name, predictor.metadata, "onnx")
    with pytest.raises(CheckpointError, match="cannot be loaded by ONNX Runtime"):
        OnnxModel(model_file)


def test_a_cropping_model_gets_its_batch_cut_to_the_widest_text(predictor, onnx_model):
    model = OnnxModel(onnx_model)
    model.bucketing = True  # as a width-bucketed export would be: the crop happens before the graph runs
    pixels = np.zeros((2, 32, 128), dtype=np.uint8)
    pixels[0, 5:20, 3:40], pixels[1, 5:20, 10:55] = 255, 255
    images = pixels[:, None].astype(np.float32) / 255
    assert model.model_input(images).shape == (2, 1, 32, 56)
    with pytest.raises(ValueError, match=r"\[B, 1, 32, 128\]"):
        model.model_input(images[:, 0])
