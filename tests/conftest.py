from pathlib import Path

import pytest

from inference.helpers import save_checkpoint
from runner.data.config import DataConfig


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """metadata.yaml of a small generated dataset (all splits), shared by the data tests."""
    from runner.data.generate import write_dataset

    cfg = DataConfig(train_size=24, val_size=8, hard_val_size=6)
    return write_dataset(cfg, seed=5, target=tmp_path_factory.mktemp("data") / "tiny", workers=1, progress=False)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained attention model (preset small) saved as a run's checkpoints/best.pt."""
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoints" / "best.pt")


@pytest.fixture(scope="session")
def predictor(checkpoint):
    from runner.inference.predictors import load_predictor

    return load_predictor(checkpoint)


@pytest.fixture(scope="session")
def onnx_model(predictor, tmp_path_factory) -> Path:
    """`predictor` exported to model.onnx, metadata embedded (no sidecar)."""
    from runner.inference.export import export_onnx

    # the default (dynamo) exporter on the attention model: its greedy loop is the hard case
    return export_onnx(predictor, tmp_path_factory.mktemp("onnx") / "model.onnx")


@pytest.fixture
def run_entry(monkeypatch, capsys):
    """`python -m runner[.MODULE] overrides...` in this process (imports once): (exit code, stdout, stderr).

    Hydra's globals are cleared before and after, so every call composes and writes afresh.
    """
    import importlib
    import sys

    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from runner.config import CONF_DIR

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    def invoke(module: str, *overrides: str) -> tuple[int, str, str]:
        main = importlib.import_module("runner.__main__" if module == "runner" else module).main
        GlobalHydra.instance().clear()
        # in-process, Hydra would look for conf/ as a package next to the entry module; name the folder
        monkeypatch.setattr(sys, "argv", [module, f"--config-path={CONF_DIR}", *overrides])
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        finally:
            GlobalHydra.instance().clear()
            HydraConfig.instance().cfg = None  # later in-process runs must not write into this run's dir
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
