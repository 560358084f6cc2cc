"""The settings several objectives share (an objective's own ones are declared in its file), and the
objective interface, which lives in the kernel (bench/objective.py) and is re-exported here for the
objectives' files."""

from bench.objective import LossInputs, Objective
from bench.settings import choice, non_negative, positive
from bench.spec import LOOP

RETAIN_WEIGHT = non_negative("retain_weight", 1.0, "lambda: weight of the retain term (GD, KL, NPO, IHL, ...)",
                             late=False)
# methods/losses.py's retain_term skips the whole term, and so its choice of loss, at weight 0
RETAIN_LOSS = choice("retain_loss", "nll", ("nll", "kl"),
                     "the retain regulariser of every objective with one: nll, or kl to the frozen model",
                     read_when=lambda hp: hp.retain_weight > 0, condition="read only when retain_weight > 0",
                     wants_reference=lambda value: value == "kl")
FORGET_WEIGHT = non_negative("forget_weight", 1.0, "gamma: weight of the forget term")
BETA = positive("beta", 1.0, "the objective's temperature / sharpness (SimNPO, IdkDPO, UNDIAL, WGA)")

RETAIN_TERM = (RETAIN_WEIGHT, RETAIN_LOSS)  # what losses.retain_term reads

__all__ = ["LossInputs", "Objective", "LOOP", "RETAIN_WEIGHT", "RETAIN_LOSS", "FORGET_WEIGHT", "BETA", "RETAIN_TERM"]
