"""A model lookup compiled to SQL once per process and run again with each call's value.

Django compiles a queryset to SQL every time it runs. For the lookup every API request starts
with (the caller's user with its tenant and membership, three tables and 42 columns joined,
aegis.api.authentication) that compilation cost three quarters of the lookup's CPU: 0.65 of
0.85 ms (docs/performance.md, API throughput). `PrecompiledLookup` compiles the queryset once,
with a sample value, then runs the same SQL with the value of each call put where the sample
was, and builds the instances exactly as QuerySet iteration does (django.db.models.query.
ModelIterable): the compiler's own converters, `Model.from_db`, and the select_related
populators. tests/test_precompiled.py holds its results equal to the queryset's.

It leans on the SQL compiler's attributes (`select`, `klass_info`), as ModelIterable does: a
Django upgrade that changes them fails those tests, not silently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet
from django.db.models.fields import Field
from django.db.models.query import get_related_populators


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    value_index: int
    model: type[Model]
    init_list: list[str]
    model_columns: slice
    converters: dict  # column position -> (converter functions, expression), as the compiler gives them
    populators: list


class PrecompiledLookup:
    """`build(value)` must return a queryset of model instances (select_related allowed, no
    prefetches, annotations or deferred fields) whose SQL takes `value` as one parameter, e.g.
    `lambda pk: User.objects.select_related("tenant").filter(pk=pk)`; `field` is the model field the
    value is compared with (it prepares each call's value as the ORM would). `first(value)` gives
    what `build(value).first()` gives when at most one row matches (no ORDER BY is added)."""

    def __init__(self, build: Callable[[object], QuerySet], field: Field, sample, using: str = DEFAULT_DB_ALIAS):
        self._build = build
        self._field = field
        self._sample = sample
        self._using = using
        self._compiled: _Compiled | None = None
        self._lock = threading.Lock()

    def _compile(self, connection) -> _Compiled:
        queryset = self._build(self._sample)
        if queryset._prefetch_related_lookups or queryset.query.annotations or queryset.query.deferred_loading[0]:
            raise ValueError("PrecompiledLookup: no prefetches, annotations or deferred fields")
        compiler = queryset[:1].query.get_compiler(using=self._using)
        sql, params = compiler.as_sql()
        sample = self._field.get_db_prep_value(self._sample, connection, prepared=False)
        positions = [index for index, param in enumerate(params) if param == sample]
        if len(positions) != 1:
            raise ValueError(f"PrecompiledLookup: the sample value is {len(positions)} of the query's parameters")
        select, klass_info = compiler.select, compiler.klass_info
        columns = slice(klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1)
        return _Compiled(
            sql=sql, params=tuple(params), value_index=positions[0], model=klass_info["model"],
            init_list=[column[0].target.attname for column in select[columns]], model_columns=columns,
            converters=compiler.get_converters([column[0] for column in select]),
            populators=get_related_populators(klass_info, select, self._using))

    def first(self, value) -> Model | None:
        connection = connections[self._using]
        compiled = self._compiled
        if compiled is None:
            with self._lock:
                compiled = self._compiled = self._compiled or self._compile(connection)
        params = list(compiled.params)
        params[compiled.value_index] = self._field.get_db_prep_value(value, connection, prepared=False)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        row = list(row)
        for position, (functions, expression) in compiled.converters.items():
            for function in functions:
                row[position] = function(row[position], expression, connection)
        instance = compiled.model.from_db(self._using, compiled.init_list, row[compiled.model_columns])
        for populator in compiled.populators:
            populator.populate(row, instance)
        return instance
