import pytest
import torch

from runner.training import schedulers


def _optimizer(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def _lrs(scheduled, optimizer, epochs, steps, metric=None):
    seen = []
    for _ in range(epochs):
        for _ in range(steps):
            optimizer.step()
            scheduled.step_batch()
        scheduled.step_epoch(metric)
        seen.append(optimizer.param_groups[0]["lr"])
    return seen


def test_steplr_decays_per_epoch():
    opt = _optimizer()
    lrs = _lrs(schedulers.steplr(opt, epochs=4, steps_per_epoch=3, step_size=2, gamma=0.5), opt, 4, 3)
    assert lrs == pytest.approx([1.0, 0.5, 0.5, 0.25])


@pytest.mark.parametrize("factory", [schedulers.onecycle, schedulers.warmup_cosine])
def test_warmup_schedules_rise_then_fall_per_step(factory):
    opt = _optimizer()
    scheduled = factory(opt, epochs=2, steps_per_epoch=50, warmup_fraction=0.2, min_lr_ratio=1e-3)
    assert scheduled.interval == "step"
    lrs = []
    for _ in range(100):
        opt.step()
        scheduled.step_batch()
        lrs.append(opt.param_groups[0]["lr"])
    peak = max(range(100), key=lrs.__getitem__)
    assert 10 <= peak <= 25 and lrs[0] < lrs[peak] and lrs[-1] < 0.01


def test_cosine_ends_at_min_lr():
    opt = _optimizer()
    lrs = _lrs(schedulers.cosine(opt, epochs=3, steps_per_epoch=10, min_lr_ratio=0.01), opt, 3, 10)
    assert lrs[0] > lrs[1] > lrs[2] == pytest.approx(0.01)


def test_plateau_steps_on_the_metric():
    opt = _optimizer()
    scheduled = schedulers.plateau(opt, epochs=5, steps_per_epoch=1, mode="max", factor=0.5, patience=0)
    for metric in (0.5, 0.6, 0.6, 0.6):
        scheduled.step_epoch(metric)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.25)


def test_state_survives_safe_loading(tmp_path):
    for factory in (schedulers.steplr, schedulers.cosine, schedulers.plateau, schedulers.onecycle, schedulers.warmup_cosine):
        opt = _optimizer()
        scheduled = factory(opt, epochs=2, steps_per_epoch=5)
        _lrs(scheduled, opt, 1, 5, metric=0.5)
        torch.save(scheduled.state_dict(), tmp_path / "s.pt")
        state = torch.load(tmp_path / "s.pt", weights_only=True)
        fresh_opt = _optimizer()
        fresh = factory(fresh_opt, epochs=2, steps_per_epoch=5)
        fresh.load_state_dict(state)
        fresh_opt.load_state_dict(opt.state_dict())  # resume restores the optimizer (its LR) too
        assert fresh.position == scheduled.position
        # the restored schedule continues exactly as the original one does
        assert _lrs(fresh, fresh_opt, 1, 5, metric=0.5) == _lrs(scheduled, opt, 1, 5, metric=0.5), factory.__name__


@pytest.mark.parametrize("rule, expected", [("none", 1e-3), ("linear", 4e-3), ("sqrt", 2e-3)])
def test_lr_is_scaled_to_the_global_batch(rule, expected):
    assert schedulers.scaled_lr(1e-3, 256, rule, reference_batch_size=64) == pytest.approx(expected)
    assert schedulers.scaled_lr(1e-3, 64, rule, reference_batch_size=64) == pytest.approx(1e-3)
