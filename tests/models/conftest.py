"""Every model test runs on two threads with flush-to-zero, as training does."""

import pytest
import torch


@pytest.fixture(autouse=True)
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    # Near-converged gradients turn denormal; without flush-to-zero a CPU step can get 10x slower.
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads)
