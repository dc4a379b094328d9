"""The API's JSON renderer: DRF's JSONRenderer after a camelCase pass over every key.

It replaces djangorestframework-camel-case's CamelCaseJSONRenderer (same output, byte for byte;
tests/api/test_renderers.py compares the two on varied data). That renderer's `camelize` runs a
regular expression on every key and tries `iter()` on every value, so on a page of 25 agents or 50
audit entries the pass cost more than the JSON encoding itself (1.3-2.0 ms of CPU per request,
docs/performance.md). Here:

- keys are converted once per distinct string (`camel_key`, memoised), with the library's own
  regular expression and replacement function, so a key comes out exactly as the library makes it;
- values are dispatched on their exact type: JSON scalars, UUIDs, decimals and dates are returned
  as they are without being probed; dicts and lists are walked; anything else (a lazy translation,
  a set, a generator, a mapping that is not a dict) takes the library's own rules.

It honours the same `JSON_CAMEL_CASE["JSON_UNDERSCOREIZE"]` settings: under a key listed in
`ignore_fields` the value is kept verbatim (user-defined JSON such as a skill's `config`), a key
listed in `ignore_keys` keeps its spelling. `no_underscore_before_number` only concerns the parser.
The OpenAPI side (drf-spectacular's camelize hook) does not go through this module.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Iterable
from functools import lru_cache

from django.utils.encoding import force_str
from django.utils.functional import Promise
from djangorestframework_camel_case.settings import api_settings as camel_case_settings
from djangorestframework_camel_case.util import camelize_re, is_iterable, underscore_to_camel
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

# Values returned as they are (the library would probe each with iter() and return it unchanged).
_LEAVES = frozenset({str, int, float, bool, type(None), uuid.UUID, decimal.Decimal, datetime.datetime,
                     datetime.date, datetime.time, datetime.timedelta})
_DICTS = frozenset({dict, ReturnDict})
_LISTS = frozenset({list, tuple, ReturnList})


@lru_cache(maxsize=8192)
def camel_key(key: str) -> str:
    """`snake_case` -> `snakeCase`, exactly as djangorestframework-camel-case converts a key."""
    if "_" not in key:
        return key
    return camelize_re.sub(underscore_to_camel, key)


def camelize(data, ignore_fields: Iterable[str] = (), ignore_keys: Iterable[str] = ()):
    """djangorestframework_camel_case.util.camelize, same results, without its per-value costs.

    Returns plain dicts and lists (the library returns OrderedDicts): the same JSON."""
    return _Camelizer(frozenset(ignore_fields or ()), frozenset(ignore_keys or ())).walk(data)


@lru_cache(maxsize=1)
def _configured() -> _Camelizer:
    # djangorestframework-camel-case reads JSON_CAMEL_CASE once, at import: so can this.
    options = camel_case_settings.JSON_UNDERSCOREIZE
    return _Camelizer(frozenset(options.get("ignore_fields") or ()), frozenset(options.get("ignore_keys") or ()))


def camelize_as_configured(data):
    """`camelize` with the JSON_CAMEL_CASE settings: what the renderer does to a value."""
    return _configured().walk(data)


class WireDict(dict):
    """A dict already as the wire shows it: keys camelCase, every value already camelized (e.g.
    with `camelize_as_configured`). The renderer passes it through without walking it. For the
    hot list read paths (apps.agents.api.serializers.agent_summary, apps.audit.api.serializers
    .entry), whose output tests/api/test_read_paths.py compares byte for byte with the serializers'."""

    __slots__ = ()


class _Camelizer:
    __slots__ = ("ignore_fields", "ignore_keys")

    def __init__(self, ignore_fields: frozenset, ignore_keys: frozenset):
        self.ignore_fields = ignore_fields
        self.ignore_keys = ignore_keys

    def walk(self, data):
        kind = type(data)
        if kind in _LEAVES or kind is WireDict:
            return data
        if kind in _DICTS:
            return self.mapping(data)
        if kind in _LISTS:
            return self.sequence(data)
        # Everything else by the library's rules: lazy strings are forced, any dict is a mapping,
        # any other iterable but a string becomes a list, the rest is returned as it is.
        if isinstance(data, Promise):
            data = force_str(data)
        if isinstance(data, dict):
            return self.mapping(data)
        if is_iterable(data) and not isinstance(data, str):
            return self.sequence(data)
        return data

    def sequence(self, items) -> list:
        leaves, walk = _LEAVES, self.walk
        return [item if type(item) in leaves or type(item) is WireDict else walk(item) for item in items]

    def mapping(self, data: dict) -> dict:
        leaves, walk, ignore_fields, ignore_keys = _LEAVES, self.walk, self.ignore_fields, self.ignore_keys
        result = {}
        for key, value in data.items():
            if type(key) is not str:
                if isinstance(key, Promise):
                    key = force_str(key)
                new_key = camel_key(key) if isinstance(key, str) else key
            else:
                new_key = camel_key(key)
            if type(value) in leaves or (ignore_fields and (key in ignore_fields or new_key in ignore_fields)):
                pass  # kept verbatim
            else:
                value = walk(value)
            if ignore_keys and (key in ignore_keys or new_key in ignore_keys):
                result[key] = value
            else:
                result[new_key] = value
        return result


class CamelCaseJSONRenderer(JSONRenderer):
    """JSON with camelCase keys (see the module docstring); the API's only renderer."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return super().render(camelize_as_configured(data), accepted_media_type, renderer_context)
