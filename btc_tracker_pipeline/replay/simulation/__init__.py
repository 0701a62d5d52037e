"""The parts of the simulated world (``replay.simulated.SimulatedWorld``), one job each:

* ``keyed_random``: deterministic random numbers; ``timeline``: the world's minutes.
* ``btc_path``: the BTC candles; ``settlement``: the Chainlink feed and who won.
* ``et_calendar``, ``market_terms``, ``market_wording``, ``market_factory``,
  ``event_builders``, ``market_catalogue``: which markets exist, what they say and
  when they list and close.
* ``fair_value``, ``quotes``, ``oracle``: what the markets are worth and are quoted at.
* ``gamma_answers``, ``clob_answers``, ``binance_answers``: the world in each API's shapes.
"""
