"""Races: several batch sizes trained side by side from one start (``bsim race``).

One lane per batch size: the same scenario, data, theta_0 and seed; each lane
is a Simulation you could have run alone (``bsim run SCENARIO --batch-size B``),
so a lane's rows equal that run's rows bit for bit. Lanes advance in lockstep
on a shared budget axis: samples seen (the fair budget, the default), steps,
or this machine's measured seconds.

Flow: race.lanes / race.race (the lanes and the lockstep) -> race.frame
(RaceFrame, what the views read) -> bsim.app.race (the screen). The core never
imports Textual.
"""
