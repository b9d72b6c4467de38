"""The overview page's generated figure and tables match the course map and chapter results."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from fromscratch import course_map
from fromscratch.report import read_metrics

ROOT = Path(__file__).resolve().parents[1]


def _load_builder():
    path = ROOT / "tools" / "build_overview.py"
    spec = importlib.util.spec_from_file_location("build_overview", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_overview = _load_builder()


def test_map_lists_all_fourteen_model_types_consistently():
    assert len(course_map.MODEL_TYPES) == 14
    assert [m.number for m in course_map.MODEL_TYPES] == list(range(1, 15))
    course_map.validate()
    for m in course_map.MODEL_TYPES:
        assert m.inputs and m.outputs and m.built_from, m.key


def test_validate_rejects_reuse_of_a_later_chapter():
    first, second = course_map.MODEL_TYPES[:2]
    bad = (course_map.ModelType(**{**first.__dict__, "reuses": (second.key,)}), second)
    with pytest.raises(ValueError, match="not an earlier model type"):
        course_map.validate(bad)


def test_every_toc_chapter_is_on_the_map():
    toc = (ROOT / "_toc.yml").read_text()
    chapters = {m.chapter for m in course_map.MODEL_TYPES if m.chapter}
    for line in toc.splitlines():
        entry = line.strip().removeprefix("- file:").strip()
        if entry.startswith("chapters/") and entry[len("chapters/"):][:2].isdigit():
            assert entry in chapters, f"{entry} is in _toc.yml but not in fromscratch.course_map"


def test_generated_overview_files_are_up_to_date():
    problems = build_overview.stale()
    assert not problems, "; ".join(problems) + " -- run: python tools/build_overview.py"


def test_written_chapters_record_their_metrics():
    assert not build_overview.missing_metrics(), (
        "each chapter must call fromscratch.report.record with "
        f"{course_map.REQUIRED_METRICS} and its quality metric"
    )


def test_results_table_uses_the_notebooks_numbers():
    cnn = course_map.BY_KEY["cnn"]
    metrics = read_metrics(cnn.notebook(ROOT))
    table = build_overview.chapter_results_table()
    assert f"{metrics['parameters']:,}" in table
    assert f"{metrics['train_seconds']:.1f} s" in table


def test_unwritten_chapters_show_as_coming(tmp_path):
    table = build_overview.model_types_table(tmp_path)  # no notebooks here at all
    assert table.count("*(coming)*") == 14
    assert "{doc}" not in table


def test_format_metric():
    assert build_overview.format_metric("test_accuracy", 0.9911) == "99.1%"
    assert build_overview.format_metric("parameters", 53002) == "53,002"
    assert build_overview.format_metric("char_perplexity", 4.5678) == "4.57"


def test_map_svgs_link_written_chapters_and_mark_the_rest_coming(tmp_path):
    import xml.etree.ElementTree as ET

    ns = {"svg": "http://www.w3.org/2000/svg"}
    written = [m for m in course_map.MODEL_TYPES if m.is_written(ROOT)]
    for _, columns, width in build_overview.MAP_LAYOUTS:
        svg = ET.fromstring(build_overview.render_svg(columns, width))
        assert svg.get("viewBox").startswith(f"0 0 {width} ")
        links = [a.get("href") for a in svg.findall("svg:a", ns)]
        assert links == [f"{m.chapter}.html" for m in written]
        coming = svg.findall("svg:g", ns)
        assert len(coming) == 14 - len(written)
        for g in coming:
            assert "coming" in "".join(g.itertext())
        sizes = {float(t.get("font-size")) for t in svg.iter("{http://www.w3.org/2000/svg}text")}
        assert min(sizes) >= 11, "the smallest map text must stay readable on a phone"
    nothing_written = build_overview.render_svg(1, 320, tmp_path)
    assert "<a " not in nothing_written and nothing_written.count("(coming)") == 14


def test_map_text_lines_fit_their_boxes():
    """Each wrapped line fits its box at the generous character width the layout assumes."""
    for _, columns, width in build_overview.MAP_LAYOUTS:
        box_w = (width - 2 * 10 - (columns - 1) * 12) / columns - 2 * 10
        for m in course_map.MODEL_TYPES:
            for text in ("built from: " + ", ".join(m.built_from), f"{m.inputs} \u2192 {m.outputs}"):
                for line in build_overview._wrap(text, box_w, build_overview.FONT["body"]):
                    assert len(line) * build_overview.CHAR_EM * build_overview.FONT["body"] <= box_w
