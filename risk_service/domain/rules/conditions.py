"""The rule condition language: a typed whitelist of Python expression syntax, compiled to closures.

Conditions are parsed with `ast.parse(mode="eval")` only; the tree is walked node by node against
a whitelist, every name is type-checked against the context schema, and the result is a tree of
plain closures. User text is never passed to eval, exec or compile.

Logic is three-valued (Kleene): a comparison with a NaN operand is *unknown* (None), `not`
keeps unknown unknown, `and`/`or` follow Kleene's tables, and a rule matches only when its
condition is True. So a missing feature never fires a rule, not even under `not`.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

Context = Mapping[str, Any]
Fn = Callable[[Context], Any]

MAX_CONDITION_LENGTH: Final = 4000
MAX_DEPTH: Final = 60

# Value types of the language. INT and FLOAT are both numeric; ANY stands for an expression
# that already failed to check, so one mistake is reported once.
STR: Final = "str"
INT: Final = "int"
FLOAT: Final = "float"
BOOL: Final = "bool"
ANY: Final = "any"
_NUMERIC: Final = frozenset({INT, FLOAT})
_PYTHON_TYPES: Final[dict[type, str]] = {str: STR, int: INT, float: FLOAT, bool: BOOL}


class _NoConst:
    def __repr__(self) -> str:
        return "<no constant>"


_NO_CONST: Final = _NoConst()

FUNCTIONS: Final = frozenset(
    {"len", "lower", "startswith", "contains", "contains_any", "abs", "is_missing", "pair_listed"}
)

_SYNTAX_NAMES: Final[dict[type, str]] = {
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.Subscript: "subscript",
    ast.IfExp: "conditional expression",
    ast.NamedExpr: "assignment expression",
    ast.JoinedStr: "f-string",
    ast.Dict: "dict",
    ast.Set: "set",
    ast.Starred: "star expression",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slice",
}

_ORDER_OPS: Final[dict[type, Callable[[Any, Any], Any]]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_EQUALITY_OPS: Final[dict[type, Callable[[Any, Any], Any]]] = {ast.Eq: operator.eq, ast.NotEq: operator.ne}


def _divide(a: float, b: float) -> float:
    # x / 0 is unknown, like a missing value, rather than a runtime error on every such item.
    return a / b if b != 0 else math.nan


_ARITHMETIC_OPS: Final[dict[type, Callable[[Any, Any], Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _divide,
}


@dataclass(frozen=True, slots=True)
class _Expr:
    type: str
    fn: Fn
    const: object = _NO_CONST
    # For BOOL: may evaluate to None (unknown) because a NaN was compared somewhere below.
    unknown_possible: bool = False


@dataclass(frozen=True, slots=True)
class _List:
    elem_type: str
    values: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """A checked condition: `test(context)` gives True, False or None (unknown)."""

    source: str
    test: Fn
    names: tuple[str, ...]  # context names used, in order of first use
    lists: tuple[str, ...]  # list names used, in order of first use


def compile_condition(
    source: str, schema: Mapping[str, type], lists: Mapping[str, Sequence[object]]
) -> tuple[CompiledCondition | None, list[str]]:
    """Compiles a condition; returns (condition, []) or (None, every error message found)."""
    if len(source) > MAX_CONDITION_LENGTH:
        return None, [f"condition is longer than {MAX_CONDITION_LENGTH} characters"]
    if not source.strip():
        return None, ["condition is empty"]
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        return None, [f"syntax error in condition{where}: {exc.msg}"]
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, [f"condition cannot be parsed: {type(exc).__name__}"]
    compiler = _Compiler(schema, lists)
    try:
        expr = compiler.expr(tree.body, 0)
    except RecursionError:
        return None, ["condition is nested too deeply"]
    if expr.type not in (BOOL, ANY):
        compiler.errors.append(f"condition must be true/false, not {expr.type}")
    if compiler.errors:
        return None, compiler.errors
    return CompiledCondition(source, expr.fn, tuple(compiler.names), tuple(compiler.lists_used)), []


class _Compiler:
    def __init__(self, schema: Mapping[str, type], lists: Mapping[str, Sequence[object]]) -> None:
        self.schema = {name: _PYTHON_TYPES[t] for name, t in schema.items()}
        self.lists = lists
        self.errors: list[str] = []
        self.names: dict[str, None] = {}
        self.lists_used: dict[str, None] = {}

    def fail(self, message: str) -> _Expr:
        if message not in self.errors:
            self.errors.append(message)
        return _Expr(ANY, _never)

    # --- expressions -------------------------------------------------------------------------

    def expr(self, node: ast.expr, depth: int) -> _Expr:
        if depth > MAX_DEPTH:
            return self.fail("condition is nested too deeply")
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Attribute):
            return self.name(node)
        if isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                return self.fail(f"function '{node.id}' must be called")
            return self.fail(f"unknown name '{node.id}' (names are dotted, e.g. 'item.hs_code')")
        if isinstance(node, ast.BoolOp):
            return self.bool_op(node, depth)
        if isinstance(node, ast.UnaryOp):
            return self.unary_op(node, depth)
        if isinstance(node, ast.BinOp):
            return self.bin_op(node, depth)
        if isinstance(node, ast.Compare):
            return self.compare(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.List | ast.Tuple):
            return self.fail("a list can only follow 'in' / 'not in' or be a function argument")
        what = _SYNTAX_NAMES.get(type(node), type(node).__name__)
        return self.fail(f"{what} is not allowed in conditions")

    def constant(self, node: ast.Constant) -> _Expr:
        value = node.value
        kind = _PYTHON_TYPES.get(type(value))
        if kind is None:
            return self.fail(f"literal {value!r} is not allowed (use a string, number, True or False)")
        return _const(kind, value)

    def dotted(self, node: ast.expr) -> str | None:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(node.id)
        return ".".join(reversed(parts))

    def name(self, node: ast.Attribute) -> _Expr:
        dotted = self.dotted(node)
        if dotted is None:
            return self.fail("attribute access is only allowed in dotted names such as 'item.hs_code'")
        if any(part.startswith("_") for part in dotted.split(".")):
            return self.fail(f"name '{dotted}' is not allowed (no part may start with '_')")
        if dotted.startswith("lists."):
            if dotted.removeprefix("lists.") not in self.lists:
                return self.fail(f"unknown list '{dotted}'")
            return self.fail(f"list '{dotted}' can only follow 'in' / 'not in' or be a function argument")
        kind = self.schema.get(dotted)
        if kind is None:
            return self.fail(f"unknown name '{dotted}'")
        self.names.setdefault(dotted, None)
        return _Expr(kind, operator.itemgetter(dotted))

    def list_arg(self, node: ast.expr, depth: int) -> _List | None:
        if isinstance(node, ast.List | ast.Tuple):
            values: list[object] = []
            kinds: set[str] = set()
            for element in node.elts:
                e = self.expr(element, depth + 1)
                if e.type == ANY:
                    return None
                if e.const is _NO_CONST:
                    self.fail("list literals may hold only literal values")
                    return None
                values.append(e.const)
                kinds.add(e.type)
            return self.make_list(kinds, values, "list literal")
        dotted = self.dotted(node) if isinstance(node, ast.Attribute) else None
        if dotted is not None and dotted.startswith("lists."):
            list_name = dotted.removeprefix("lists.")
            if list_name not in self.lists:
                self.fail(f"unknown list '{dotted}'")
                return None
            self.lists_used.setdefault(list_name, None)
            values = list(self.lists[list_name])
            kinds = {_PYTHON_TYPES.get(type(v), "?") for v in values}
            return self.make_list(kinds, values, f"list '{dotted}'")
        self.fail("expected a list: a name like 'lists.watchlisted_parties' or a literal like ['A', 'B']")
        return None

    def make_list(self, kinds: set[str], values: list[object], what: str) -> _List | None:
        if kinds <= _NUMERIC and kinds:
            return _List(FLOAT if FLOAT in kinds else INT, tuple(values))
        if len(kinds) > 1 or kinds & {BOOL, "?"}:
            self.fail(f"{what} must hold only strings or only numbers")
            return None
        return _List(kinds.pop() if kinds else ANY, tuple(values))

    def bool_op(self, node: ast.BoolOp, depth: int) -> _Expr:
        parts = [self.expr(v, depth + 1) for v in node.values]
        word = "and" if isinstance(node.op, ast.And) else "or"
        for part in parts:
            if part.type not in (BOOL, ANY):
                self.fail(f"'{word}' needs true/false operands, not {part.type}")
        if any(p.type != BOOL for p in parts):
            return _Expr(ANY, _never)
        unknown = any(p.unknown_possible for p in parts)
        make = _and if isinstance(node.op, ast.And) else _or
        return _fold(_Expr(BOOL, make([p.fn for p in parts], unknown), unknown_possible=unknown), parts)

    def unary_op(self, node: ast.UnaryOp, depth: int) -> _Expr:
        operand = self.expr(node.operand, depth + 1)
        if operand.type == ANY:
            return operand
        if isinstance(node.op, ast.Not):
            if operand.type != BOOL:
                return self.fail(f"'not' needs a true/false operand, not {operand.type}")
            return _fold(_Expr(BOOL, _not(operand.fn), unknown_possible=operand.unknown_possible), [operand])
        if isinstance(node.op, ast.USub | ast.UAdd):
            if operand.type not in _NUMERIC:
                return self.fail(f"unary minus/plus needs a number, not {operand.type}")
            f = operand.fn
            fn: Fn = (lambda ctx: -f(ctx)) if isinstance(node.op, ast.USub) else f
            return _fold(_Expr(operand.type, fn), [operand])
        return self.fail(f"operator {type(node.op).__name__} is not allowed")

    def bin_op(self, node: ast.BinOp, depth: int) -> _Expr:
        op = _ARITHMETIC_OPS.get(type(node.op))
        if op is None:
            return self.fail(f"operator {type(node.op).__name__} is not allowed (only + - * /)")
        left = self.expr(node.left, depth + 1)
        right = self.expr(node.right, depth + 1)
        if ANY in (left.type, right.type):
            return _Expr(ANY, _never)
        if left.type not in _NUMERIC or right.type not in _NUMERIC:
            return self.fail(f"arithmetic needs numbers, not {left.type} and {right.type}")
        kind = INT if left.type == right.type == INT and op is not _divide else FLOAT
        fa, fb = left.fn, right.fn
        return _fold(_Expr(kind, lambda ctx: op(fa(ctx), fb(ctx))), [left, right])

    def compare(self, node: ast.Compare, depth: int) -> _Expr:
        if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            if len(node.ops) > 1:
                return self.fail("'in' / 'not in' cannot be chained with other comparisons")
            return self.membership(node, depth)
        operands = [self.expr(node.left, depth + 1)] + [self.expr(c, depth + 1) for c in node.comparators]
        pairs: list[_Expr] = []
        for op_node, left, right in zip(node.ops, operands, operands[1:], strict=False):
            pairs.append(self.comparison(op_node, left, right))
        if len(pairs) == 1:
            return pairs[0]
        if any(p.type != BOOL for p in pairs):
            return _Expr(ANY, _never)
        unknown = any(p.unknown_possible for p in pairs)
        return _fold(_Expr(BOOL, _and([p.fn for p in pairs], unknown), unknown_possible=unknown), pairs)

    def comparison(self, op_node: ast.cmpop, left: _Expr, right: _Expr) -> _Expr:
        if ANY in (left.type, right.type):
            return _Expr(ANY, _never)
        op = _ORDER_OPS.get(type(op_node)) or _EQUALITY_OPS.get(type(op_node))
        if op is None:
            return self.fail(f"comparison {type(op_node).__name__} is not allowed ('is' is not supported; use ==)")
        numeric = left.type in _NUMERIC and right.type in _NUMERIC
        if not numeric and left.type != right.type:
            return self.fail(f"cannot compare {left.type} with {right.type}")
        if left.type == BOOL and type(op_node) in _ORDER_OPS:
            return self.fail("true/false values can only be compared with == or !=")
        nan_possible = numeric and FLOAT in (left.type, right.type)
        expr = _Expr(BOOL, _comparison(op, left, right, nan_possible), unknown_possible=nan_possible)
        return _fold(expr, [left, right])

    def membership(self, node: ast.Compare, depth: int) -> _Expr:
        negate = isinstance(node.ops[0], ast.NotIn)
        left = self.expr(node.left, depth + 1)
        right = self.list_arg(node.comparators[0], depth + 1)
        if right is None or left.type == ANY:
            return _Expr(ANY, _never)
        numeric = left.type in _NUMERIC and right.elem_type in _NUMERIC
        if not numeric and right.elem_type not in (left.type, ANY):
            return self.fail(f"cannot look up {left.type} in a list of {right.elem_type}")
        if left.type == BOOL:
            return self.fail("cannot look up true/false in a list")
        members = frozenset(right.values)
        f = left.fn
        nan_possible = left.type == FLOAT
        if nan_possible:

            def fn(ctx: Context) -> bool | None:
                v = f(ctx)
                if v != v:
                    return None
                return (v in members) != negate

        else:

            def fn(ctx: Context) -> bool | None:
                return (f(ctx) in members) != negate

        return _fold(_Expr(BOOL, fn, unknown_possible=nan_possible), [left])

    # --- functions ---------------------------------------------------------------------------

    def call(self, node: ast.Call, depth: int) -> _Expr:
        if not isinstance(node.func, ast.Name):
            return self.fail("only the built-in functions can be called, e.g. len(item.description)")
        name = node.func.id
        if name not in FUNCTIONS:
            return self.fail(f"unknown function '{name}'")
        if node.keywords:
            return self.fail(f"function '{name}' takes no keyword arguments")
        arity = {"startswith": 2, "contains": 2, "contains_any": 2, "pair_listed": 3}.get(name, 1)
        if len(node.args) != arity:
            return self.fail(
                f"function '{name}' takes {arity} argument{'s' if arity > 1 else ''}, got {len(node.args)}"
            )
        args = node.args
        if name == "pair_listed":
            return self.pair_listed(args, depth)
        subject = self.expr(args[0], depth + 1)
        if name == "is_missing":
            return self.is_missing(subject)
        if name == "abs":
            if subject.type == ANY:
                return subject
            if subject.type not in _NUMERIC:
                return self.fail(f"abs() needs a number, not {subject.type}")
            f = subject.fn
            return _fold(_Expr(subject.type, lambda ctx: abs(f(ctx))), [subject])
        if subject.type not in (STR, ANY):
            return self.fail(f"{name}() needs a string as its first argument, not {subject.type}")
        if name == "len":
            f = subject.fn
            return _fold(_Expr(INT, lambda ctx: len(f(ctx))), [subject])
        if name == "lower":
            f = subject.fn
            return _fold(_Expr(STR, lambda ctx: f(ctx).lower()), [subject])
        if name == "contains_any":
            words = self.list_arg(args[1], depth + 1)
            if words is None or subject.type == ANY:
                return _Expr(ANY, _never)
            if words.elem_type not in (STR, ANY):
                return self.fail("contains_any() needs a list of strings")
            return self.contains(subject, [str(w) for w in words.values])
        if isinstance(args[1], ast.List | ast.Tuple) or self.is_list_name(args[1]):
            if name != "startswith":
                return self.fail(f"{name}() needs a string as its second argument (use contains_any for a list)")
            prefixes = self.list_arg(args[1], depth + 1)
            if prefixes is None or subject.type == ANY:
                return _Expr(ANY, _never)
            if prefixes.elem_type not in (STR, ANY):
                return self.fail("startswith() needs a list of strings")
            return _startswith(subject, _const(STR, tuple(str(p) for p in prefixes.values)))
        second = self.expr(args[1], depth + 1)
        if ANY in (subject.type, second.type):
            return _Expr(ANY, _never)
        if second.type != STR:
            return self.fail(f"{name}() needs a string as its second argument, not {second.type}")
        if name == "startswith":
            return _startswith(subject, second)
        if second.const is not _NO_CONST:
            return self.contains(subject, [str(second.const)])
        f, g = subject.fn, second.fn
        return _Expr(BOOL, lambda ctx: _dynamic_word_search(g(ctx), f(ctx)))

    def is_list_name(self, node: ast.expr) -> bool:
        dotted = self.dotted(node) if isinstance(node, ast.Attribute) else None
        return dotted is not None and dotted.startswith("lists.")

    def is_missing(self, subject: _Expr) -> _Expr:
        f = subject.fn
        if subject.type == STR:
            return _fold(_Expr(BOOL, lambda ctx: not f(ctx).strip()), [subject])
        if subject.type in _NUMERIC:
            return _fold(_Expr(BOOL, lambda ctx: _is_nan(f(ctx))), [subject])
        if subject.type == ANY:
            return subject
        return self.fail(f"is_missing() needs a string or a number, not {subject.type}")

    def contains(self, subject: _Expr, words: list[str]) -> _Expr:
        phrases = [_tokens(w) for w in words]
        if not phrases or not all(phrases):
            return self.fail("contains() / contains_any() words must hold at least one letter or digit")
        match = _phrase_matcher(phrases)
        f = subject.fn
        return _fold(_Expr(BOOL, lambda ctx: match(f(ctx))), [subject])

    def pair_listed(self, args: list[ast.expr], depth: int) -> _Expr:
        pairs = self.list_arg(args[0], depth + 1)
        first = self.expr(args[1], depth + 1)
        second = self.expr(args[2], depth + 1)
        if pairs is None or ANY in (first.type, second.type):
            return _Expr(ANY, _never)
        if first.type != STR or second.type != STR:
            return self.fail("pair_listed() needs a list and two strings")
        table: dict[str, list[str]] = {}
        for entry in pairs.values:
            tokens = str(entry).split() if isinstance(entry, str) else []
            if len(tokens) != 2:
                return self.fail(f"pair_listed() list entry {entry!r} must be two words, like 'CN 8517'")
            table.setdefault(tokens[0], []).append(tokens[1])
        prefixes = {key: tuple(values) for key, values in table.items()}
        fa, fb = first.fn, second.fn

        def fn(ctx: Context) -> bool:
            wanted = prefixes.get(fa(ctx))
            return wanted is not None and fb(ctx).startswith(wanted)

        return _fold(_Expr(BOOL, fn), [first, second])


# --- closure builders ----------------------------------------------------------------------------


def _never(ctx: Context) -> Any:
    raise AssertionError("a condition that failed to check is never evaluated")


def _const(kind: str, value: object) -> _Expr:
    return _Expr(kind, lambda ctx: value, value, unknown_possible=value is None)


def _fold(expr: _Expr, inputs: Sequence[_Expr]) -> _Expr:
    """Evaluates an expression over constants once, at load time."""
    if any(i.const is _NO_CONST for i in inputs):
        return expr
    try:
        value = expr.fn({})
    except Exception:
        return expr  # fails at run time too, where it is counted like any runtime error
    return _const(expr.type, value)


def _is_nan(value: Any) -> bool:
    return bool(value != value)


def _comparison(op: Callable[[Any, Any], Any], left: _Expr, right: _Expr, nan_possible: bool) -> Fn:
    fa, fb = left.fn, right.fn
    if right.const is not _NO_CONST:
        c = right.const
        if not nan_possible:
            return lambda ctx: op(fa(ctx), c)
        if c != c:
            return lambda ctx: None

        def left_vs_const(ctx: Context) -> Any:
            v = fa(ctx)
            return None if v != v else op(v, c)

        return left_vs_const
    if left.const is not _NO_CONST:
        k = left.const
        if not nan_possible:
            return lambda ctx: op(k, fb(ctx))
        if k != k:
            return lambda ctx: None

        def const_vs_right(ctx: Context) -> Any:
            v = fb(ctx)
            return None if v != v else op(k, v)

        return const_vs_right
    if not nan_possible:
        return lambda ctx: op(fa(ctx), fb(ctx))

    def both(ctx: Context) -> Any:
        a = fa(ctx)
        b = fb(ctx)
        return None if a != a or b != b else op(a, b)

    return both


def _and(fns: list[Fn], unknown_possible: bool) -> Fn:
    if not unknown_possible:
        if len(fns) == 2:
            a, b = fns
            return lambda ctx: bool(a(ctx)) and bool(b(ctx))
        if len(fns) == 3:  # spelled out: a generator in all() costs more than the three tests
            a, b, c = fns
            return lambda ctx: bool(a(ctx)) and bool(b(ctx)) and bool(c(ctx))
        return lambda ctx: all(f(ctx) for f in fns)

    def kleene_and(ctx: Context) -> bool | None:
        unknown = False
        for f in fns:
            r = f(ctx)
            if r is None:
                unknown = True
            elif not r:
                return False
        return None if unknown else True

    return kleene_and


def _or(fns: list[Fn], unknown_possible: bool) -> Fn:
    if not unknown_possible:
        if len(fns) == 2:
            a, b = fns
            return lambda ctx: bool(a(ctx)) or bool(b(ctx))
        if len(fns) == 3:
            a, b, c = fns
            return lambda ctx: bool(a(ctx)) or bool(b(ctx)) or bool(c(ctx))
        return lambda ctx: any(f(ctx) for f in fns)

    def kleene_or(ctx: Context) -> bool | None:
        unknown = False
        for f in fns:
            r = f(ctx)
            if r is None:
                unknown = True
            elif r:
                return True
        return None if unknown else False

    return kleene_or


def _not(f: Fn) -> Fn:
    def negate(ctx: Context) -> bool | None:
        r = f(ctx)
        return None if r is None else not r

    return negate


def _startswith(subject: _Expr, prefix: _Expr) -> _Expr:
    f, g = subject.fn, prefix.fn
    if prefix.const is not _NO_CONST:
        p = prefix.const
        return _fold(_Expr(BOOL, lambda ctx: f(ctx).startswith(p)), [subject])
    return _fold(_Expr(BOOL, lambda ctx: f(ctx).startswith(g(ctx))), [subject, prefix])


_WORD: Final = re.compile(r"\w+")


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower()))


def _phrase_matcher(phrases: Sequence[tuple[str, ...]]) -> Callable[[str], bool]:
    """Whole words or phrases, ignoring case and the punctuation or spacing between words.

    Matching on word tokens (one findall and a set lookup) is several times faster than one
    alternation regex with word boundaries, which Python's re tries at every position.
    """
    singles = frozenset(p[0] for p in phrases if len(p) == 1)
    multi = tuple(" " + " ".join(p) + " " for p in phrases if len(p) > 1)
    # A phrase can only match when its first word is among the tokens: most texts skip the join.
    multi_first_words = frozenset(p[0] for p in phrases if len(p) > 1)
    findall = _WORD.findall

    def match(text: str) -> bool:
        tokens = findall(text.lower())
        if not singles.isdisjoint(tokens):
            return True
        if multi and not multi_first_words.isdisjoint(tokens):
            joined = " " + " ".join(tokens) + " "
            return any(p in joined for p in multi)
        return False

    return match


@functools.lru_cache(maxsize=1024)
def _cached_matcher(word: str) -> Callable[[str], bool] | None:
    tokens = _tokens(word)
    return _phrase_matcher([tokens]) if tokens else None


def _dynamic_word_search(word: str, text: str) -> bool:
    match = _cached_matcher(word)
    return match is not None and match(text)
