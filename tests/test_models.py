from pathlib import Path

import fontpkg_noto_sans_khmer
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from PIL import Image, ImageDraw, ImageFont

import runner
from runner.device import cpu_bf16_support
from runner.charset import EOS, PAD, SOS, VOCAB_SIZE, encode
from runner.errors import ConfigError
from runner.losses import OCRLoss, register_loss_configs
from runner.models import available_presets, create_model, model_from_config
from runner.models.config import register_model_configs

PRESETS = ["small", "medium", "large", "ctc_small", "ctc_medium"]
FONT = Path(fontpkg_noto_sans_khmer.__file__).parent / "files" / "NotoSansKhmer[wdth,wght].ttf"
CONF = Path(runner.__file__).resolve().parent.parent / "conf"


@pytest.fixture(autouse=True)
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    # Near-converged gradients turn denormal; without flush-to-zero a CPU step can get 10x slower.
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads)


def make_batch(texts: list[str], max_length: int, width: int) -> dict:
    """The data contract, built here so these tests do not depend on runner.data."""
    font = ImageFont.truetype(str(FONT), 22)
    images = []
    for text in texts:
        image = Image.new("L", (width, 32), 255)
        ImageDraw.Draw(image).text((3, 0), text, font=font, fill=0)
        images.append(np.asarray(image, dtype=np.float32) / 127.5 - 1.0)
    targets = torch.full((len(texts), max_length + 2), PAD)
    for row, text in enumerate(texts):
        ids = [SOS, *encode(text), EOS]
        targets[row, : len(ids)] = torch.tensor(ids)
    return {"images": torch.from_numpy(np.stack(images))[:, None], "targets": targets,
            "target_lengths": torch.tensor([len(text) for text in texts]), "texts": texts,
            "paths": [f"{i}.png" for i in range(len(texts))]}


def loss_for(model) -> OCRLoss:
    return OCRLoss("ctc" if model.head == "ctc" else "crossentropy").bind(model)


def test_presets_are_the_documented_five():
    assert available_presets() == sorted(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_forward_shapes_predict_and_config_roundtrip(name):
    model = create_model(name)
    batch = make_batch(["០១២", "៩៨៧៦៥៤៣២"], max_length=8, width=128)
    logits = model(batch["images"], batch["targets"])
    greedy = model(batch["images"])
    if model.head == "attention":
        assert logits.shape == (2, 9, VOCAB_SIZE)  # predicts targets[:, 1:]
        assert greedy.shape == (2, model.max_length + 1, VOCAB_SIZE)
    else:
        assert logits.shape == greedy.shape == (2, 32, VOCAB_SIZE)  # T = width / 4
    texts, confidences = model.predict_with_confidence(batch["images"])
    assert len(texts) == 2 and all(set(text) <= set("០១២៣៤៥៦៧៨៩") for text in texts)
    assert all(0.0 <= confidence <= 1.0 for confidence in confidences)
    assert model.training  # predict restores the mode it found
    config = model.config_dict()
    assert config["_target_"].startswith("runner.models.") and config["name"] == name
    torch.save({"model": config}, buffer := __import__("io").BytesIO())
    buffer.seek(0)
    rebuilt = model_from_config(torch.load(buffer, weights_only=True)["model"])
    assert type(rebuilt) is type(model) and rebuilt.config_dict() == config


# the bigger presets take tens of seconds each on 2 cores: they run with `make test-slow`
OVERFIT_CASES = ["small", "ctc_small"] + [pytest.param(name, marks=pytest.mark.slow)
                                         for name in ("medium", "large", "ctc_medium")]


@pytest.mark.parametrize("name", OVERFIT_CASES)
def test_overfits_one_small_batch(name):
    # max_length 4 on 64-pixel-wide images keeps this to a few seconds on 2 cores (CTC: T=16 >= 9).
    torch.manual_seed(0)
    texts = ["០១២៣", "៨៩", "១១៣", "៥"]
    model = create_model(name, dropout=0.0, max_length=4, image_width=64)
    batch = make_batch(texts, max_length=4, width=64)
    loss_fn = loss_for(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(800):  # ctc_small needs ~300 steps with avx512 kernels, ~460 with avx2's (other rounding)
        loss = loss_fn(model(batch["images"], batch["targets"]), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.05:
            break
    assert loss.item() < 0.05
    with torch.no_grad():
        assert model.decode_logits(model(batch["images"]))[0] == texts
        for _ in range(60):  # let BatchNorm's running statistics catch up with the fitted weights
            model(batch["images"], batch["targets"])
    # predict() runs in eval mode; for attention models it also exits once every row has said EOS
    # (here after 2..5 steps), and must agree with the fixed max_length+1-step path.
    texts_predicted, confidences = model.predict_with_confidence(batch["images"])
    assert texts_predicted == texts
    with torch.no_grad():
        fixed_texts, fixed_confidences = model.eval().decode_logits(model(batch["images"]))
    assert (fixed_texts, fixed_confidences) == (texts, pytest.approx(confidences, abs=1e-6))
    assert all(0.0 < confidence <= 1.0 for confidence in confidences)


def test_attention_decode_stops_at_eos_and_confidence_is_product_up_to_eos():
    model = create_model("small")
    logits = torch.full((1, 9, VOCAB_SIZE), -30.0)
    for step, token in enumerate([encode("៣")[0], EOS, encode("៤")[0]]):
        logits[0, step, token] = 0.0
    logits[0, 0, encode("៧")[0]] = 0.0  # step 0: ៣ and ៧ tie at p=0.5 each (argmax takes ៣)
    texts, confidences = model.decode_logits(logits)
    assert texts == ["៣"] and confidences[0] == pytest.approx(0.5)


def test_ctc_decode_collapses_repeats_and_drops_blanks():
    model = create_model("ctc_small")
    one, two = encode("១")[0], encode("២")[0]
    path = [one, one, 3, one, two, two, 3, 3, EOS, two] + [3] * 22
    logits = torch.nn.functional.one_hot(torch.tensor([path]), VOCAB_SIZE).float() * 50
    texts, confidences = model.decode_logits(logits)
    assert texts == ["១១២២"] and confidences[0] == pytest.approx(1.0)


def test_ctc_too_narrow_for_max_length_names_model_and_width():
    with pytest.raises(ConfigError, match=r"model=ctc_small: data.image_width is 64.*at least 17.*>= 68"):
        create_model("ctc_small", image_width=64)


def test_unknown_preset_and_option_list_what_exists():
    with pytest.raises(ConfigError, match="available presets: ctc_medium, ctc_small, large, medium, small"):
        create_model("huge")
    with pytest.raises(ConfigError, match="unknown option 'hidden'"):
        create_model("small", hidden=3)


@pytest.mark.parametrize("name", ["small", "ctc_small"])
@pytest.mark.skipif(not cpu_bf16_support().native, reason=f"no native bf16 here: {cpu_bf16_support().reason}")
def test_other_widths_channels_last_and_bf16_autocast(name):
    model = create_model(name)
    batch = make_batch(["០១២៣៤៥៦៧"], max_length=8, width=96)
    images = batch["images"].contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_for(model)(model(images, batch["targets"]), batch)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    # Every parameter gets a gradient: DistributedDataParallel needs no find_unused_parameters.
    assert all(p.grad is not None for p in model.parameters())


def test_greedy_forward_traces_to_a_fixed_graph():
    model = create_model("small").eval()
    images = make_batch(["០១"], max_length=8, width=128)["images"]
    traced = torch.jit.trace(model, images, check_trace=False)
    assert torch.allclose(traced(images), model(images), atol=1e-5)


@pytest.fixture
def compose_root(tmp_path):
    cs = ConfigStore.instance()
    register_model_configs(cs)
    register_loss_configs(cs)

    def compose_with(overrides: list[str], order: tuple[str, str] = ("loss", "model")):
        choices = {"loss": "crossentropy", "model": "small"}
        root = tmp_path / "root.yaml"
        root.write_text(
            "defaults:\n" + "".join(f"  - {group}: {choices[group]}\n" for group in order) + "  - _self_\n"
            f"hydra:\n  searchpath:\n    - file://{CONF}\n"
            "data:\n  max_length: 8\n  image_height: 32\n  image_width: 128\n"
        )
        with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
            return compose("root", overrides=overrides)

    yield compose_with
    GlobalHydra.instance().clear()


def test_ctc_presets_select_ctc_loss_unless_the_command_line_says_otherwise(compose_root):
    assert compose_root([]).loss.name == "crossentropy"
    cfg = compose_root(["model=ctc_small"])
    assert (cfg.model.name, cfg.loss.name) == ("ctc_small", "ctc") and "loss" not in cfg.model
    assert compose_root(["model=ctc_medium", "loss=focal"]).loss.name == "focal"
    assert compose_root(["model=large", "loss=ctc"]).loss.name == "ctc"  # rejected later by OCRLoss.bind


def test_ctc_loss_override_needs_loss_listed_before_model_in_the_root(compose_root):
    # Hydra walks a defaults list backwards: a config can only override groups listed before it.
    with pytest.raises(ConfigCompositionException, match="Could not override 'loss'"):
        compose_root(["model=ctc_small"], order=("model", "loss"))


def test_composed_preset_instantiates_with_data_interpolations(compose_root):
    cfg = compose_root(["model=ctc_medium", "data.image_width=96", "data.max_length=6"])
    model = model_from_config(cfg.model)
    assert (model.name, model.max_length, model.config_dict()["image_width"]) == ("ctc_medium", 6, 96)


@pytest.mark.parametrize("config, problem", [
    ({"_target_": "builtins.open", "file": "x", "mode": "w"}, "model._target_ is 'builtins.open', which is not"),
    ({"_target_": "runner.models.ctc.CRNN", "name": {"_target_": "os.getcwd"}}, "model.name._target_ names code"),
    ({"_target_": "runner.models.ctc.CRNN", "channels": [32, 64, {"_partial_": True}, 128]},
     "model.channels[2]._partial_ names code to run"),
    ({"_target_": "runner.models.ctc.CRNN", "name": "${oc.env:HOME}"}, "model.name holds an interpolation"),
    ({"_target_": "runner.models.ctc.CRNN", "hidden_sise": 64}, "Key 'hidden_sise' not in 'CTCModelConfig'"),
    ({"_target_": "runner.models.ctc.CRNN", "rnn_layers": 1000}, "rnn_layers must be in 1..8, got 1000"),
])
def test_a_config_is_checked_against_the_registry_before_anything_is_built(config, problem):
    from runner.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        model_from_config(config)
    assert problem in str(refused.value)
