"""The one error this package raises: a model that cannot be used, and how to fix it."""


class ModelError(Exception):
    """A model file is missing, corrupt or unreadable; the message names it and the fix."""
