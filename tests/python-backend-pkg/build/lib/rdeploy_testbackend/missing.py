"""A backend whose engine is not installed: importing it fails like a missing pip package."""
import rdeploy_engine_that_is_not_installed  # noqa: F401


class Manager:
    @classmethod
    def is_available(cls):
        return True
