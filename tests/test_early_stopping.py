import torch

from runner.training.early_stopping import EarlyStopping


def test_stops_after_patience_without_improvement_and_restores_best_weights():
    model = torch.nn.Linear(2, 1)
    stopper = EarlyStopping(mode="max", patience=2, min_delta=0.01)
    with torch.no_grad():
        model.weight.fill_(1.0)
    assert not stopper.step(0.5, 1, model)
    best = model.weight.clone()
    with torch.no_grad():
        model.weight.fill_(7.0)
    assert not stopper.step(0.505, 2, model)  # below min_delta: not an improvement
    assert not stopper.step(0.40, 3, model)
    assert stopper.step(0.45, 4, model)
    assert stopper.best_epoch == 1 and stopper.stopped_epoch == 4
    assert [row["improved"] for row in stopper.history] == [True, False, False, False]
    assert stopper.restore(model)
    assert torch.equal(model.weight, best)


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
