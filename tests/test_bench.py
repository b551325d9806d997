"""`make bench` can fail: a figure below its goal, an empty one, a goal never measured; and the figures table of
docs/benchmarks.md is the recorded run's (bench/results.json), made by `python -m bench.docs`."""

from bench import docs
from bench.results import GOALS, Figure, missed


def test_the_documented_figures_are_the_recorded_runs():
    text = docs.DOC.read_text()
    assert docs.current_block(text) == docs.generated_block(), "run python -m bench.docs after make bench"


def test_a_missed_an_empty_and_an_unmeasured_goal_each_fail_the_bench():
    measured = {name: Figure(name, 1.0, "ms") for name in GOALS}
    measured["detail_ms_1y"] = Figure("detail_ms_1y", 60.6, "ms")  # goal <= 50
    measured["probes_per_second"] = Figure("probes_per_second", None, "/s")  # came out empty
    del measured["report_ms_1y_20_targets"]
    figures = list(measured.values()) + [Figure("no_goal_ms", 10_000.0, "ms")]
    assert measured["detail_ms_1y"].verdict() == "FAIL"
    assert measured["probes_per_second"].verdict() == "MISSING"
    assert sorted(missed(figures, every_section_ran=True)) == [
        "detail_ms_1y",
        "probes_per_second",
        "report_ms_1y_20_targets (not measured)",
    ]
    # A partial run (--only) judges only what it measured.
    assert sorted(missed(figures, every_section_ran=False)) == ["detail_ms_1y", "probes_per_second"]
    assert (
        missed([Figure(name, 1.0, "ms") for name in GOALS if name != "probes_per_second"], every_section_ran=False)
        == []
    )


def test_the_table_says_how_fast_the_machine_was():
    from bench.__main__ import cpu_reference_ms
    from bench.results import markdown_table

    speed = cpu_reference_ms(runs=1)
    assert speed > 0
    report = {"figures": {}, "cpu_reference_ms": {"before": speed, "after": 91.5}}
    assert f"{speed} ms before the first section, 91.5 ms after the last" in markdown_table(report)
    assert "machine's speed" not in markdown_table({"figures": {}})  # runs recorded before it was measured
