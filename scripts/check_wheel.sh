#!/usr/bin/env bash
# Build the wheel, install it (not editable) into a fresh venv with the `train` extra, and from an empty folder
# run what a user of the installed package runs: a short training, a prediction with the model it made and with
# the shipped one, and the Python API. Then install the bare wheel (numpy, Pillow, onnxruntime) into a second
# venv: the API reads with the shipped model there, torch is absent, and a command-line job names the extra it
# needs. Used by .ci/run (and `make check-wheel`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet torch==2.13.0   # the CPU wheel first: a bare requirement would pull CUDA
"$py" -m pip wheel --quiet --no-deps "$root" -w "$work/dist"
wheel="$(ls "$work"/dist/*.whl)"
"$py" -m pip install --quiet "${wheel}[train,onnx]"
echo "wheel: $(basename "$wheel")[train,onnx] installed into a fresh venv"

mkdir "$work/elsewhere" && cd "$work/elsewhere"
"$py" -m runner debug=fast hydra.run.dir=run >/dev/null 2>run.err || { cat run.err >&2; exit 1; }
echo "python -m runner debug=fast: ok ($(ls run/checkpoints))"
"$py" - <<'PY'
from PIL import Image, ImageDraw, ImageFont
from runner.data.fonts import package_font_path
image = Image.new("L", (160, 48), 255)
ImageDraw.Draw(image).text((8, 4), "១២៣៤", font=ImageFont.truetype(str(package_font_path()), 34), fill=0)
image.save("number.png")
PY
"$py" -m runner.predict checkpoint=run inputs=number.png
"$py" -m runner.predict inputs=number.png
"$py" -c "from runner import Reader; print(Reader().read('number.png'))"
test ! -e outputs/predict || { echo "predict left a run folder behind" >&2; exit 1; }

"$python" -m venv "$work/infer"
infer="$work/infer/bin/python"
"$infer" -m pip install --quiet --upgrade pip
"$infer" -m pip install --quiet "$wheel"
"$infer" -c "from runner import Reader; print('base install (no torch):', Reader().read('number.png'))"
! "$infer" -c "import torch" 2>/dev/null || { echo "the base install pulled torch" >&2; exit 1; }
if "$infer" -m runner.predict inputs=number.png 2>predict.err; then
  echo "predict ran without the train extra" >&2; exit 1
fi
grep -q "needs the \`train\` extra" predict.err || { cat predict.err >&2; exit 1; }
echo "base install: the API reads without torch; python -m runner.predict names the train extra"
echo "wheel check: ok"
