"""Every section of `dlrl run` but the search at tiny budgets in one run (DQN, LunarLander and the pixel agent
included), then `dlrl report RUN` rebuilding report.html from the files alone: the same HTML as the run
wrote, but for the time the report was built. The search section (a Ray of its own) has the same check in
tests/cluster (`dlrl run` with a search): this test stays out of the suite's one group of Ray tests."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dlrl.cli import main
from dlrl.pipeline.sections import SECTIONS

DQN = ["total_steps=300", "learning_starts=100", "buffer_size=300", "batch_size=16", "eval_every=100"]
DQN += [
    "eval_episodes=1",
    "confirm_episodes=null",
    "final_episodes=2",
    "log_every=50",
    "model.hidden_sizes=[16]",
]
DQN += ["seeds=[0]", "checkpoint_every=null", "workers=1"]  # workers=1: in this process, no spawn
PIXELS = [
    "pixels.size=[12,36]",
    "pixels.frame_stack=3",
    "model.conv_channels=[4,8]",
    "model.conv_kernels=[4,3]",
]
PIXELS += ["model.conv_strides=[2,1]"]
AE = ["epochs=1", "data.limit=200", "model.hidden_dim=16", "latent.tsne_samples=100", "latent.n_jobs=1"]
TINY = {
    "regression": ["epochs=3", "ensemble=2", "data.num_points=200", "data.test_points=200"],
    "classifier": ["epochs=1", "data.limit=200", "model.hidden_sizes=[16]"],
    "autoencoder": AE,
    "dae": [*AE, "noise.psnr_levels=[0.3]"],
    "vae": AE,
    "finetune": ["labels=[20]", "epochs=1", "min_steps=2"],
    "dqn": [*DQN, "explorations=[epsilon,softmax]"],
    "lunarlander": DQN,
    "dqn-pixels": [*DQN, *PIXELS],
}
GENERATED = re.compile(r"report built [^<]*")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_section_then_dlrl_report_rebuilds_the_same_html(tmp_path: Path, capsys) -> None:
    # a new section needs its tiny budget here
    assert sorted([*TINY, "search"]) == sorted(s.name for s in SECTIONS)
    out = tmp_path / "run"
    sets = [f"--set={name}.{item}" for name, items in TINY.items() for item in items]
    code = main(["-q", "run", "--quick", "--only", ",".join(TINY), "--out", str(out), *sets])
    captured = capsys.readouterr()
    status = json.loads((out / "sections.json").read_text())
    assert code == 0, (captured.err[-3000:], {k: v.get("error") for k, v in status.items()})
    assert all(status[name]["status"] == "done" for name in TINY), status
    for name in TINY:
        assert (out / name / "summary.json").is_file(), name
    written = (out / "report.html").read_text()
    for name in TINY:
        assert f'id="{name}"' in written or name in written

    (out / "report.html").unlink()
    assert main(["-q", "report", str(out)]) == 0
    rebuilt = (out / "report.html").read_text()
    assert GENERATED.search(written) and GENERATED.sub("", rebuilt) == GENERATED.sub("", written)
