import os

# one BLAS thread, as bsim sets for itself, before this process loads NumPy (bsim/__init__.py says why)
for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import torch  # noqa: E402  (after the BLAS setting above)

torch.set_num_threads(1)
