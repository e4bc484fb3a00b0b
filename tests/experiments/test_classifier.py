"""The classifier, in-process on the shipped MNIST sample: figures, summary, determinism, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dlrl.cli import main
from dlrl.config.classifier import ClassifierConfig
from dlrl.data.augment import translate
from dlrl.experiments.classifier import (
    TARGETS,
    ClassifierAdapter,
    EpochPlan,
    architecture_layers,
    checkpoint_to_test,
    describe_plan,
    epochs_within,
    evaluate,
    hflip_enabled,
    make_augment,
    predict,
    prediction_views,
    use_bf16,
)
from dlrl.models.mlp import MLPClassifier, WeightEMA
from dlrl.rundir import RunDir
from dlrl.train.checkpoint import load_checkpoint
from dlrl.train.kfold import Pool

# With a moving average of the weights, so the determinism and resume tests cover it too.
TINY = [
    "data.limit=512",
    "model.hidden_sizes=[32]",
    "batch_size=64",
    "device=cpu",
    "augment.hflip=true",
    "ema_decay=0.9",
]
FIGURES = {"architecture", "confusion_matrix", "per_class_accuracy", "learning_curves", "misclassified"}


def _summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text())


@pytest.fixture(scope="module")
def four_epochs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "classifier"
    assert main(["-q", "classify", "--out", str(out), "epochs=4", *TINY]) == 0
    return out


def test_tiny_run_writes_every_figure_and_summary_key(four_epochs: Path) -> None:
    assert {p.stem for p in (four_epochs / "figures").glob("*.png")} == FIGURES
    summary = _summary(four_epochs)
    for key in (
        "test_accuracy",
        "test_accuracy_single_view",
        "test_loss",
        "per_class_accuracy",
        "parameters",
        "epochs_run",
        "best_epoch",
        "best_val_accuracy",
        "train_seconds",
        "train_cpu_seconds",
        "seconds_per_epoch",
        "dataset",
        "sample_data",
        "test_time_flip",
        "test_time_shift",
        "bf16",
    ):
        assert key in summary, key
    assert summary["sample_data"] is True and summary["train_images"] == 512 and summary["epochs_run"] == 4
    assert summary["test_time_flip"] is True  # hflip asked for explicitly
    assert len(summary["per_class_accuracy"]) == 10
    assert summary["parameters"] == 784 * 32 + 32 * 2 + 32 * 10 + 10  # Linear (no bias) + BN + head
    assert summary["test_accuracy"] > 0.5  # 512 images, 4 epochs: well above chance (0.1)
    assert {t["metric"] for t in TARGETS} <= set(summary)


def test_same_seed_twice_gives_identical_metrics(four_epochs: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    assert main(["-q", "classify", "--out", str(out), "epochs=4", *TINY, "figures=false"]) == 0
    ours, theirs = _summary(out), _summary(four_epochs)
    for key in ("test_accuracy", "test_loss", "best_val_accuracy", "per_class_accuracy"):
        assert ours[key] == theirs[key], key


def test_stopped_run_resumed_equals_uninterrupted(
    four_epochs: Path, tmp_path: Path, interrupt_at_epoch
) -> None:
    run = tmp_path / "run"
    with interrupt_at_epoch(3):  # killed after epoch 2's checkpoint, during epoch 3
        assert main(["-q", "classify", "--out", str(run), "epochs=4", *TINY, "figures=false"]) == 130
    assert main(["-q", "classify", "--out", str(run), "--resume", "epochs=4", *TINY, "figures=false"]) == 0
    ours, theirs = _summary(run), _summary(four_epochs)
    for key in ("test_accuracy", "test_loss", "best_val_accuracy", "best_epoch", "per_class_accuracy"):
        assert ours[key] == theirs[key], key


def test_hflip_defaults_depend_on_the_dataset() -> None:
    mnist = ClassifierConfig()
    fashion = ClassifierConfig.model_validate({"data": {"dataset": "fashion-mnist"}})
    assert not hflip_enabled(mnist) and hflip_enabled(fashion)
    forced = ClassifierConfig.model_validate({"augment": {"hflip": True}})
    assert hflip_enabled(forced)
    off = ClassifierConfig.model_validate({"augment": {"max_shift": 0, "hflip": False}})
    assert make_augment(off) is None


def test_precision_choice() -> None:
    cpu = torch.device("cpu")
    assert not use_bf16(ClassifierConfig(precision="fp32"), cpu)
    assert use_bf16(ClassifierConfig(precision="bf16"), cpu)


def test_predict_with_mirror_averages_both_views() -> None:
    torch.manual_seed(0)
    model = MLPClassifier((1, 6, 6), 3, [8], batch_norm=True)
    x = torch.rand(10, 1, 6, 6)
    both = predict(model, x, torch.device("cpu"), batch_size=4, mirror=True)
    plain = predict(model, x, torch.device("cpu"))
    flipped = predict(model, x.flip(-1), torch.device("cpu"))
    torch.testing.assert_close(both, (plain + flipped) / 2)


def test_predict_with_shift_and_mirror_averages_ten_views() -> None:
    torch.manual_seed(0)
    model = MLPClassifier((1, 6, 6), 3, [8], batch_norm=True)
    x = torch.rand(10, 1, 6, 6)
    cpu = torch.device("cpu")
    views = [x] + [translate(x, dy, dx) for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    views += [view.flip(-1) for view in views]
    expected = sum(predict(model, view, cpu) for view in views) / 10
    torch.testing.assert_close(predict(model, x, cpu, batch_size=4, mirror=True, shift=True), expected)
    assert len(prediction_views(x, shift=True)) == 5


def test_architecture_layers_count_every_parameter() -> None:
    model = MLPClassifier((1, 28, 28), 10, [64, 32], dropout=0.1, batch_norm=True)
    layers = architecture_layers(model)
    assert [shape for _, shape, _ in layers] == ["1x28x28", "784", "64, dropout 0.1", "32, dropout 0.1", "10"]
    assert sum(p for _, _, p in layers) == sum(p.numel() for p in model.parameters())


def test_weight_ema_update_matches_hand_computation_and_eval_uses_the_average() -> None:
    torch.manual_seed(0)
    net = WeightEMA(MLPClassifier((1, 2, 2), 2, [3], batch_norm=True), decay=0.5)
    live, ema = net.model.net[1].weight, net.ema.net[1].weight
    before = ema.detach().clone()
    with torch.no_grad():
        live.add_(1.0)
        net.model.net[2].running_mean.fill_(0.25)
    net.update()  # first update: warm-up decay min(0.5, 2/11) = 2/11
    torch.testing.assert_close(ema, before + (1 - 2 / 11) * (live.detach() - before))
    torch.testing.assert_close(net.ema.net[2].running_mean, torch.full((3,), 0.25))  # buffers copied
    for _ in range(20):
        net.update()  # warm-up over: decay 0.5
    previous = ema.detach().clone()
    net.update()
    torch.testing.assert_close(ema, 0.5 * previous + 0.5 * live.detach())
    x = torch.rand(5, 1, 2, 2)
    with torch.no_grad():
        live.add_(3.0)  # live and average now differ
        torch.testing.assert_close(net.eval()(x), net.ema.eval()(x))
        assert not torch.allclose(net.eval()(x), net.model.eval()(x))
        torch.testing.assert_close(net.train()(x), net.model(x))  # train mode: the live model
        assert net.model.training


def test_tested_checkpoint_is_the_last_unless_early_stopping_or_asked() -> None:
    assert checkpoint_to_test(ClassifierConfig()) == "last"
    assert checkpoint_to_test(ClassifierConfig(patience=3)) == "best"
    assert checkpoint_to_test(ClassifierConfig(test_checkpoint="best")) == "best"
    assert checkpoint_to_test(ClassifierConfig(patience=3, test_checkpoint="last")) == "last"


def test_run_checkpoints_the_average_and_evaluate_uses_it(four_epochs: Path) -> None:
    assert _summary(four_epochs)["tested_checkpoint"] == "last"
    state = load_checkpoint(four_epochs / "checkpoints" / "last.pt")["model"]
    live = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    ema = {k[len("ema.") :]: v for k, v in state.items() if k.startswith("ema.")}
    assert live.keys() == ema.keys() and int(state["updates"]) > 0
    assert not torch.equal(live["net.1.weight"], ema["net.1.weight"])  # the average is not the live weights
    summary = _summary(four_epochs)
    assert summary["ema"] is True
    assert evaluate(RunDir(four_epochs))["test_loss"] == summary["test_loss"]
    # Evaluating the live weights instead gives other logits: the summary comes from the average.
    model = MLPClassifier((1, 28, 28), 10, [32], dropout=0.2, batch_norm=True)
    model.load_state_dict(live)
    from dlrl.config import DataConfig
    from dlrl.data.images import load_images

    data = load_images(DataConfig(limit=512))
    averaged = MLPClassifier((1, 28, 28), 10, [32], dropout=0.2, batch_norm=True)
    averaged.load_state_dict(ema)
    cpu = torch.device("cpu")
    kwargs = {"bf16": summary["bf16"], "mirror": True, "shift": summary["test_time_shift"]}
    ema_loss = torch.nn.functional.cross_entropy(predict(averaged, data.test_x, cpu, **kwargs), data.test_y)
    live_loss = torch.nn.functional.cross_entropy(predict(model, data.test_x, cpu, **kwargs), data.test_y)
    assert abs(ema_loss.item() - summary["test_loss"]) < 1e-6
    assert abs(live_loss.item() - summary["test_loss"]) > 1e-6


def test_ema_off_trains_the_plain_model(tmp_path: Path) -> None:
    out = tmp_path / "plain"
    args = ["epochs=1", *TINY, "figures=false", "ema_decay=null"]
    assert main(["-q", "classify", "--out", str(out), *args]) == 0
    state = load_checkpoint(out / "checkpoints" / "best.pt")["model"]
    assert "net.1.weight" in state and not any(k.startswith("ema.") for k in state)
    assert _summary(out)["ema"] is False


# --- epochs=auto: the schedule fitted to the machine's speed -----------------------------------------


def test_epochs_within_the_budget() -> None:
    assert epochs_within(160, 5.6, 90) == 28  # an AVX2-only CPU in fp32 on Fashion-MNIST
    assert epochs_within(160, 1.5, 90) == 90  # native bf16: the whole recipe fits
    assert epochs_within(160, 500.0, 90) == 1  # never fewer than one epoch
    assert epochs_within(160, 0.0, 90) == 90


def test_auto_epochs_train_as_if_given_and_config_yaml_reruns_them(four_epochs: Path, tmp_path: Path) -> None:
    """Timing the schedule changes nothing the run computes: auto choosing 4 equals epochs=4 (four_epochs);
    the choice is written into config.yaml, so --config re-runs 4 epochs without timing anything."""
    out = tmp_path / "auto"
    auto = ["epochs=auto", "max_epochs=4", "time_budget=1e9"]
    assert main(["-q", "classify", "--out", str(out), *TINY, *auto, "figures=false"]) == 0
    summary, given = _summary(out), _summary(four_epochs)
    assert (summary["epochs"], summary["epochs_source"], summary["epochs_run"]) == (4, "time_budget", 4)
    assert summary["time_budget"] == 1e9 and summary["estimated_seconds_per_epoch"] > 0
    assert summary["precision"] in ("fp32", "bf16") and "cpu_capability" in summary
    for key in ("test_accuracy", "test_loss", "best_val_accuracy", "per_class_accuracy"):
        assert summary[key] == given[key], key
    stored = (out / "config.yaml").read_text()
    assert "\nepochs: 4\n" in stored
    again = tmp_path / "again"
    # time_budget=1e-9 would choose 1 epoch if anything were timed: the file's epochs win
    assert main(["-q", "classify", "--config", str(out / "config.yaml"), "--out", str(again)]) == 0
    rerun = _summary(again)
    assert (rerun["epochs"], rerun["epochs_source"], rerun["time_budget"]) == (4, "config", None)
    assert rerun["test_accuracy"] == summary["test_accuracy"]


def test_a_budget_smaller_than_an_epoch_trains_one_epoch_of_the_short_recipe(tmp_path: Path) -> None:
    """One epoch fits: fewer than half of max_epochs, so recipe=auto takes the short recipe for the settings
    TINY leaves at their defaults (only the shifts) and trains what that config given directly trains."""
    out, direct, full = tmp_path / "one", tmp_path / "direct", tmp_path / "full"
    args = [*TINY, "epochs=auto", "time_budget=1e-9", "figures=false"]
    assert main(["-q", "classify", "--out", str(out), *args]) == 0
    summary = _summary(out)
    assert (summary["epochs"], summary["epochs_run"], summary["recipe"]) == (1, 1, "short")
    assert summary["full_recipe_seconds_per_epoch"] > 0
    stored = (out / "config.yaml").read_text()
    assert "\nepochs: 1\n" in stored and "\nrecipe: short\n" in stored and "  max_shift: 0\n" in stored
    assert "  - 32\n" in stored and "\nbatch_size: 64\n" in stored  # given, so kept
    given = [*TINY, "epochs=1", "augment.max_shift=0", "figures=false"]
    assert main(["-q", "classify", "--out", str(direct), *given]) == 0
    assert _summary(direct)["recipe"] == "full" and _summary(direct)["test_loss"] == summary["test_loss"]
    assert main(["-q", "classify", "--out", str(full), *args, "recipe=full"]) == 0
    assert _summary(full)["recipe"] == "full" and "  max_shift: 1\n" in (full / "config.yaml").read_text()


def test_the_recipes_change_only_settings_at_their_defaults() -> None:
    help_text = " ".join(str(ClassifierConfig.model_fields["recipe"].description).split())
    for recipe, values in ClassifierConfig.RECIPES.items():
        assert ClassifierConfig().with_recipe(recipe)[1] == values
        for key, value in values.items():
            assert f"{key}={value}" in help_text, (recipe, key)  # --help names them
    short = ClassifierConfig().with_recipe("short")[0]
    assert (short.model.hidden_sizes, short.augment.max_shift, short.batch_size) == ([512, 256], 0, 128)
    assert ClassifierConfig().with_recipe("narrow")[0].model.hidden_sizes == [1024, 128]
    given = ClassifierConfig.model_validate({"model": {"hidden_sizes": [64]}, "batch_size": 32})
    short, changes = given.with_recipe("short")
    assert changes == {"augment.max_shift": 0}
    assert (short.model.hidden_sizes, short.augment.max_shift, short.batch_size) == ([64], 0, 32)
    assert given.with_recipe("narrow") == (given, {})


@pytest.mark.parametrize(
    ("seconds_per_epoch", "chosen", "epochs"),
    [
        ({(1024, 1024): 1.0}, "full", 6),  # 6 of max_epochs=6 fit the 6 s budget
        ({(1024, 1024): 2.0, (1024, 128): 1.5}, "narrow", 4),  # full: 3 fit, half but not 2/3 of 6
        ({(1024, 1024): 2.0, (1024, 128): 2.0, (512, 256): 1.5}, "short", 4),
        ({(1024, 1024): 9.0, (1024, 128): 9.0, (512, 256): 9.0}, "short", 1),  # the last one, even so
    ],
)
def test_recipe_auto_takes_the_first_recipe_that_fits_enough_epochs(
    seconds_per_epoch: dict, chosen: str, epochs: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timings per network (the machine's speed is not what is tested): full, then narrow, then short, the
    first of which two thirds of max_epochs fit time_budget; its settings are what config.yaml records."""
    from dlrl.experiments.classifier import budget

    def timed(cfg: ClassifierConfig, data, device) -> tuple[float, float, int]:
        return seconds_per_epoch[tuple(cfg.model.hidden_sizes)], 0.1, 40

    monkeypatch.setattr(budget, "time_schedule", timed)
    out = tmp_path / "run"
    default_network = [arg for arg in TINY if not arg.startswith("model.hidden_sizes")]
    args = [*default_network, "epochs=auto", "time_budget=6", "max_epochs=6", "figures=false"]
    assert main(["-q", "classify", "--out", str(out), *args]) == 0
    summary = _summary(out)
    assert (summary["recipe"], summary["epochs"], summary["epochs_run"]) == (chosen, epochs, epochs)
    full_timing = None if chosen == "full" else seconds_per_epoch[(1024, 1024)]
    assert summary["full_recipe_seconds_per_epoch"] == full_timing
    stored = ClassifierConfig.model_validate(yaml.safe_load((out / "config.yaml").read_text()))
    assert stored.recipe == chosen
    assert stored.model.hidden_sizes == ClassifierConfig().with_recipe(chosen)[0].model.hidden_sizes


def test_an_interrupted_short_recipe_run_resumes_with_it(tmp_path: Path, interrupt_at_epoch) -> None:
    """The checkpoint's recipe wins over the command's recipe=auto (which could choose otherwise now)."""
    run, whole = tmp_path / "run", tmp_path / "whole"
    short = [*TINY, "epochs=auto", "max_epochs=3", "time_budget=1e9", "recipe=short", "figures=false"]
    assert main(["-q", "classify", "--out", str(whole), *short]) == 0
    with interrupt_at_epoch(2):
        assert main(["-q", "classify", "--out", str(run), *short]) == 130
    auto = [arg for arg in short if arg != "recipe=short"]
    assert main(["-q", "classify", "--out", str(run), "--resume", *auto]) == 0
    ours, theirs = _summary(run), _summary(whole)
    assert (ours["epochs"], ours["epochs_source"], ours["recipe"]) == (3, "checkpoint", "short")
    assert ours["test_loss"] == theirs["test_loss"]


def test_interrupted_auto_run_resumes_with_its_own_choice(
    four_epochs: Path, tmp_path: Path, interrupt_at_epoch
) -> None:
    run = tmp_path / "run"
    auto = [*TINY, "epochs=auto", "max_epochs=4", "time_budget=1e9", "figures=false"]
    with interrupt_at_epoch(3):
        assert main(["-q", "classify", "--out", str(run), *auto]) == 130
    # the same command again (epochs=auto) continues the 4 epochs chosen, no new timing
    assert main(["-q", "classify", "--out", str(run), "--resume", *auto]) == 0
    summary = _summary(run)
    assert (summary["epochs"], summary["epochs_source"]) == (4, "checkpoint")
    assert summary["test_accuracy"] == _summary(four_epochs)["test_accuracy"]


def test_the_plan_line_names_epochs_precision_and_eta() -> None:
    cfg = ClassifierConfig(time_budget=160, precision="fp32")
    cpu = torch.device("cpu")
    timed = EpochPlan(28, "time_budget", "fp32", seconds_per_epoch=5.6, test_seconds=4.0, timed_batches=40)
    line = describe_plan(cfg, timed, cpu)
    assert line.startswith("classifier: 28 epochs (what fits time_budget=160 s at 5.60 s per epoch")
    assert "fp32 (precision=fp32)" in line and "ETA 2:41" in line  # 28 x 5.6 + 4 = 160.8 s
    capped = EpochPlan(90, "time_budget", "bf16", seconds_per_epoch=1.4, test_seconds=1.0, timed_batches=40)
    assert "90 epochs (max_epochs; 92 would fit" in describe_plan(ClassifierConfig(), capped, cpu)
    assert "(as configured)" in describe_plan(cfg, EpochPlan(5, "config", "fp32"), cpu)
    short = EpochPlan(41, "time_budget", "fp32", 3.84, 4.0, 40, "short", {"batch_size": 128}, 7.3)
    assert (
        "at 3.84 s per epoch, timed on 40 batches; short recipe (batch_size=128): the full one fits 21 of "
        "max_epochs=90 at 7.30 s per epoch)" in describe_plan(cfg, short, cpu)
    )
    changes = {"model.hidden_sizes": [1024, 128]}
    narrow = EpochPlan(80, "time_budget", "bf16", 1.6, 2.0, 40, "narrow", changes, 3.3)
    assert "; narrow recipe (model.hidden_sizes=[1024, 128]): the full one fits 48 of" in describe_plan(
        cfg, narrow, cpu
    )


def test_a_search_trains_max_epochs_when_auto() -> None:
    adapter = ClassifierAdapter()
    assert adapter.epochs(ClassifierConfig()) == 90
    assert adapter.epochs(ClassifierConfig(max_epochs=7)) == 7
    assert adapter.epochs(ClassifierConfig(epochs=5)) == 5
    cfg = ClassifierConfig.model_validate({"max_epochs": 3, "model": {"hidden_sizes": [8]}, "batch_size": 16})
    pool = Pool(torch.rand(40, 1, 28, 28), torch.randint(0, 10, (40,)), extra=((1, 28, 28), 10))
    trainer = adapter.fold_trainer(cfg, pool, np.arange(30), np.arange(30, 40), fold=0)
    assert trainer is not None
    short = ClassifierConfig.model_validate({"max_epochs": 3, "recipe": "short"})
    trainer = adapter.fold_trainer(short, pool, np.arange(30), np.arange(30, 40), fold=0)
    widths = [m.out_features for m in trainer.model.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [512, 256, 10]


def test_auto_epochs_settled_again_after_the_first_epochs_and_config_yaml_reruns_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timed beforehand at a tenth of the budget per epoch (a slow moment of a shared machine), the run starts
    on 10 epochs; its first 3 run far faster, so it settles on max_epochs=12 with the warm-up (3 epochs,
    fixed when the 10 were chosen) still under way. config.yaml then holds 12 epochs and that warm-up, and
    --config trains the same numbers bit for bit, with no timing and no re-plan."""
    from dlrl.experiments.classifier import budget

    monkeypatch.setattr(budget, "time_schedule", lambda *args: (1.0, 0.1, 40))
    out, again = tmp_path / "auto", tmp_path / "again"
    auto = [*TINY, "epochs=auto", "time_budget=10", "max_epochs=12", "recipe=full", "figures=false"]
    assert main(["-q", "classify", "--out", str(out), *auto]) == 0
    summary = _summary(out)
    assert (summary["epochs_before_training"], summary["epochs"], summary["epochs_run"]) == (10, 12, 12)
    assert 0 < summary["replanned_seconds_per_epoch"] < 1.0
    stored = (out / "config.yaml").read_text()
    assert "\nepochs: 12\n" in stored and "  warmup_epochs: 3.0\n" in stored
    assert load_checkpoint(out / "checkpoints" / "last.pt")["config"]["epochs"] == 12
    assert main(["-q", "classify", "--config", str(out / "config.yaml"), "--out", str(again)]) == 0
    rerun = _summary(again)
    assert (rerun["epochs"], rerun["epochs_source"], rerun["epochs_before_training"]) == (12, "config", None)
    assert rerun["test_loss"] == summary["test_loss"] and rerun["test_accuracy"] == summary["test_accuracy"]


def test_a_warmup_as_long_as_the_run_is_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["-q", "classify", "--out", str(out), *TINY, "epochs=3", "optim.warmup_epochs=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "optim.warmup_epochs=3 must be shorter than the run (epochs=3)" in err
    assert not out.exists()
