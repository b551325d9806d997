"""The report's SVG charts: one path per colour, drawn where the buckets are."""

import re
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

from dashboard.reports import charts

UTC = ZoneInfo("UTC")
START, STEP = 1_700_000_000 - 1_700_000_000 % 3600, 3600
SVG = "{http://www.w3.org/2000/svg}"


def boxes(path: str) -> list[tuple[float, float, float, float]]:
    """(x, y, width, height) of each closed subpath M x y h w v h h -w z."""
    pattern = r"M([\d.]+) ([\d.]+)h([\d.]+)v([\d.]+)h-([\d.]+)z"
    found = [tuple(map(float, match[:4])) for match in re.findall(pattern, path)]
    assert "".join(re.findall(r"M[^M]*", path)) == path and len(found) == path.count("M")  # nothing else in it
    return found


def paths_by_fill(svg: str) -> dict[str, list]:
    root = ET.fromstring(svg)
    assert not root.findall(f"{SVG}rect"), "rectangles are subpaths of one path per colour"
    return {path.get("fill"): boxes(path.get("d")) for path in root.iter(f"{SVG}path") if path.get("fill") != "none"}


def test_availability_strips_draw_one_path_per_colour_with_a_box_per_run():
    # Row one: 10 good hours, 2 poor, 12 good, 24 hours in all; row two: a fair hour, then nothing.
    good, poor, fair = (100, 100), (100, 50), (100, 99)
    first = [[START + i * STEP, *(poor if i in (10, 11) else good), 20.0, 30.0] for i in range(24)]
    second = [[START, *fair, 20.0, 30.0]]
    svg = charts.availability_strips([("first", first), ("second", second)], START, START + 24 * STEP, STEP, UTC)
    shapes = paths_by_fill(svg)
    scale = (charts.WIDTH - charts.LABEL_WIDTH) / (24 * STEP)
    left, row = charts.LABEL_WIDTH, charts.ROW_HEIGHT + charts.ROW_GAP

    # Each row's background, under the runs: the "none" path comes first.
    assert list(shapes)[0] == charts.COLOURS["none"]
    assert [(x, y) for x, y, *_ in shapes[charts.COLOURS["none"]]] == [(left, 0), (left, row)]
    good_runs = shapes[charts.COLOURS["good"]]
    assert [(round(x - left, 1), y, round(w, 1)) for x, y, w, _ in good_runs] == [
        (0.0, 0.0, round(10 * STEP * scale, 1)),
        (round(12 * STEP * scale, 1), 0.0, round(12 * STEP * scale, 1)),
    ]
    (poor_run,) = shapes[charts.COLOURS["poor"]]
    assert round(poor_run[0] - left, 1) == round(10 * STEP * scale, 1) and round(poor_run[2], 1) == round(
        2 * STEP * scale, 1
    )
    (fair_run,) = shapes[charts.COLOURS["fair"]]
    assert fair_run[1] == row and all(height == charts.ROW_HEIGHT for *_, height in good_runs + [fair_run])
    # Labels stay text, one per row, plus the axis's.
    texts = [text.text for text in ET.fromstring(svg).iter(f"{SVG}text")]
    assert texts[:2] == ["first", "second"] and len(texts) > 2


def test_the_latency_grid_draws_its_grid_and_ticks_as_one_stroked_path_per_cell():
    points = [[START + i * STEP, 100, 100, 20.0 + i, 30.0 + i] for i in range(24)]
    svg = charts.latency_grid([("a", points), ("b", points)], START, START + 24 * STEP, STEP, UTC)
    root = ET.fromstring(svg)
    assert not root.findall(f".//{SVG}line")
    stroked = [path for path in root.iter(f"{SVG}path") if path.get("fill") == "none"]
    # Per cell: the three grid lines in one path, the axis and its ticks in another.
    assert len(stroked) == 4 and all(path.get("stroke") == charts.GRID for path in stroked)
    grid = stroked[0].get("d")
    assert grid.count("M") == 3 and grid.count("H") == 3
    assert len(root.findall(f".//{SVG}polyline")) == 4  # average and p95 of each cell


def test_the_latency_grid_is_cut_into_images_a_pdf_page_can_hold_and_keeps_every_target():
    points = [[START + i * STEP, 100, 100, 20.0, 30.0] for i in range(24)]
    names = [f"target-{index:02d}" for index in range(20)]
    grid = charts.latency_grid([(name, points) for name in names], START, START + 24 * STEP, STEP, UTC)
    images = re.findall(r"<svg\b.*?</svg>", grid, re.S)
    assert len(images) == 4  # 6 + 6 + 6 + 2 cells
    for image in images:
        assert float(ET.fromstring(image).get("height")) <= 3 * (charts.LATENCY_HEIGHT + 16) + 10  # under a page
    bold = [
        text.text for image in images for text in ET.fromstring(image).iter(f"{SVG}text") if text.get("font-weight")
    ]
    assert bold == names
    assert grid.count(">average<") == 1  # the legend, on the first image only
