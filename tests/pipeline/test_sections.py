"""The section table of ``dlrl run`` and choosing among it."""

from __future__ import annotations

import pytest

from dlrl.errors import DlrlError
from dlrl.experiments import EXPERIMENTS
from dlrl.pipeline.sections import EXPECTED_SECONDS, SECTIONS, expected_seconds, parse_sets, select_sections


def test_every_section_has_an_expected_duration_and_a_registered_experiment() -> None:
    from dlrl.experiments.search import resolve_search

    names = [s.name for s in SECTIONS]
    assert len(names) == len(set(names))
    for section in SECTIONS:
        if section.searched:
            assert resolve_search(section.searched, quick=True).experiment == section.searched, section
        else:
            assert section.experiment in EXPERIMENTS, section
        assert section.part in ("part1", "part2", "part3"), section
    assert set(EXPECTED_SECONDS) <= set(names)


def test_select_sections_by_part_and_name() -> None:
    assert [s.name for s in select_sections("part1", "search")] == ["regression", "classifier"]
    assert [s.name for s in select_sections("dqn,vae", None)] == ["vae", "dqn"]  # in the run's order
    on_request = [s for s in SECTIONS if s.on_request]
    assert [s.name for s in on_request] == ["dqn-pixels"]
    assert select_sections(None, None) == [s for s in SECTIONS if not s.on_request]
    assert [s.name for s in select_sections("part3", None)] == ["dqn", "lunarlander"]  # not by its part
    assert [s.name for s in select_sections("part3", None, quick=True)] == ["dqn"]  # full profile only
    assert [s.name for s in select_sections("dqn-pixels", None, quick=True)] == ["dqn-pixels"]
    with pytest.raises(DlrlError, match="--skip: unknown section 'nope'"):
        select_sections(None, "nope")


def test_parse_sets_groups_overrides_by_section() -> None:
    sets = parse_sets(["classifier.epochs=1", "classifier.data.limit=300", "dqn.seeds=[0]"])
    assert sets == {"classifier": ["epochs=1", "data.limit=300"], "dqn": ["seeds=[0]"]}
    assert parse_sets(None) == {}


def test_expected_seconds_per_profile() -> None:
    chosen = select_sections("classifier", None)
    assert expected_seconds(chosen, quick=True) == {"classifier": EXPECTED_SECONDS["classifier"][0]}
    assert expected_seconds(chosen, quick=False) == {"classifier": EXPECTED_SECONDS["classifier"][1]}
