"""What dbt puts in the Jinja context, for sqlfluff's jinja templater (dbt_project/.sqlfluff).

sqlfluff-templater-dbt cannot be installed beside this project's dbt-core/click pins, so the SQL
is linted with the plain jinja templater plus dbt builtins (ref, source, config, return). This
module adds the rest the models and macros use, rendering the default build the way dbt does on
DuckDB/PostgreSQL: no ``as_of`` var, dbt's default ``cast``, a contracted model with one column.
It is read only by sqlfluff, never by dbt or the flows.
"""

import datetime as _datetime
import re as _re


class _Namespace:
    """An attribute bag that Jinja's sandbox may read and call."""

    unsafe_callable = False
    alters_data = False

    def __init__(self, **attrs):
        self.__dict__.update(attrs)


def var(name, default=None):
    """dbt's var(): no --vars on a lint, so every var is its default (the current build)."""
    return default


def _cast(field, type):
    return f"cast({field} as {type})"


def _raise_compiler_error(msg):
    raise RuntimeError(msg)


class _Column:
    def __init__(self, data_type):
        self.data_type = data_type


class _DbtNamespace(_Namespace):
    """dbt's cross-database macros (dbt.cast, dbt.type_bigint, …) in their DuckDB/PostgreSQL form.

    A macro not listed renders as a SQL function call of its own name, enough for a linter.
    """

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            return f"{name}({', '.join(str(a) for a in [*args, *kwargs.values()])})"

        return call


_TYPES = {
    "type_bigint": "bigint",
    "type_int": "integer",
    "type_string": "varchar",
    "type_boolean": "boolean",
    "type_float": "float",
    "type_numeric": "numeric(28, 6)",
    "type_timestamp": "timestamp",
}

# dbt.cast: dbt's default__cast, which DuckDB and PostgreSQL use.
dbt = _DbtNamespace(
    cast=_cast,
    safe_cast=_cast,
    concat=lambda fields: " || ".join(str(f) for f in fields),
    **{name: (lambda sql_type=sql_type: sql_type) for name, sql_type in _TYPES.items()},
)
modules = _Namespace(re=_re, datetime=_datetime)
exceptions = _Namespace(raise_compiler_error=_raise_compiler_error)
# The model being compiled, for contract_select: its YAML columns are not read here, so a
# contracted model selects one stand-in column.
model = _Namespace(columns={"contract_column": _Column("varchar")}, name="this_model")
