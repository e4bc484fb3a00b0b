"""``dlrl rl train | evaluate | play``: Part 3's DQN agents, trained, evaluated and shown as videos."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dlrl.cli.common import add_experiment_arguments, cmd_experiment, config_epilog
from dlrl.errors import DlrlError
from dlrl.experiments import get_experiment


def add_parser(subparsers: Any, formatter: type) -> None:
    entry = get_experiment("dqn")
    rl = subparsers.add_parser(
        "rl",
        help="Part 3: DQN on Gymnasium classic control (train, evaluate, play)",
        description="Part 3: DQN on Gymnasium classic control.",
        formatter_class=formatter,
    )
    commands = rl.add_subparsers(dest="rl_command", metavar="COMMAND", required=True)
    train = commands.add_parser(
        "train",
        help="train DQN agents (several seeds / explorations in parallel)",
        formatter_class=formatter,
        description="Train DQN on a Gymnasium env; every agent in RUN_DIR/<exploration>-seed<N>/.",
        epilog=config_epilog(entry.config_cls()),
    )
    add_experiment_arguments(train, entry)
    train.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="train the agents as Ray tasks on a running Ray cluster (also: RAY_ADDRESS); "
        "default: local processes",
    )
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="greedy episodes with each agent's best checkpoint",
        description="Greedy evaluation of every agent's best.pt on fresh seeds.",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--episodes", type=int, default=100, help="greedy episodes per agent (default 100)")
    evaluate.set_defaults(handler=cmd_evaluate)

    play = commands.add_parser(
        "play",
        help="GIF or MP4 of greedy episodes",
        description="Render greedy episodes of an agent's best checkpoint to a GIF (default) or an MP4; "
        "a pixel agent's video shows the processed frames it acted on beside the screen.",
    )
    play.add_argument("run_dir", metavar="RUN_DIR")
    play.add_argument("--run", metavar="NAME", help="agent, e.g. epsilon-seed0 (default: best final mean)")
    play.add_argument("--episodes", type=int, default=1, help="episodes to record (default 1)")
    play.add_argument("--every", type=int, default=2, help="keep every N-th frame (default 2)")
    play.add_argument(
        "--format", choices=["gif", "mp4"], help="video format (default: from --out's suffix, else gif)"
    )
    play.add_argument(
        "--out", metavar="FILE", help="output path, .gif or .mp4 (default RUN_DIR/videos/<agent>.<format>)"
    )
    play.set_defaults(handler=cmd_play)


def _positive(value: int, option: str) -> None:
    if value <= 0:
        raise DlrlError(f"{option}: must be positive, got {value}")


def cmd_train(args: argparse.Namespace) -> int:
    from dlrl.api.experiments import cluster  # keeps dlrl --help fast: the API imports matplotlib, ray

    with cluster(args.address):  # None: the agents train in local processes
        return cmd_experiment(args)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dlrl.experiments import dqn  # keeps dlrl --help fast: torch and gymnasium
    from dlrl.rundir import RunDir  # as dqn (numpy)

    _positive(args.episodes, "--episodes")
    print(json.dumps(dqn.evaluate(RunDir(args.run_dir), args.episodes), indent=2))
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from dlrl.experiments import dqn  # keeps dlrl --help fast: torch, gymnasium and imageio
    from dlrl.rundir import RunDir  # as dqn (numpy)

    _positive(args.episodes, "--episodes")
    _positive(args.every, "--every")
    run_dir = RunDir(args.run_dir)
    for path in dqn.play(run_dir, args.run, args.episodes, args.every, args.out, format=args.format):
        print(f"wrote {path}")
    return 0
