"""MindSearch-style research mode: plan sub-questions as a graph, search them in parallel, answer citing.

``run_research(question, model=, search=, settings=, limits=)`` yields ``AgentEvent``s: the planner's
``plan`` (``graph``, ``planner``), each searcher's ``tool_call``/``tool_result``/``thought`` tagged with
its node (``searcher``), the responder's ``partial_answer``s and a ``final_answer`` whose citations name
retrieved passages by document id (``responder``, ``citations``); ``run`` wires them under one
``RunBudget`` (``budget``).
"""

from __future__ import annotations

from shipyard.agents.research.graph import ResearchGraph, SubQuestion, repair_graph
from shipyard.agents.research.run import run_research

__all__ = ["ResearchGraph", "SubQuestion", "repair_graph", "run_research"]
