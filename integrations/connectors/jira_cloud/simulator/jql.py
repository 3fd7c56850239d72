"""The JQL subset the simulator understands, with Jira's error sentences for the rest.

    query   := [where] [ORDER BY field [ASC|DESC] {, field [ASC|DESC]}]
    where   := term {OR term}          term := factor {AND factor}
    factor  := NOT factor | "(" where ")" | field op value
    op      := = | != | ~ | !~ | IN | NOT IN | IS | IS NOT        value := word | "string" | (list) | EMPTY

Fields: project, labels, status, statusCategory, issuetype (type), key (issuekey), id, summary,
resolution. As in Jira, `!=` and `NOT IN` never match an empty field, and a query without a search
restriction is refused (the enhanced search endpoint requires a bounded query).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# An issue as the evaluator sees it: each field as the set of lower-case strings that equal it.
Values = dict[str, set[str]]
Predicate = Callable[[Values], bool]

FIELDS = {
    "project": "project",
    "labels": "labels",
    "status": "status",
    "statuscategory": "statuscategory",
    "issuetype": "issuetype",
    "type": "issuetype",
    "key": "key",
    "issuekey": "key",
    "id": "id",
    "summary": "summary",
    "text": "summary",
    "resolution": "resolution",
}
SORTABLE = {"created", "updated", "key", "issuekey", "id", "summary"}
UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|!~|=|~|\(|\)|,)|(?P<word>[^\s(),=!~"']+))"""
)
_KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}


class JqlError(ValueError):
    """A query Jira would refuse with HTTP 400; the message is Jira's."""


@dataclass(frozen=True, slots=True)
class Query:
    where: Predicate
    order: list[tuple[str, bool]]  # (field, descending)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # string, op, word
    text: str
    at: int

    @property
    def keyword(self) -> str | None:
        return self.text.lower() if self.kind == "word" and self.text.lower() in _KEYWORDS else None


def parse(jql: str, *, check_project: Callable[[str], bool]) -> Query:
    """A `Query` for `jql`, or `JqlError`; `check_project(value)` says whether a project value exists."""
    return _Parser(_tokens(jql or ""), check_project).query()


def _tokens(jql: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(jql):
        if not jql[position:].strip():
            break
        match = _TOKEN.match(jql, position)
        if not match or match.end() == position:
            raise JqlError(
                f"Error in the JQL Query: The character '{jql[position:].lstrip()[0]}' is a reserved "
                f"JQL character. (line 1, character {position + 1})"
            )
        kind = match.lastgroup or "word"
        text = match.group(kind)
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append(_Token(kind, text, match.start(kind) + 1))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token], check_project: Callable[[str], bool]) -> None:
        self.tokens, self.position, self.check_project = tokens, 0, check_project

    def query(self) -> Query:
        where = None
        if self._peek() is not None and self._peek_keyword() != "order":
            where = self._or()
        order: list[tuple[str, bool]] = []
        if self._peek_keyword() == "order":
            self._next()
            if self._peek_keyword() != "by":
                raise self._expected("'by'")
            self._next()
            order.append(self._sort_key())
            while self._peek() is not None and self._peek().text == ",":
                self._next()
                order.append(self._sort_key())
        if self._peek() is not None:
            raise self._expected("either 'OR' or 'AND'")
        if where is None:
            raise JqlError(UNBOUNDED)
        return Query(where=where, order=order)

    def _sort_key(self) -> tuple[str, bool]:
        token = self._next()
        if token is None or token.kind == "op":
            raise self._expected("a field name", token)
        name = token.text.lower()
        if name not in SORTABLE:
            raise JqlError(f"Not able to sort using field '{token.text}'.")
        descending = False
        if self._peek_keyword() in ("asc", "desc"):
            descending = self._next().text.lower() == "desc"
        return ("key" if name == "issuekey" else name, descending)

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek_keyword() == "or":
            self._next()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda v: any(p(v) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._factor()]
        while self._peek_keyword() == "and":
            self._next()
            parts.append(self._factor())
        return parts[0] if len(parts) == 1 else (lambda v: all(p(v) for p in parts))

    def _factor(self) -> Predicate:
        token = self._peek()
        if token is None:
            raise self._expected("a field name")
        if token.keyword == "not":
            self._next()
            inner = self._factor()
            return lambda v: not inner(v)
        if token.text == "(" and token.kind == "op":
            self._next()
            inner = self._or()
            closing = self._next()
            if closing is None or closing.text != ")":
                raise self._expected("')'", closing)
            return inner
        return self._clause()

    def _clause(self) -> Predicate:
        token = self._next()
        if token.kind == "op" or token.keyword:
            raise self._expected("a field name", token)
        name = FIELDS.get(token.text.lower())
        if name is None:
            raise JqlError(f"Field '{token.text}' does not exist or you do not have permission to view it.")
        op = self._operator()
        if op in ("is", "is not"):
            if self._peek_keyword() not in ("empty", "null"):
                raise self._expected("EMPTY or NULL")
            self._next()
            return (lambda v: not v[name]) if op == "is" else (lambda v: bool(v[name]))
        values = self._list() if op in ("in", "not in") else [self._value()]
        if None in values:  # = EMPTY, != EMPTY
            return (lambda v: not v[name]) if op in ("=", "in") else (lambda v: bool(v[name]))
        wanted = {value.lower() for value in values}
        if name == "project":
            for value in values:
                if not self.check_project(value):
                    raise JqlError(f"The value '{value}' does not exist for the field 'project'.")
        if name == "resolution" and "unresolved" in wanted:
            wanted.discard("unresolved")
            found: Predicate = lambda v: not v[name] or bool(v[name] & wanted)  # noqa: E731
        elif op in ("~", "!~"):
            if name != "summary":
                raise JqlError(f"The operator '{op}' is not supported by the '{token.text}' field.")
            found = lambda v: any(w in text for w in wanted for text in v[name])  # noqa: E731
        else:
            found = lambda v: bool(v[name] & wanted)  # noqa: E731
        if op in ("=", "in", "~"):
            return found
        return lambda v: bool(v[name]) and not found(v)  # !=, NOT IN, !~ never match an empty field

    def _operator(self) -> str:
        token = self._next()
        if token is None:
            raise self._expected("an operator")
        if token.kind == "op" and token.text in ("=", "!=", "~", "!~"):
            return token.text
        if token.keyword == "in":
            return "in"
        if token.keyword == "not" and self._peek_keyword() == "in":
            self._next()
            return "not in"
        if token.keyword == "is":
            if self._peek_keyword() == "not":
                self._next()
                return "is not"
            return "is"
        raise self._expected("an operator", token)

    def _list(self) -> list[str | None]:
        opening = self._next()
        if opening is None or opening.text != "(":
            raise self._expected("'('", opening)
        values = [self._value()]
        while self._peek() is not None and self._peek().text == ",":
            self._next()
            values.append(self._value())
        closing = self._next()
        if closing is None or closing.text != ")":
            raise self._expected("')'", closing)
        return values

    def _value(self) -> str | None:
        token = self._next()
        if token is None or token.kind == "op":
            raise self._expected("a value", token)
        if token.kind == "word" and token.keyword in ("empty", "null"):
            return None
        return token.text

    # -- tokens -------------------------------------------------------------------------------------

    def _peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _peek_keyword(self) -> str | None:
        token = self._peek()
        return token.keyword if token else None

    def _next(self) -> _Token | None:
        token = self._peek()
        self.position += 1
        return token

    def _expected(self, what: str, token: _Token | None = None) -> JqlError:
        token = token if token is not None else self._peek()
        if token is None:
            return JqlError(f"Error in the JQL Query: Expecting {what} but reached the end of the query.")
        return JqlError(
            f"Error in the JQL Query: Expecting {what} but got '{token.text}'. (line 1, character {token.at})"
        )
