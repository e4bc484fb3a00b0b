"""``dlrl run --tensorboard``: the metrics.csv files of a section as TensorBoard scalars."""

from __future__ import annotations

import sys
from pathlib import Path

from dlrl.cli import main
from dlrl.pipeline.tensorboard import log_tensorboard


def test_tensorboard_requested_but_missing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed: find_spec gives None
    assert main(["run", "--quick", "--out", str(tmp_path / "run"), "--tensorboard"]) == 2
    err = capsys.readouterr().err
    assert "--tensorboard: the 'tensorboard' package is not installed" in err
    assert not (tmp_path / "run").exists()


def test_tensorboard_export_splits_trials_and_nested_runs(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    section = tmp_path / "search"
    (section / "seed-0").mkdir(parents=True)
    (section / "metrics.csv").write_text("trial,epoch,val_loss,note\n7,1,0.5,x\n7,2,0.25,x\n8,1,0.75,y\n")
    (section / "seed-0" / "metrics.csv").write_text("step,return,done\n10,20.5,True\n20,40.0,False\n")
    log_dir = tmp_path / "tb"
    (log_dir / "stale").mkdir(parents=True)
    assert log_tensorboard(section, log_dir) == 3 + 2
    assert not (log_dir / "stale").exists()

    def scalars(path: Path, tag: str) -> list[tuple[int, float]]:
        events = EventAccumulator(str(path))
        events.Reload()
        return [(e.step, e.value) for e in events.Scalars(tag)]

    assert scalars(log_dir / "trial-7", "val_loss") == [(1, 0.5), (2, 0.25)]
    assert scalars(log_dir / "trial-8", "val_loss") == [(1, 0.75)]
    assert "trial" not in EventAccumulator(str(log_dir / "trial-7")).Reload().Tags()["scalars"]
    assert scalars(log_dir / "seed-0", "return") == [(10, 20.5), (20, 40.0)]
