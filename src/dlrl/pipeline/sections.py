"""The sections of ``dlrl run``, and choosing among them (--only, --skip, --set)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dlrl.errors import DlrlError, shown

SEARCH_PREFIX = "tune:"


@dataclass(frozen=True)
class Section:
    name: str  # directory name under the run
    part: str  # part1 / part2 / part3, for --only / --skip
    experiment: str  # registry name, or "tune:<experiment>" for a hyperparameter search of it
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted keys applied on top of the profile
    on_request: bool = False  # runs only when named in --only (too long for every run)
    full_only: bool = (
        False  # not in the quick profile unless named in --only (its quick budget shows nothing)
    )

    @property
    def searched(self) -> str | None:
        """The experiment a search section searches; None for an ordinary experiment section."""
        if self.experiment.startswith(SEARCH_PREFIX):
            return self.experiment[len(SEARCH_PREFIX) :]
        return None


SECTIONS: list[Section] = [
    Section("regression", "part1", "regression"),
    # A small Ray Tune search of the regression net (K-fold CV per trial), its best config trained and tested.
    Section("search", "part1", "tune:regression"),
    Section("classifier", "part1", "classifier"),
    Section("autoencoder", "part2", "autoencoder", {"variant": "ae"}),
    Section("dae", "part2", "autoencoder", {"variant": "dae"}),
    Section("vae", "part2", "autoencoder", {"variant": "vae"}),
    # encoder_run is relative: finetune looks for it beside its own run directory (the section above).
    Section("finetune", "part2", "finetune", {"encoder_run": "autoencoder"}),
    Section("dqn", "part3", "dqn", {"seeds": [0, 1, 2], "explorations": ["epsilon", "softmax"]}),
    Section(
        "lunarlander", "part3", "dqn", {"env": "LunarLander-v3", "seeds": [0, 1, 2, 3, 4]}, full_only=True
    ),
    # CartPole from the screen: up to ~50 minutes per seed on one core, so only with --only dqn-pixels
    Section("dqn-pixels", "part3", "dqn", {"obs_type": "pixels", "seeds": [0, 1, 2, 3, 4]}, on_request=True),
]

# Typical wall seconds per section on 2 cores: (quick, full), as measured on 2026-11-25. Only the first guess
# of the ETA: it is scaled by how fast the finished sections really were. Sections not listed use
# DEFAULT_EXPECTED.
EXPECTED_SECONDS: dict[str, tuple[float, float]] = {
    "regression": (4, 8),
    "search": (18, 131),
    "classifier": (2, 21),
    "autoencoder": (8, 16),
    "dae": (10, 18),
    "vae": (10, 18),
    "finetune": (1, 12),
    "dqn": (8, 34),
    "lunarlander": (60, 900),  # 5 seeds, 2 at a time; full: up to 200k steps each, fewer once solved
    "dqn-pixels": (300, 9300),  # 5 seeds, 2 at a time, each up to 200k agent steps (~51 min at 65 per s)
}
DEFAULT_EXPECTED = (30.0, 120.0)


def select_sections(only: str | None, skip: str | None, quick: bool = False) -> list[Section]:
    """The sections left by ``--only`` and ``--skip`` (comma-separated parts or section names).

    A section run on request is chosen only by its own name in ``--only``, never by its part; with
    ``quick``, a full-profile section likewise."""
    known = {s.part for s in SECTIONS} | {s.name for s in SECTIONS}
    named = {v.strip() for v in (only or "").split(",")}
    chosen = [s for s in SECTIONS if s.name in named or not (s.on_request or (quick and s.full_only))]
    for option, value in (("--only", only), ("--skip", skip)):
        if not value:
            continue
        names = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DlrlError(
                f"{option}: unknown section '{unknown[0]}' (choose from {', '.join(sorted(known))})"
            )
        keep = option == "--only"
        chosen = [s for s in chosen if ((s.part in names) or (s.name in names)) == keep]
    if not chosen:
        raise DlrlError("--only/--skip leave no section to run")
    return chosen


def parse_sets(items: list[str] | None) -> dict[str, list[str]]:
    """``['classifier.epochs=1', ...]`` -> ``{'classifier': ['epochs=1', ...]}``; sections are checked."""
    names = [s.name for s in SECTIONS]
    sets: dict[str, list[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        section, dot, rest = key.strip().partition(".")
        if not sep or not dot or not rest:
            raise DlrlError(f"--set '{shown(item)}': expected SECTION.KEY=VALUE, e.g. classifier.epochs=1")
        if section not in names:
            raise DlrlError(
                f"--set '{shown(item)}': unknown section '{shown(section)}' (choose from {', '.join(names)})"
            )
        sets.setdefault(section, []).append(f"{rest}={value}")
    return sets


def expected_seconds(sections: list[Section], quick: bool) -> dict[str, float]:
    return {s.name: EXPECTED_SECONDS.get(s.name, DEFAULT_EXPECTED)[0 if quick else 1] for s in sections}
