"""The ensemble: K independent chains of one problem (``chains = K``, ``--chains K``).

  sampler  the chains' batches, in step with the run's sampler
  steps    one batched SGD step of all chains; their training losses
  memory   the estimate of what K chains need, checked before allocating
  engine   Ensemble: chains 1..K-1 attached to a Simulation (chain 0)
"""

from bsim.ensemble.engine import Ensemble, attach, rebuild

__all__ = ["Ensemble", "attach", "rebuild"]
