"""Which of Aurora DSQL's rules (`rules.RULES`) a SQL text breaks, read with PostgreSQL's own parser.

`statements(sql)` parses a text (one statement or a script) with pglast (libpg_query) and returns each
statement with what DSQL makes of it: its class for the per-transaction rules (ddl, dml, read, begin,
end, other) and the statement rules it breaks. DSQL's `CREATE [UNIQUE] INDEX ASYNC` is not PostgreSQL
syntax: the ASYNC keyword is found with PostgreSQL's scanner (so not inside a string, a comment or a
quoted name) and taken out, and the statement says so (`async_index`, and `text` is the plain
PostgreSQL form). Results are cached by text: a client sends the same few statements over and over.

`Transaction` applies the per-transaction rules (one DDL statement per transaction, no DDL with DML)
statement by statement, the way DSQL sees a session: an explicit transaction from BEGIN to COMMIT or
ROLLBACK, otherwise an implicit one per simple query or per extended-protocol Sync.

`violations(sql)` is both together on a script run in a fresh session, for checks that have no server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pglast import ast, parse_sql, parser
from pglast.enums import ConstrType, ObjectType, SortByDir, TransactionStmtKind
from pglast.parser import ParseError

from dashboard.dsql_sql.rules import BY_ID, Rule

DDL, DML, READ, BEGIN, END, OTHER, UNPARSED = "ddl", "dml", "read", "begin", "end", "other", "unparsed"

SERIAL_TYPES = frozenset({"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"})
MIN_LARGE_CACHE = 65536
SUPPORTED_ISOLATION = "repeatable read"  # DSQL's one level (rules.py, isolation_level)

_DDL_NODES = (
    ast.IndexStmt,
    ast.ViewStmt,
    ast.RenameStmt,
    ast.DefineStmt,
    ast.CompositeTypeStmt,
    ast.CommentStmt,
    ast.RuleStmt,
    ast.DropStmt,
)
_DML_NODES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
_READ_NODES = (ast.SelectStmt, ast.ExplainStmt, ast.VariableShowStmt)
_SAVEPOINT_KINDS = {
    TransactionStmtKind.TRANS_STMT_SAVEPOINT,
    TransactionStmtKind.TRANS_STMT_RELEASE,
    TransactionStmtKind.TRANS_STMT_ROLLBACK_TO,
}
_BEGIN_KINDS = {TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START}

# One plain statement of the kinds probes and applications send most, with nothing DSQL refuses in
# reach: no second statement (;), no SELECT ... INTO, no data-modifying WITH. Decided without parsing.
_FAST = re.compile(r"\s*(select|insert|update|delete)\b[^;]*;?\s*\Z", re.IGNORECASE | re.DOTALL)
_INTO = re.compile(r"\binto\b", re.IGNORECASE)
_FAST_CLASS = {"select": READ, "insert": DML, "update": DML, "delete": DML}


@dataclass(frozen=True)
class Violation:
    rule: Rule
    detail: str = ""

    @property
    def sqlstate(self) -> str:
        return self.rule.sqlstate

    @property
    def message(self) -> str:
        return self.rule.message


@dataclass(frozen=True)
class Statement:
    text: str  # what PostgreSQL runs: the statement as sent, with DSQL's ASYNC taken out
    kind: str  # the parse node's name (SelectStmt, CreateStmt, ...), or "" where the text did not parse
    cls: str  # DDL, DML, READ, BEGIN, END, OTHER or UNPARSED
    violations: tuple[Violation, ...] = ()
    async_index: bool = False
    commits: bool = False  # COMMIT or END: where DSQL judges the transaction (conflicts, limits)


@dataclass
class Transaction:
    """The per-transaction rules as DSQL applies them, one statement at a time."""

    in_block: bool = False
    ddl: int = 0
    dml: bool = False

    def admit(self, statement: Statement) -> Violation | None:
        """The per-transaction rule `statement` breaks here, if any; otherwise it is counted in."""
        if statement.cls == BEGIN:
            self.in_block = True
            return None
        if statement.cls == END:
            self.reset()
            return None
        if statement.cls == DDL:
            if self.ddl:
                return Violation(BY_ID["multiple_ddl"])
            if self.dml:
                return Violation(BY_ID["ddl_and_dml"])
            self.ddl += 1
        elif statement.cls == DML:
            if self.ddl:
                return Violation(BY_ID["ddl_and_dml"])
            self.dml = True
        return None

    def end_implicit(self) -> None:
        """The end of a simple query or an extended-protocol Sync: an implicit transaction is over."""
        if not self.in_block:
            self.reset()

    def reset(self) -> None:
        self.in_block, self.ddl, self.dml = False, 0, False

    def server_status(self, status: bytes) -> None:
        """The server's word on it (ReadyForQuery's I, T or E), once nothing else is in flight."""
        if status == b"I":
            self.reset()
        else:
            self.in_block = True


def violations(sql: str, transaction: Transaction | None = None) -> list[Violation]:
    """Every rule `sql` breaks, run as one simple query on a session in `transaction` (a fresh one)."""
    transaction = transaction if transaction is not None else Transaction()
    found: list[Violation] = []
    for statement in statements(sql):
        found.extend(statement.violations)
        if (refused := transaction.admit(statement)) is not None:
            found.append(refused)
    transaction.end_implicit()
    return found


@lru_cache(maxsize=4096)
def statements(sql: str) -> tuple[Statement, ...]:
    fast = _FAST.match(sql)
    if fast and (fast.group(1).lower() != "select" or not _INTO.search(sql)):
        return (Statement(sql, "", _FAST_CLASS[fast.group(1).lower()]),)
    text, async_at = _without_async(sql)
    try:
        parsed = parse_sql(text)
    except ParseError:
        # PostgreSQL answers this one itself (a syntax error, with its position): nothing to add.
        return (Statement(sql, "", UNPARSED),)
    found = []
    for raw in parsed:
        end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(text)
        node = raw.stmt
        is_async = any(raw.stmt_location <= at < end for at in async_at) and isinstance(node, ast.IndexStmt)
        found.append(
            Statement(
                text=text[raw.stmt_location : end].strip(),
                kind=type(node).__name__,
                cls=_class_of(node),
                violations=tuple(_statement_rules(node, is_async)),
                async_index=is_async,
                commits=isinstance(node, ast.TransactionStmt) and node.kind == TransactionStmtKind.TRANS_STMT_COMMIT,
            )
        )
    return tuple(found)


def _without_async(sql: str) -> tuple[str, list[int]]:
    """`sql` with DSQL's ASYNC keyword of CREATE [UNIQUE] INDEX ASYNC taken out, and where each was."""
    if "async" not in sql.lower():
        return sql, []
    try:
        tokens = parser.scan(sql)
    except ParseError:
        return sql, []
    cuts = []
    for before, token in zip(tokens, tokens[1:], strict=False):
        word = sql[token.start : token.end + 1]
        if before.name == "INDEX" and token.name == "IDENT" and word.lower() == "async" and word[0] != '"':
            cuts.append(token)
    text, shift, positions = sql, 0, []
    for token in cuts:
        start, end = token.start - shift, token.end + 1 - shift
        text = text[:start] + text[end:]
        positions.append(start)
        shift += end - start
    return text, positions


def _class_of(node: ast.Node) -> str:
    if isinstance(node, ast.TransactionStmt):
        if node.kind in _BEGIN_KINDS:
            return BEGIN
        if node.kind in _SAVEPOINT_KINDS:
            return OTHER
        return END
    if isinstance(node, _DML_NODES):
        return DML
    if isinstance(node, ast.CopyStmt):
        return DML if node.is_from else READ
    if isinstance(node, ast.SelectStmt):
        if node.intoClause is not None:
            return DDL
        if any(isinstance(sub, _DML_NODES) for sub in _walk(node.withClause)):
            return DML
        return READ
    if isinstance(node, _READ_NODES):
        return READ
    name = type(node).__name__
    if isinstance(node, _DDL_NODES) or name.startswith(("Create", "Alter", "Drop")):
        return DDL
    return OTHER


def _statement_rules(node: ast.Node, is_async: bool) -> list[Violation]:
    found: list[str | tuple[str, str]] = []
    match node:
        case ast.TransactionStmt(kind=kind) if kind in _BEGIN_KINDS and (level := _isolation(node.options)):
            found.append(("isolation_level", level.upper()))
        case ast.VariableSetStmt(name="TRANSACTION" | "SESSION CHARACTERISTICS") if level := _isolation(node.args):
            found.append(("isolation_level", level.upper()))
        case ast.VariableSetStmt(name="transaction_isolation" | "default_transaction_isolation", args=(value,)):
            level = value.val.sval if isinstance(value, ast.A_Const) and isinstance(value.val, ast.String) else ""
            if level.lower() not in ("", SUPPORTED_ISOLATION, "default"):
                found.append(("isolation_level", level.upper()))
        case ast.TruncateStmt():
            found.append("truncate")
        case ast.TransactionStmt(kind=kind) if kind in _SAVEPOINT_KINDS:
            found.append("savepoint")
        case ast.VacuumStmt(is_vacuumcmd=True):
            found.append("vacuum")
        case ast.AlterSystemStmt():
            found.append("alter_system")
        case ast.CreateTrigStmt() | ast.CreateEventTrigStmt():
            found.append("trigger")
        case ast.CreateExtensionStmt():
            found.append("extension")
        case ast.CreateFunctionStmt():
            language = _option(node.options, "language")
            if language is not None and language.lower() != "sql":
                found.append(("function_language", f"LANGUAGE {language}"))
        case ast.DoStmt():
            found.append("do_block")
        case ast.CreateStmt():
            if node.relation.relpersistence == "t":
                found.append("temporary_table")
            if node.partspec is not None or node.partbound is not None:
                found.append("partition")
            elif node.inhRelations:
                found.append("inherits")
        case ast.CreateTableAsStmt(objtype=ObjectType.OBJECT_MATVIEW) | ast.RefreshMatViewStmt():
            found.append("materialized_view")
        case ast.CreateTableAsStmt():
            found.append("temporary_table" if node.into.rel.relpersistence == "t" else "create_table_as")
        case ast.SelectStmt(intoClause=ast.IntoClause()):
            found.append("temporary_table" if node.intoClause.rel.relpersistence == "t" else "create_table_as")
        case ast.CreateEnumStmt() | ast.CompositeTypeStmt() | ast.CreateRangeStmt():
            found.append("create_type")
        case ast.DefineStmt(kind=ObjectType.OBJECT_TYPE):
            found.append("create_type")
        case ast.CreateTableSpaceStmt():
            found.append("tablespace")
        case ast.CreatedbStmt():
            found.append("create_database")
        case ast.IndexStmt():
            if not is_async:
                found.append("index_not_async")
            elif any(p.ordering in (SortByDir.SORTBY_ASC, SortByDir.SORTBY_DESC) for p in node.indexParams or ()):
                found.append("index_sort_order")
        case ast.CreateSeqStmt() | ast.AlterSeqStmt():
            if problem := _cache_problem(node.options, required=isinstance(node, ast.CreateSeqStmt)):
                found.append(("sequence_cache", problem))
    if isinstance(node, (ast.CreateStmt, ast.AlterTableStmt)):
        for sub in _walk(node):
            if isinstance(sub, ast.ColumnDef) and sub.typeName is not None:
                type_name = sub.typeName.names[-1].sval.lower()
                if type_name in SERIAL_TYPES:
                    found.append(("serial", f"column {sub.colname} is {type_name}"))
            elif isinstance(sub, ast.Constraint):
                if sub.contype == ConstrType.CONSTR_EXCLUSION:
                    found.append("exclusion_constraint")
                elif sub.contype == ConstrType.CONSTR_IDENTITY:
                    if problem := _cache_problem(sub.options, required=True):
                        found.append(("sequence_cache", f"identity column: {problem}"))
    seen: dict[str, Violation] = {}
    for item in found:
        rule_id, detail = item if isinstance(item, tuple) else (item, "")
        seen.setdefault(rule_id, Violation(BY_ID[rule_id], detail))
    return list(seen.values())


def _isolation(options: tuple | None) -> str:
    """The isolation level `options` ask for, if it is one DSQL does not run at."""
    for option in options or ():
        if option.defname == "transaction_isolation" and isinstance(option.arg, ast.A_Const):
            level = option.arg.val.sval
            return "" if level.lower() == SUPPORTED_ISOLATION else level
    return ""


def _cache_problem(options: tuple | None, *, required: bool) -> str:
    cache = next((option for option in options or () if option.defname == "cache"), None)
    if cache is None:
        return "no CACHE given" if required else ""
    value = _number(cache.arg)
    if value is None or value == 1 or value >= MIN_LARGE_CACHE:
        return ""
    return f"CACHE {value} (must be 1 or >= {MIN_LARGE_CACHE})"


def _number(node: ast.Node | None) -> int | None:
    if isinstance(node, ast.Integer):
        return node.ival
    if isinstance(node, ast.Float):
        try:
            return int(float(node.fval))
        except ValueError:
            return None
    return None


def _option(options: tuple | None, name: str) -> str | None:
    for option in options or ():
        if option.defname == name and isinstance(option.arg, ast.String):
            return option.arg.sval
    return None


def _walk(node: object):
    """Every parse node under `node` (itself included)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            yield item
            stack.extend(getattr(item, slot) for slot in item.__slots__)
        elif isinstance(item, tuple | list):
            stack.extend(item)
