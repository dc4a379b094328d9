"""Property-based tests of the merge rules of the three configuration layers."""

from hypothesis import given
from hypothesis import strategies as st

from apps.agents.resolver import LAYERS, SCALAR_KEYS, Layer, SkillSetting, merge_layers

slugs = st.sampled_from(["calendar", "crm", "search", "github", "jira"])
configs = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 9), max_size=3)
settings_ = st.builds(SkillSetting, enabled=st.booleans(), version=st.sampled_from([None, "1.0.0", "2.1.0"]),
                      config=configs)
maybe = lambda values: st.one_of(st.none(), st.sampled_from(values))  # noqa: E731


@st.composite
def layer(draw, name):
    return Layer(
        name=name,
        model_tier=draw(maybe(["fast", "balanced", "powerful"])),
        thinking_mode=draw(maybe(["off", "low", "high"])),
        tools_profile=draw(maybe(["minimal", "full"])),
        identity=draw(st.dictionaries(st.sampled_from(["theme", "emoji"]), st.text(max_size=3), max_size=2)),
        skills=draw(st.dictionaries(slugs, settings_, max_size=4)),
    )


stacks = st.tuples(*(layer(name) for name in LAYERS)).map(list)


@given(stacks)
def test_each_scalar_comes_from_the_last_layer_that_sets_it(layers):
    result = merge_layers(layers)
    for key in SCALAR_KEYS:
        setters = [lay for lay in layers if getattr(lay, key) is not None]
        if setters:
            assert result.scalars[key].value == getattr(setters[-1], key)
            assert result.scalars[key].source == setters[-1].name
        else:
            assert result.scalars[key].value is None and result.scalars[key].source is None


@given(stacks)
def test_a_skill_is_enabled_exactly_when_the_last_layer_mentioning_it_enables_it(layers):
    result = merge_layers(layers)
    mentioned = {slug for lay in layers for slug in lay.skills}
    assert set(result.skills) == mentioned
    for slug in mentioned:
        last = [lay for lay in layers if slug in lay.skills][-1]
        assert result.skills[slug].enabled == last.skills[slug].enabled
        assert result.skills[slug].source == last.name
    assert {s.slug for s in result.enabled_skills}.isdisjoint({s.slug for s in result.disabled_skills})


@given(stacks, slugs)
def test_the_agent_can_switch_off_any_inherited_skill(layers, slug):
    agent = layers[-1]
    layers[-1] = Layer(name=agent.name, skills={**agent.skills, slug: SkillSetting(enabled=False)})
    result = merge_layers(layers)
    assert slug not in {s.slug for s in result.enabled_skills}
    assert result.skills[slug].source == "agent"


@given(stacks)
def test_skill_config_merges_key_by_key_later_layers_winning(layers):
    result = merge_layers(layers)
    for slug, resolved in result.skills.items():
        expected = {}
        for lay in layers:
            if slug in lay.skills:
                expected.update(lay.skills[slug].config)
        assert resolved.config == expected


@given(stacks)
def test_empty_layers_change_nothing(layers):
    padded = [Layer(name="platform"), *layers[:2], Layer(name="toolbox"), *layers[2:], Layer(name="agent")]
    assert merge_layers(padded).skills == merge_layers(layers).skills
    assert merge_layers(padded).scalars == merge_layers(layers).scalars


@given(stacks)
def test_repeating_a_layer_is_idempotent(layers):
    doubled = [lay for lay in layers for _ in range(2)]
    assert merge_layers(doubled) == merge_layers(layers)
