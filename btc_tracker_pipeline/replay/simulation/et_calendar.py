"""Eastern-time calendar arithmetic for market schedules, and the labels that market
titles and slugs are written with ("March 2-8", "11:15AM")."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def to_et(dt: datetime) -> datetime:
    """A naive-UTC datetime as Eastern time."""
    return dt.replace(tzinfo=UTC).astimezone(ET)


def to_utc(local: datetime) -> datetime:
    """An aware datetime as naive UTC."""
    return local.astimezone(UTC).replace(tzinfo=None)


def clock12(local: datetime, minutes: bool) -> str:
    """12-hour clock label: ``11:15AM`` with ``minutes``, else ``11AM``."""
    hour = local.hour % 12 or 12
    suffix = "AM" if local.hour < 12 else "PM"
    return f"{hour}:{local.minute:02d}{suffix}" if minutes else f"{hour}{suffix}"


def next_month(first: date) -> date:
    """The first day of the month after the one starting at ``first``."""
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def month_bounds(first: date) -> tuple[datetime, datetime]:
    """The month starting at ``first`` as [00:00 ET of its first day, of the next month)."""
    nxt = next_month(first)
    start = datetime(first.year, first.month, 1, tzinfo=ET)
    return to_utc(start), to_utc(datetime(nxt.year, nxt.month, 1, tzinfo=ET))


def week_bounds(monday: date) -> tuple[datetime, datetime]:
    """The week starting on ``monday`` as [Monday 00:00 ET, the next Monday 00:00 ET)."""
    start = datetime(monday.year, monday.month, monday.day, tzinfo=ET)
    end_day = monday + timedelta(days=7)
    return to_utc(start), to_utc(datetime(end_day.year, end_day.month, end_day.day, tzinfo=ET))


def week_label(monday: date) -> tuple[str, str]:
    """("March 2-8", "march-2-8") or ("March 30-April 5", "march-30-april-5")."""
    sunday = monday + timedelta(days=6)
    first = f"{MONTHS[monday.month - 1]} {monday.day}"
    last = (
        str(sunday.day)
        if sunday.month == monday.month
        else (f"{MONTHS[sunday.month - 1]} {sunday.day}")
    )
    text = f"{first}-{last}"
    return text, text.lower().replace(" ", "-")
