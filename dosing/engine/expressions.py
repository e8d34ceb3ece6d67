"""Safe arithmetic expressions for model files.

A model file writes its typical values as expressions such as ``"4.5 * (CRCL / 120) ** 0.8 * 0.7 ** DIAL"``.
They are parsed with :mod:`ast` and only a whitelist of nodes is accepted: numbers, names, ``+ - * / **``,
unary minus, comparisons (which give 1.0 or 0.0) and calls to a fixed set of numpy functions. Anything else
(attribute access, subscripts, lambdas, strings, keywords) is refused when the model is loaded, so evaluating
a model can never run arbitrary code. Expressions are compiled once into closures over numpy and evaluate on
floats or arrays alike.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Value = Any  # float or numpy array; kept loose because expressions broadcast
Env = Mapping[str, Value]
Compiled = Callable[[Env], Value]


class ExpressionError(ValueError):
    """An expression uses a construct or a name outside the whitelist."""


def _where(cond: Value, a: Value, b: Value) -> Value:
    return np.where(np.asarray(cond) != 0, a, b)


_FUNCTIONS: dict[str, tuple[int, Callable[..., Value]]] = {
    "exp": (1, np.exp),
    "log": (1, np.log),
    "log10": (1, np.log10),
    "sqrt": (1, np.sqrt),
    "abs": (1, np.abs),
    "min": (2, np.minimum),
    "max": (2, np.maximum),
    "where": (3, _where),
}

_BINARY: dict[type[ast.operator], Callable[[Value, Value], Value]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
}

_COMPARE: dict[type[ast.cmpop], Callable[[Value, Value], Value]] = {
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}

MAX_EXPRESSION_LENGTH = 2000


@dataclass(frozen=True)
class Expression:
    """A parsed, whitelisted expression.

    Attributes
    ----------
    source : str
        The text as written in the model file.
    names : frozenset of str
        The variable names it reads.

    Examples
    --------
    >>> e = parse_expression("4.5 * (CRCL / 120) ** 0.8 * 0.7 ** DIAL")
    >>> sorted(e.names)
    ['CRCL', 'DIAL']
    >>> round(float(e({"CRCL": 120.0, "DIAL": 1.0})), 6)
    3.15
    >>> parse_expression("__import__('os').system('ls')")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dosing.engine.expressions.ExpressionError: call to "__import__('os').system" is not allowed in ...
    """

    source: str
    names: frozenset[str]
    _fn: Compiled

    def __call__(self, env: Env) -> Value:
        return self._fn(env)


def parse_expression(source: str) -> Expression:
    """Parse and compile ``source``; raise :class:`ExpressionError` if it is not whitelisted."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("an expression must be a non-empty string")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse {source!r}: {exc.msg}") from None
    names: set[str] = set()
    fn = _compile(tree.body, source, names)
    return Expression(source=source, names=frozenset(names), _fn=fn)


def _compile(node: ast.AST, source: str, names: set[str]) -> Compiled:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ExpressionError(f"only numeric constants are allowed in {source!r}")
        const = float(node.value)
        return lambda env: const
    if isinstance(node, ast.Name):
        name = node.id
        names.add(name)

        def read(env: Env) -> Value:
            return env[name]

        return read
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op = _BINARY[type(node.op)]
        left, right = _compile(node.left, source, names), _compile(node.right, source, names)
        return lambda env: op(left(env), right(env))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _compile(node.operand, source, names)
        if isinstance(node.op, ast.USub):
            return lambda env: np.negative(operand(env))
        return operand
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        cmp = _COMPARE[type(node.ops[0])]
        left, right = _compile(node.left, source, names), _compile(node.comparators[0], source, names)
        return lambda env: np.asarray(cmp(left(env), right(env)), dtype=float)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            label = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ExpressionError(f"call to {label!r} is not allowed in {source!r}")
        arity, func = _FUNCTIONS[node.func.id]
        if node.keywords or len(node.args) != arity:
            raise ExpressionError(f"{node.func.id}() takes {arity} positional argument(s) in {source!r}")
        args = [_compile(a, source, names) for a in node.args]
        return lambda env: func(*(a(env) for a in args))
    raise ExpressionError(f"{type(node).__name__} is not allowed in {source!r}")
