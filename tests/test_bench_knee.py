"""The knee of `make bench-load`'s sweep (benchmarks/load.py): the fewest users whose
throughput is within 5% of the best seen — where throughput stops rising."""

from __future__ import annotations

from benchmarks.load import knee


def test_the_knee_is_the_fewest_users_within_five_percent_of_the_best() -> None:
    assert knee({1: 45.0, 2: 70.0, 4: 84.0, 8: 87.0, 16: 86.0}) == 4  # 84 ≥ 0.95 × 87


def test_a_dip_after_the_best_does_not_move_the_knee() -> None:
    assert knee({1: 40.0, 2: 60.0, 4: 80.0, 8: 100.0, 16: 70.0}) == 8


def test_still_rising_gives_the_largest_count() -> None:
    assert knee({1: 10.0, 2: 20.0, 4: 40.0}) == 4


def test_the_order_of_the_table_does_not_matter_and_the_tolerance_is_a_share() -> None:
    table = {16: 100.0, 1: 50.0, 8: 91.0, 4: 89.0}
    assert knee(table) == 16
    assert knee(table, tolerance=0.1) == 8
    assert knee(table, tolerance=0.12) == 4
