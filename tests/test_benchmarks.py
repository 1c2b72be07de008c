"""The benchmark helpers that carry numbers into the report: the held-out bookkeeping and the data-path
arithmetic must be right (the inference graph the benchmark times is product code:
tests/test_inference_graph.py)."""
import pytest

from benchmarks import datapath, quality


def test_seen_in_training_finds_benchmark_images_by_stem_and_tile_name(tmp_path):
    (tmp_path / "img_001_y0000_x0128.png").write_bytes(b"")
    (tmp_path / "img_003.png").write_bytes(b"")
    (tmp_path / "astronaut_01.png").write_bytes(b"")
    ids = ["img_001.png", "img_002.png", "img_003.png", "img_010.png"]
    assert quality.seen_in_training(str(tmp_path), ids) == ["img_001.png", "img_003.png"]
    assert quality.seen_in_training(str(tmp_path / "absent"), ids) == []


def test_break_even_is_where_end_to_end_reaches_the_ratio():
    plain, steady, fixed = 80.0, 140.0, 50.0
    n = datapath.break_even(plain, steady, fixed)
    assert n / (fixed + n / steady) == pytest.approx(1.5 * plain)
    assert datapath.break_even(plain, 100.0, fixed) == float("inf")  # steady state below 1.5x: never
    assert datapath.break_even(plain, float("nan"), fixed) == float("inf")  # no steady state measured
