"""bsim: a terminal laboratory for minibatch noise in SGD.

Importing bsim registers the features' own tables of a scenario file with
``bsim.scenario`` (``register_table``): ``[recording]``, ``[race]``,
``[sweep]`` and ``[schedule]`` are checked by their features at every load, wherever a file is read.
"""

__version__ = "0.1.0"

from bsim import recording_schema as _recording_schema  # noqa: E402, F401  (after __version__: they read it)
from bsim.race import schema as _race_schema  # noqa: E402, F401
from bsim.sweep import schema as _sweep_schema  # noqa: E402, F401
from bsim.schedule import schema as _schedule_schema  # noqa: E402, F401
