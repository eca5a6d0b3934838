"""Query planning: an operation against the supergraph becomes a printable `QueryPlan`."""

from supergraph.plan.nodes import (
    FetchNode,
    FlattenNode,
    ParallelNode,
    PlanNode,
    QueryPlan,
    SequenceNode,
)
from supergraph.plan.planner import PlanningError, plan_operation
from supergraph.plan.printer import print_plan

__all__ = [
    "FetchNode",
    "FlattenNode",
    "ParallelNode",
    "PlanNode",
    "PlanningError",
    "QueryPlan",
    "SequenceNode",
    "plan_operation",
    "print_plan",
]
