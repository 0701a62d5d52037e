"""The one 15-minute partition definition."""

from datetime import datetime

import pytest

from btc_tracker_pipeline.partitions import (
    fifteen_minute_partitions,
    first_partition_key,
    floor_to_window,
    key_of,
    window_of,
    windows_between,
)

pytestmark = pytest.mark.unit


def test_keys_are_quarter_hours_from_2025():
    keys = fifteen_minute_partitions.get_partition_keys(current_time=datetime(2025, 1, 1, 1, 0))
    assert keys == ["2025-01-01-00:00", "2025-01-01-00:15", "2025-01-01-00:30", "2025-01-01-00:45"]


def test_window_of_key_is_half_open_quarter_hour():
    assert window_of("2026-03-01-10:15") == (
        datetime(2026, 3, 1, 10, 15),
        datetime(2026, 3, 1, 10, 30),
    )
    assert key_of(datetime(2026, 3, 1, 10, 15)) == "2026-03-01-10:15"


@pytest.mark.parametrize("bad", ["2026-03-01 10:15", "2026-03-01-10:10", "yesterday"])
def test_malformed_keys_are_rejected_with_the_expected_form(bad):
    with pytest.raises(ValueError, match="partition key"):
        window_of(bad)


def test_windows_between_covers_range():
    ws = windows_between(datetime(2026, 3, 1, 10, 7), datetime(2026, 3, 1, 11, 0))
    assert [w[0].minute for w in ws] == [0, 15, 30, 45]
    assert floor_to_window(datetime(2026, 3, 1, 10, 44, 59)) == datetime(2026, 3, 1, 10, 30)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (None, "2025-01-01-00:00"),
        ("  ", "2025-01-01-00:00"),
        ("2026-11-30", "2026-11-30-00:00"),
        ("2026-11-30-10:45", "2026-11-30-10:45"),
    ],
)
def test_the_first_partition_is_a_day_or_a_window_key(value, key):
    assert first_partition_key(value) == key


@pytest.mark.parametrize("bad", ["yesterday", "2026-11-31", "2026-11-30-10:07"])
def test_a_bad_first_partition_is_refused_in_one_line(bad):
    with pytest.raises(ValueError, match="BTC_TRACKER_FIRST_PARTITION=") as info:
        first_partition_key(bad)
    assert "\n" not in str(info.value)
