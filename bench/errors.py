"""Project exceptions: one type for bad input, so the CLI prints one line, not a traceback."""


class LossbenchError(ValueError, TypeError):
    """Bad input (value or type) detected at a public boundary.

    Subclasses both ``ValueError`` and ``TypeError`` (as scikit-learn's
    ``InvalidParameterError``) so callers may catch either. The message must
    name the file/field/parameter, what was expected and what was received.
    """


class DatasetMissingError(LossbenchError):
    """A dataset named by the collection is absent from the configured source."""
