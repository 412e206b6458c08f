"""Gradient-noise statistics and the epsilon-ball (the formulas and their checks: docs/science.md).

One quantity per module, apart from any drawing:
  cfactor     c_B, the SGD temperature, the variance-vs-B theory line
  perexample  per-example gradients: closed form, torch.func vmap, a loop
  twobatch    the two-batch-size estimator of tr(Sigma) and |G|^2
  fullgrad    the full gradient and tr(Sigma) at many parameters at once (linear models)
  lyapunov    the stationary second moment of SGD as a linear system
  ball        the predicted epsilon-ball per setting, cached
  window      the measured ball and variance averages over steps
  chains      many independent SGD chains, vectorised (precise ball measurements)
  probe       K fresh batches at the current parameters
  info        what goes into a frame (frame.stats, frame.ball, frame.probe)
  strategy    what NoiseStats and its strategies pass between them (settings, step quantities, chunks)
  exact       the exact strategy: linear models, closed-form per-example gradients, the exact ball
  sampled     the sampled strategy: the LSTM, two-batch estimates, the spread around the running average
  noise_stats NoiseStats: the orchestrator attached to a running Simulation
"""

from bsim.stats.noise_stats import NoiseStats

__all__ = ["NoiseStats"]
