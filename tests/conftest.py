import pytest

from runner.data.config import DataConfig


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """metadata.yaml of a small generated dataset (all splits), shared by the data tests."""
    from runner.data.generate import write_dataset

    cfg = DataConfig(train_size=24, val_size=8, hard_val_size=6)
    return write_dataset(cfg, seed=5, target=tmp_path_factory.mktemp("data") / "tiny", workers=1, progress=False)
