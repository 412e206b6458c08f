"""bsim: a terminal laboratory for minibatch noise in SGD."""

__version__ = "0.1.0"
