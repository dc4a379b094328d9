"""aegis.api.renderers gives exactly what djangorestframework-camel-case's renderer gave."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections import OrderedDict

from django.utils.translation import gettext_lazy
from djangorestframework_camel_case.render import CamelCaseJSONRenderer as LibraryRenderer
from djangorestframework_camel_case.settings import api_settings
from djangorestframework_camel_case.util import camelize as library_camelize
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from aegis.api.renderers import CamelCaseJSONRenderer, camel_key, camelize

OPTIONS = api_settings.JSON_UNDERSCOREIZE
IGNORED = tuple(OPTIONS["ignore_fields"])

KEYS = [
    "id", "skill_id", "created_at", "status_reason", "_private", "trailing_", "double__under", "a_b_c",
    "version_2", "v2_beta", "ipv4_address", "item_1_2", "x_1", "_1", "9_lives", "a__1", "Already_Upper",
    "camelCase", "mixed_Case_key", "__dunder__", "snake_ca_se_", "",  "_", "__", "a_", "tls_1_3_only",
    "utf8_ünïcode_key", "max_items", "api_base_url", *IGNORED, "configuration_id", "config_value",
]


def sample() -> dict:
    moment = datetime.datetime(2026, 11, 25, 14, 3, 7, 123456, tzinfo=datetime.UTC)
    user_json = {"api_base_url": "https://x", "nested_list": [{"max_items": 3}], "payload": {"a_b": 1}}
    return {
        "data": [
            {"agent_id": uuid.UUID(int=7), "created_at": moment, "cost_usd": decimal.Decimal("0.0015"),
             "config": user_json, "configuration": {"properties": {"time_zone": {}}},
             "capabilities": ["read_mail", {"a_b": 1}], "assisted_user": {"time_zone": "UTC", "preferences":
                                                                         {"reply_style": "short"}},
             "changes": {"model_tier": {"before": None, "after": "fast"}, "config": {"dm_policy": "open"}},
             "tags": ("one_two", "three_four"), "empty_dict": {}, "empty_list": [], "flag_on": True,
             "ratio_1": 0.5, "count_2_x": 2, "day": datetime.date(2026, 1, 2), "nothing": None,
             "sets_of_things": {1}, "lazy_label": gettext_lazy("Hello"), 3: "int_key",
             "ordered_dict": OrderedDict([("z_a", 1), ("a_z", [OrderedDict([("q_q", 2)])])]),
             "nested_lists": [[{"a_b": [1, {"c_d": None}]}], []], "generator_like": range(3)},
        ],
        "pagination": {"next": None, "page_size": 50, "total_pages": 2},
    }


def test_camelize_matches_the_library_on_varied_data():
    assert camelize(sample(), ignore_fields=IGNORED) == library_camelize(sample(), **OPTIONS)
    assert camelize(sample()) == library_camelize(sample())
    assert camelize(sample(), ignore_keys=("created_at", "pageSize")) == library_camelize(
        sample(), ignore_keys=("created_at", "pageSize"))


def test_keys_come_out_as_the_library_makes_them():
    for key in KEYS:
        assert camel_key(key) == next(iter(library_camelize({key: None}))), key
    assert camel_key("skill_id") == "skillId" and camel_key("item_1_2") == "item12"


def test_user_defined_json_is_kept_verbatim():
    body = {"skill_id": 1, "config": {"api_base_url": "x", "max_items": 3}, "payload": [{"a_b": 1}]}
    assert camelize(body, ignore_fields=IGNORED) == {"skillId": 1, "config": body["config"],
                                                    "payload": body["payload"]}


def test_the_rendered_bytes_are_the_library_renderers():
    for data in (sample(), ReturnDict({"status_reason": "x"}, serializer=None),
                 ReturnList([{"a_b": 1}], serializer=None), [], {}, "text", 3, None):
        for media_type in (None, "application/json; indent=4"):
            assert CamelCaseJSONRenderer().render(data, media_type) == LibraryRenderer().render(data, media_type)


json_keys = st.one_of(st.sampled_from(KEYS), st.text(alphabet="ab_19XZ", max_size=8))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=5), st.uuids(), st.decimals(allow_nan=False, allow_infinity=False)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(json_keys, children, max_size=5),
                               st.tuples(children, children)),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_camelize_matches_the_library_on_generated_data(data):
    assert camelize(data, ignore_fields=IGNORED) == library_camelize(data, **OPTIONS)
    assert CamelCaseJSONRenderer().render(data) == LibraryRenderer().render(data)
