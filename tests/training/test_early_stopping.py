import torch

from runner.training.early_stopping import EarlyStopping


def _set(model, value):
    with torch.no_grad():
        model.weight.fill_(value)


def test_stops_after_patience_without_improvement_and_restores_best_weights():
    model = torch.nn.Linear(2, 1)
    stopper = EarlyStopping(mode="max", patience=2, min_delta=0.01)
    _set(model, 1.0)
    assert not stopper.step(0.5, 1, model)
    _set(model, 2.0)
    assert not stopper.step(0.505, 2, model)  # the best so far, but below min_delta: patience runs on
    _set(model, 7.0)
    assert not stopper.step(0.40, 3, model)
    assert stopper.step(0.45, 4, model)
    assert stopper.best_epoch == 2 and stopper.best == 0.505 and stopper.stopped_epoch == 4
    assert [row["improved"] for row in stopper.history] == [True, False, False, False]
    assert stopper.restore(model)
    assert torch.equal(model.weight, torch.full_like(model.weight, 2.0))


def test_patience_resets_on_min_delta_over_the_last_improvement_not_over_the_best():
    stopper = EarlyStopping(mode="max", patience=1, min_delta=0.01)
    stopper.step(0.5, 1)
    stopper.step(0.505, 2)  # new best, no improvement
    assert not stopper.step(0.512, 3)  # +0.012 over 0.5 resets patience (only +0.007 over the best)
    assert stopper.wait == 0 and stopper.best_epoch == 3


def test_a_tie_moves_the_best_checkpoint_to_the_later_epoch():
    model = torch.nn.Linear(2, 1)
    stopper = EarlyStopping(mode="max", patience=5)
    for epoch, (value, weight) in enumerate([(0.998, 1.0), (0.999, 2.0), (0.9985, 3.0), (0.999, 4.0)], start=1):
        _set(model, weight)
        stopper.step(value, epoch, model)
    assert stopper.best_epoch == 4 and stopper.best == 0.999
    assert stopper.wait == 2  # the tie does not reset patience
    stopper.restore(model)
    assert torch.equal(model.weight, torch.full_like(model.weight, 4.0))


def test_min_mode_and_state_round_trip():
    stopper = EarlyStopping(monitor="val/loss", mode="min", patience=0)
    assert not stopper.step(1.0, 1)
    assert stopper.step(1.5, 2)
    clone = EarlyStopping(monitor="val/loss", mode="min", patience=0)
    clone.load_state_dict(stopper.state_dict())
    assert clone.best == 1.0 and clone.wait == 1 and clone.history == stopper.history


def test_disabled_never_stops_but_tracks_best():
    stopper = EarlyStopping(patience=0, enabled=False)
    for epoch, value in enumerate([0.3, 0.2, 0.1], start=1):
        assert not stopper.step(value, epoch)
    assert stopper.best == 0.3


def test_an_epoch_within_best_tolerance_of_the_peak_becomes_the_best_checkpoint():
    stopper = EarlyStopping(mode="max", patience=5, best_tolerance=0.001)
    for epoch, value in enumerate([0.998, 0.9995, 0.999, 0.9975, 0.9985], start=1):
        stopper.step(value, epoch)
    # 0.999 (epoch 3) and 0.9985 (epoch 5) are within 0.001 of the peak 0.9995; 0.9975 is not
    assert [row["best"] for row in stopper.history] == [0.998, 0.9995, 0.999, 0.999, 0.9985]
    assert stopper.best_epoch == 5 and stopper.peak == 0.9995
    low = EarlyStopping(monitor="val/loss", mode="min", best_tolerance=0.01)
    for epoch, value in enumerate([0.5, 0.2, 0.205, 0.3], start=1):
        low.step(value, epoch)
    assert low.best_epoch == 3 and low.best == 0.205 and low.peak == 0.2


def test_state_from_before_the_tolerance_rule_still_loads():
    old = {"best": 0.99, "best_epoch": 3, "wait": 1, "stopped_epoch": None, "history": [], "best_weights": None}
    stopper = EarlyStopping(mode="max", patience=5, min_delta=0.001, best_tolerance=0.001)
    stopper.load_state_dict(old)
    assert stopper.peak == 0.99 and stopper.reference == 0.99
    stopper.step(0.9895, 4)  # within the tolerance of the peak: the new best checkpoint, no improvement
    assert stopper.best_epoch == 4 and stopper.wait == 2
