"""bsim: a terminal laboratory for minibatch noise in SGD.

Importing bsim registers the features' own tables of a scenario file with
``bsim.scenario`` (``register_table``): ``[recording]``, ``[race]``,
``[sweep]`` and ``[schedule]`` are checked by their features at every load, wherever a file is read.
"""

__version__ = "0.1.0"

import os  # noqa: E402

# bsim's linear algebra is small (d up to a few hundred): one BLAS thread is 10-60x faster than many when the
# training thread and the screen share the cores (eigvalsh of 300x300: 0.016 s against 0.9 s on 2 busy cores).
# Set before NumPy loads its BLAS; a user's own setting wins.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from bsim import recording_schema as _recording_schema  # noqa: E402, F401  (after __version__: they read it)
from bsim.race import schema as _race_schema  # noqa: E402, F401
from bsim.sweep import schema as _sweep_schema  # noqa: E402, F401
from bsim.schedule import schema as _schedule_schema  # noqa: E402, F401
