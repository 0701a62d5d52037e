"""What the simulated markets and events say about themselves, as real ones do: rules
text, resolution sources, the Chainlink TWAP configuration, series and tags."""

from __future__ import annotations

from typing import Any

from btc_tracker_pipeline.replay import shapes
from btc_tracker_pipeline.replay.simulation.market_terms import (
    ABOVE,
    MONTH,
    REACH,
    UD1H,
    UD5,
    UD15,
)

UPDOWN_15M_DESCRIPTION = (
    'This market will resolve to "Up" if the Bitcoin price at the end of the time range '
    "specified in the title is greater than or equal to the price at the beginning of that "
    'range. Otherwise, it will resolve to "Down".\nThe resolution source for this market is '
    "information from Chainlink, specifically the BTC/USD data stream available at "
    "https://data.chain.link/streams/btc-usd.\nPlease note that this market is about the "
    "price according to Chainlink data stream BTC/USD, not according to other sources or "
    "spot markets."
)
UPDOWN_HOURLY_DESCRIPTION = (
    'This market will resolve to "Up" if the close price is greater than or equal to the '
    "open price for the BTC/USDT 1 hour candle on Binance that begins at the time and date "
    'specified in the title. Otherwise, this market will resolve to "Down".\n\nThe resolution '
    'source for this market is Binance, specifically the BTC/USDT "Open" and "Close" prices '
    'available at https://www.binance.com/en/trade/BTC_USDT with "1h" and "Candles" '
    "selected on the top bar.\n\nPlease note that this market is about the price according "
    "to Binance BTC/USDT, not according to other sources or spot markets."
)
ABOVE_DESCRIPTION = (
    'This market will resolve to "Yes" if the Binance 1 minute candle for BTC/USDT 12:00 in '
    'the ET timezone (noon) on the date specified in the title has a final "Close" price '
    'higher than the price specified in the title. Otherwise, this market will resolve to "No".'
    "\n\nThe resolution source for this market is Binance, specifically the BTC/USDT "
    '"Close" prices currently available at https://www.binance.com/en/trade/BTC_USDT with '
    '"1m" and "Candles" selected on the top bar.\n\nPlease note that this market is about the '
    "price according to Binance BTC/USDT, not according to other sources or spot markets."
    "\n\nPrice precision is determined by the number of decimal places in the source."
)
# Rules-only strikes (see market_builders): the strike is in the "Close" sentence.
ABOVE_RULES_STRIKE = ABOVE_DESCRIPTION.replace(
    'final "Close" price higher than the price specified in the title',
    'final "Close" price of {strike}.01 or higher',
)
TWAP_SOURCE = "https://data.chain.link/streams/btc-usd-twap-60s-streams"
# docs/apis.md §1.6 (5m): the TWAP configuration of a 15-minute and a 5-minute window.
TWAP_CONFIG: dict[str, Any] = {
    "id": "btc-15m-twap-60",
    "asset": "btc",
    "duration": "15m",
    "twapEnabled": True,
    "twapLookbackSeconds": 60,
}
TWAP_CONFIG_5M: dict[str, Any] = TWAP_CONFIG | {"id": "btc-5m-twap-60", "duration": "5m"}
WEEK_HIT_DESCRIPTION = (
    'This market will immediately resolve to "Yes" if any Binance 1 minute candle for '
    "BTC/USDT between Monday 12:00 AM ET and Sunday 11:59 PM ET of the week specified in the "
    'title has a final "{field}" price {cmp} the price specified in the title. Otherwise, '
    'this market will resolve to "No".\n\nThe resolution source for this market is Binance, '
    'specifically the BTC/USDT "{field}" prices available at '
    'https://www.binance.com/en/trade/BTC_USDT with "1m" and "Candles" selected on the top bar.'
)

MONTH_HIT_DESCRIPTION = (
    'This market will immediately resolve to "Yes" if any Binance 1 minute candle for '
    "BTC/USDT between the first day 12:00 AM ET and the last day 11:59 PM ET of the month "
    'specified in the title has a final "{field}" price {cmp} the price specified in the '
    'title. Otherwise, this market will resolve to "No".\n\nThe resolution source for this '
    'market is Binance, specifically the BTC/USDT "{field}" prices available at '
    'https://www.binance.com/en/trade/BTC_USDT with "1m" and "Candles" selected on the top bar.'
)

SERIES = {
    UD5: shapes.series_object(
        "10684", "btc-up-or-down-5m", "BTC Up or Down 5m", "5m", "2025-11-21T21:46:22.201Z"
    ),
    UD15: shapes.series_object(
        "10192", "btc-up-or-down-15m", "BTC Up or Down 15m", "15m", "2025-09-30T16:23:17.404Z"
    ),
    UD1H: shapes.series_object(
        "10114",
        "btc-up-or-down-hourly",
        "BTC Up or Down Hourly",
        "hourly",
        "2025-08-21T19:04:41.412Z",
    ),
    ABOVE: shapes.series_object(
        "10409",
        "btc-multi-strikes-weekly",
        "BTC Multi Strikes Weekly",
        "weekly",
        "2025-08-25T15:20:03.131Z",
    ),
    REACH: shapes.series_object(
        "10410",
        "btc-what-price-hit-weekly",
        "What price will Bitcoin hit (weekly)",
        "weekly",
        "2025-08-25T15:21:44.902Z",
    ),
    MONTH: shapes.series_object(
        "10411",
        "btc-what-price-hit-monthly",
        "What price will Bitcoin hit (monthly)",
        "monthly",
        "2025-08-25T15:22:10.117Z",
    ),
}
TAG_IDS = {
    UD5: ("235", "21", "1312", "101757"),
    UD15: ("235", "21", "1312", "101757"),
    UD1H: ("235", "21", "1312", "101757"),
    ABOVE: ("235", "102264", "102516", "21", "1312", "101757"),
    REACH: ("235", "21", "1312", "101757", "102264"),
    MONTH: ("235", "21", "1312", "101757"),
}
