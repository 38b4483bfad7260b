from ..records.conftest import store  # noqa: F401  (both stores, opened and migrated)
