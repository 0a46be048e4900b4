from tests.abuse.helpers import backend  # noqa: F401  (fixture)
