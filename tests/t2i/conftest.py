"""One thread and a private dataset cache for every test here."""

from tests.isolation import private_env  # noqa: F401
