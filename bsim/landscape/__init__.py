"""Landscapes: what the escape from a basin is measured and predicted by (problems: bsim.problems.wells, nonuniform).

  info     what a frame carries (frame.landscape: LandscapeInfo); no torch
  theory   Kramers' escape time (tilted wells) and the linear-stability factor rho (non-uniform minima)
  basins   the steepest-descent map of the full loss
  escape   EscapeMeter: per step, the chains' basins, escapes and chain-steps survived; per frame, the info
"""
