"""Stage progress: elapsed time and an ETA refined by how fast the finished stages really were."""

from __future__ import annotations

from dlrl.progress import StageProgress, format_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_starts_from_expectations_and_scales_with_observed_speed() -> None:
    clock = Clock()
    progress = StageProgress({"a": 10, "b": 20, "c": 30}, clock=clock)
    assert progress.start("a") == "[1/3] a: started  (elapsed 0:00, ETA 1:00)"
    clock.now += 5
    assert progress.eta() == 55  # half of a's expected time used
    clock.now += 15
    assert progress.finish("a") == "[1/3] a: done in 0:20  (elapsed 0:20, ETA 1:40)"  # twice as slow
    assert progress.ratio == 2.0
    progress.start("b")
    clock.now += 60  # far over b's scaled expectation of 40 s: a little is always left, never negative
    assert progress.eta() == 0.1 * 40 + 60
    assert progress.finish("b", "FAILED").startswith("[2/3] b: FAILED in 1:00")


def test_skipped_stages_leave_the_eta_and_the_ratio_is_clamped() -> None:
    clock = Clock()
    progress = StageProgress({"a": 10, "b": 20}, clock=clock)
    assert progress.skip("a", "done earlier, skipped").endswith("(elapsed 0:00, ETA 0:20)")
    progress.start("b")
    clock.now += 1000
    progress.finish("b")
    assert progress.ratio == StageProgress.MAX_RATIO and progress.eta() == 0


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (None, 0, 59.6, 75, 3725)] == ["?", "0:00", "1:00", "1:15", "1:02:05"]
