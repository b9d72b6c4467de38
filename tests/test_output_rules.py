"""The notebook output comparison: tolerant where CPUs differ, exact where they cannot."""

import nbformat
import pytest
from output_rules import cell_difference, numbers_match, text_difference, tokens


def _cell(*texts, tags=(), error=None):
    outputs = [nbformat.v4.new_output("stream", name="stdout", text=t) for t in texts]
    if error:
        outputs.append(nbformat.v4.new_output("error", ename=error, evalue="boom", traceback=[]))
    return nbformat.v4.new_code_cell("x", metadata={"tags": list(tags)}, outputs=outputs)


def test_tokens_separate_numbers_from_text():
    assert tokens("acc 0.97, shape (2, 10); 53,002 params; 1e-05.") == [
        "acc ", "0.97", ", shape (", "2", ", ", "10", "); ", "53,002", " params; ", "1e-05", "."]
    assert tokens("conv2d f0 v1.2.3 3x3") == ["conv2d f0 v1.2.3 3x3"]


@pytest.mark.parametrize("committed,fresh,ok", [
    ("53,002", "53,002", True), ("53,002", "53,003", False),  # integers are exact
    ("0.976", "0.954", True), ("0.976", "0.940", False),  # 3 points
    ("97.6%", "95.0%", True), ("97.6%", "93.0%", False),
    ("8.88", "9.2", True), ("8.88", "9.5", False),  # 5%
    ("1.35e-11", "1.4e-11", True), ("1.35e-11", "4.2e-03", False),
    ("1", "0.99", True),  # a float printed with :g may lose its decimal point
])
def test_number_tolerances(committed, fresh, ok):
    assert numbers_match(committed, fresh) is ok


def test_a_stated_spread_widens_the_tolerance_of_its_mean_only():
    committed = "shifted: 0.67 ± 0.06 | clean 0.99"
    assert text_difference(committed, "shifted: 0.62 ± 0.07 | clean 0.98") is None
    assert "0.67" in text_difference(committed, "shifted: 0.60 ± 0.06 | clean 0.99")
    assert "0.99" in text_difference(committed, "shifted: 0.67 ± 0.06 | clean 0.95")
    # the spread itself, from a few seeds, may halve or double, not more
    assert text_difference(committed, "shifted: 0.67 ± 0.10 | clean 0.99") is None
    assert text_difference("FD 53.8 ± 3.6", "FD 55.1 ± 5.0") is None
    assert "0.06" in text_difference(committed, "shifted: 0.67 ± 0.13 | clean 0.99")
    assert "3.6" in text_difference("FD 53.8 ± 3.6", "FD 53.8 ± 1.7")
    assert "0.0" in text_difference("entropy 2.25 ± 0.0 nats", "entropy 2.25 ± 0.9 nats")
    assert text_difference("0.24 and 0.5 ± 0.03", "0.27 and 0.47 ± 0.03") is None  # edges
    # without the ± sign the usual tolerance holds
    assert text_difference("shifted: 0.67 (0.06)", "shifted: 0.62 (0.06)") is not None


def test_text_must_match_exactly_apart_from_spacing():
    assert text_difference("CNN:  53,002 parameters", "CNN: 53,002 parameters") is None
    assert "line 1" in text_difference("kernel 3x3", "kernel 5x5")
    assert "committed 0.9" in text_difference("acc 0.9 ok", "acc 0.5 ok")


def test_stale_output_fails_and_measured_noise_passes():
    committed = _cell("test accuracy 0.9911\nparameters: 53,002\n")
    assert cell_difference(committed, _cell("test accuracy 0.9889\n", "parameters: 53,002\n")) is None
    assert "53,002" in cell_difference(committed, _cell("test accuracy 0.9911\nparameters: 3,706\n"))
    assert "kind" in cell_difference(committed, _cell())
    assert "raised ValueError" in cell_difference(committed, _cell("x", error="ValueError"))


def test_ignored_cells_must_still_run():
    committed = _cell("12.3 ms", tags=["nbval-ignore-output"])
    assert cell_difference(committed, _cell("99.9 ms and more")) is None
    assert "raised" in cell_difference(committed, _cell(error="RuntimeError"))
