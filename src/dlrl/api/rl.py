"""``dlrl.api.play(...)``: a finished DQN run's agent shown as a GIF of greedy episodes (``dlrl rl play``)."""

from __future__ import annotations

from pathlib import Path

from dlrl.errors import DlrlError
from dlrl.rundir import RunDir


def play(
    run_dir: str | Path,
    agent: str | None = None,
    *,
    episodes: int = 1,
    every: int = 2,
    out: str | Path | None = None,
) -> list[Path]:
    """Greedy episodes of one agent's best checkpoint (``agent`` like "epsilon-seed0"; None: the agent with
    the best final evaluation) as RUN_DIR/videos/<agent>.gif (or ``out``), keeping every ``every``-th frame;
    an MP4 beside it when imageio-ffmpeg is installed. Returns the paths written. In a notebook:
    ``IPython.display.Image(filename=play(result.run_dir)[0])``."""
    for name, value in (("episodes", episodes), ("every", every)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise DlrlError(f"{name}: must be a positive integer, got {value!r}")
    from dlrl.experiments import dqn  # why here: gymnasium and imageio, which every CLI command would import

    return dqn.play(RunDir(run_dir), agent, episodes, every, str(out) if out is not None else None)
