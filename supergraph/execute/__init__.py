"""Execution: run a plan against the subgraphs and shape the client's response."""

from supergraph.execute.executor import ExecutionState, PlanExecutor
from supergraph.execute.fetcher import Fetcher, SubgraphEndpoint, SubgraphResponse
from supergraph.execute.response import OutSelection, ResponseShaper, compile_operation

__all__ = [
    "ExecutionState",
    "Fetcher",
    "OutSelection",
    "PlanExecutor",
    "ResponseShaper",
    "SubgraphEndpoint",
    "SubgraphResponse",
    "compile_operation",
]
