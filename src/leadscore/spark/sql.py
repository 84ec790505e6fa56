"""The feature SQL on Spark: the DuckDB text of `leadscore.features.build`, transpiled with
SQLGlot (`spark_sql`). The SQL is written once, in DuckDB's dialect, using only joins,
aggregates and running sums that both engines have; SQLGlot rewrites the syntax and
`_SPARK_FUNCTIONS` renames the few functions it does not map (`regexp_full_match` becomes an
anchored `RLIKE`). Regular expressions run on Java's engine there, RE2 in DuckDB: the
patterns used stay in their common subset (tests/spark checks the flags row for row)."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

# DuckDB function -> its Spark equivalent, where SQLGlot leaves the name as it is
_SPARK_FUNCTIONS = {"EPOCH_US": "UNIX_MICROS"}


def _rename(node: exp.Expression) -> exp.Expression:
    name = str(node.this).upper() if isinstance(node, exp.Anonymous) else None
    if name in _SPARK_FUNCTIONS:
        return exp.Anonymous(this=_SPARK_FUNCTIONS[name], expressions=node.expressions)
    if isinstance(node, exp.RegexpFullMatch):  # Spark has no full match: anchor the pattern
        text, pattern = node.this, node.expression
        anchored = exp.Concat(expressions=[exp.Literal.string("^(?:"), pattern, exp.Literal.string(")$")])
        return exp.RegexpLike(this=text, expression=anchored)
    return node


def spark_sql(duckdb_sql: str, *, ordered: bool = True) -> str:
    """One DuckDB SELECT as Spark SQL; `ordered=False` drops its outer ORDER BY (a global
    sort Spark need not pay for)."""
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    if not ordered:
        tree.set("order", None)
    return tree.transform(_rename).sql(dialect="spark")
