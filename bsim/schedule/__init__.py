"""Schedules of a run: the batch size and the lr changed by epoch, lr warm-up, an adaptive batch size.

``[schedule]`` in a scenario (``bsim.schedule.schema``, registered at ``import bsim``) becomes a
``Schedule`` (``bsim.schedule.schedule``) that the simulation asks before every step for the setting
actions due (``SetBatchSize``, ``SetLR``), which it applies like any other action. The adaptive batch
size's test lives in ``bsim.schedule.adaptive``. This package's root imports nothing: the schema is
read at every load of a file, without torch.
"""
