"""The families' Python reference and the generic evaluator of any plan.

One module per group of families (`book`, `trade`, `transforms`, `timewin`); `evaluator`
runs a compiled plan (`featureplane.features.plan`) for one symbol. On the built-in plan it
gives the same values, masks and flags as the specialised `lob_shared_v1` state, bit for bit
(tests/realdata/test_plan_evaluator.py).
"""

from featureplane.features.families.evaluator import NODE_CLASSES, PlanState

__all__ = ["NODE_CLASSES", "PlanState"]
