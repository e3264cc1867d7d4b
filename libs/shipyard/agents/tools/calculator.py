"""The calculator tool: arithmetic evaluated over a parsed AST, never ``eval``.

Only number literals, the operators ``+ - * / // % **``, parentheses, a few named constants and
functions from ``math`` are accepted; anything else (names, attributes, calls to other functions,
comprehensions) is rejected with the reason. Exponents and results are bounded so ``9**9**9`` or a
factorial of a million is refused up front instead of hanging the server.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from shipyard.agents.tools.base import ToolContext, ToolResult, ToolSpec

__all__ = ["Calculator", "CalculatorError", "evaluate"]

_MAX_EXPONENT = 10_000
_MAX_BITS = 4_096  # ~1233 decimal digits: larger integers are surely a mistake for an agent
_MAX_CHARS = 2_000

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
    "factorial": math.factorial,
}


class CalculatorError(ValueError):
    """The expression is not plain arithmetic, or its value would be unreasonably large."""


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic ``expression`` (e.g. ``"2 * (3 + 4) ** 2 / sqrt(16)"``)."""
    if len(expression) > _MAX_CHARS:
        raise CalculatorError(f"expression longer than {_MAX_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not a valid expression: {exc.msg}") from exc
    return _check(_eval(tree.body))


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        try:
            return _check(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError as exc:
            raise CalculatorError("division by zero") from exc
        except OverflowError as exc:
            raise CalculatorError("result overflowed") from exc
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = _FUNCTIONS.get(node.func.id)
        if fn is None:
            raise CalculatorError(
                f"unknown function {node.func.id!r}; known: {', '.join(sorted(_FUNCTIONS))}"
            )
        args = [_eval(a) for a in node.args]
        if fn is math.factorial and (not args or not isinstance(args[0], int) or args[0] > 1000):
            raise CalculatorError("factorial takes one integer <= 1000")
        try:
            return _check(fn(*args))
        except (TypeError, ValueError, OverflowError) as exc:
            raise CalculatorError(f"{node.func.id}: {exc}") from exc
    raise CalculatorError(f"unsupported syntax: {ast.unparse(node)!r} ({type(node).__name__})")


def _check_power(base: Any, exponent: Any) -> None:
    if abs(exponent) > _MAX_EXPONENT:
        raise CalculatorError(f"exponent {exponent} is larger than {_MAX_EXPONENT}")
    exact = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if exact and abs(base) > 1 and (abs(base).bit_length() - 1) * exponent > _MAX_BITS:
        raise CalculatorError(f"result of {base} ** {exponent} would exceed {_MAX_BITS} bits")


def _check(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise CalculatorError(f"result exceeds {_MAX_BITS} bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("result overflowed (not finite)")
    if isinstance(value, complex):
        raise CalculatorError("result is a complex number")
    return value


class Calculator:
    """Evaluates one arithmetic expression."""

    spec = ToolSpec(
        name="calculator",
        description="Evaluate an arithmetic expression, e.g. '(17 * 23) / 4 + sqrt(2)'. "
        "Supports + - * / // % **, parentheses, pi, e and math functions (sqrt, log, sin, ...).",
        parameters={
            "type": "object",
            "properties": {
                # maxLength bounds a small model that opens the string and never closes it (under
                # constrained decoding anything but a quote keeps a JSON string going).
                "expression": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 200,
                    "description": "The expression.",
                }
            },
            "required": ["expression"],
            "additionalProperties": False,
        },
    )

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            value = evaluate(args["expression"])
        except CalculatorError as exc:
            return ToolResult.failure(str(exc))
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            text = str(int(value))
        else:
            text = repr(value)
        return ToolResult(content=text, data=value)
