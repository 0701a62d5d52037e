"""The parts of the simulated world (``replay.simulated.SimulatedWorld``), one job each."""
