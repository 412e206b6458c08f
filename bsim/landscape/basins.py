"""The steepest-descent map of a landscape's full loss: which minimum gradient flow from a point reaches.

Below the saddle's level the basin is the piece of {L < L_saddle} the point is in
(``problem.component``; gradient flow never leaves it). Points above it follow the flow
d theta / dt = -grad L by explicit Euler with step 0.2 / (the largest curvature) until they
fall below the level; a point still above after ``MAX_ITERATIONS`` (on the saddle's stable
manifold, to rounding) is put on the side of the saddle it is on.
"""

from __future__ import annotations

import torch

MAX_ITERATIONS = 2000


def descend(problem, theta: torch.Tensor) -> torch.Tensor:
    """(K,) the basin of each (K, d) point by the steepest-descent map of the full loss."""
    with torch.no_grad():
        basin = problem.component(theta)
        todo = basin < 0
        if not bool(todo.any()):
            return basin
        pts = theta[todo].clone()
        h = 0.2 / max(problem.max_curvature, getattr(problem, "ks", 0.0))
        found = torch.full((pts.shape[0],), -1, dtype=basin.dtype, device=basin.device)
        for _ in range(MAX_ITERATIONS):
            pts = pts - h * problem.full_grad_many(pts)
            comp = problem.component(pts)
            found = torch.where(found < 0, comp, found)
            if bool((found >= 0).all()):
                break
        saddle_x = problem.saddles[0][0]
        found = torch.where(found < 0, (pts[:, 0] > saddle_x).long(), found)
        basin[todo] = found
        return basin
