"""Loopback stand-in for Gamma, CLOB and Binance: ``ReplayServer`` over a ``World``."""

from btc_tracker_pipeline.replay.faults import FaultSpec
from btc_tracker_pipeline.replay.server import ReplayServer

__all__ = ["FaultSpec", "ReplayServer"]
