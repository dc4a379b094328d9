from tests.ops.fakes import runtime  # noqa: F401 (fixture)
