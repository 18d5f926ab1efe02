"""Exceptions of the machine-learning core.

Every message is written for the person who submitted the job: plain words, no stack trace, no
scikit-learn vocabulary. Job code may show `str(exc)` as is.
"""

from __future__ import annotations


class MLError(Exception):
    """Base class: the message is safe to show to a business user."""


class SpecError(MLError):
    """A training request that cannot work, found before any data is read (HTTP 422)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class DataError(MLError):
    """The file cannot be read as the profile promised (changed, truncated, wrong format)."""


class MissingColumnsError(DataError):
    """Columns the model needs are not in the input; `columns` lists them in the model's order."""

    def __init__(self, columns: list[str]):
        self.columns = list(columns)
        names = ", ".join(f"'{name}'" for name in self.columns)
        noun = "column is" if len(self.columns) == 1 else "columns are"
        super().__init__(f"The following {noun} missing from the input: {names}.")


class BadValuesError(MLError):
    """Online input with values that cannot be converted; `errors` holds (row, column, message)."""

    def __init__(self, errors: list[tuple[int, str, str]]):
        self.errors = list(errors)
        row, column, message = self.errors[0]
        more = f" ({len(self.errors) - 1} more problem(s))" if len(self.errors) > 1 else ""
        super().__init__(f"Row {row}, column '{column}': {message}{more}")


class TrainingError(MLError):
    """Training found a problem only visible while running; the job ends as failed."""


class JobCancelled(Exception):  # noqa: N818 - a cancellation is an outcome, not an error
    """The job was asked to stop; raised between stages or chunks, never mid-write."""


class TrainingCancelled(JobCancelled):
    """Training stopped between stages: no half-built model is returned."""


class PredictionCancelled(JobCancelled):
    """Batch prediction stopped between chunks: the partial output must be discarded."""


class ArtifactIntegrityError(MLError):
    """The stored bytes do not match the hash recorded when the model was saved."""


class UntrustedArtifactError(MLError):
    """The artifact holds object types outside the allowlist; it is refused unloaded."""

    def __init__(self, types: list[str]):
        self.types = sorted(types)
        super().__init__(
            "This model file contains unexpected content and was not loaded: "
            + ", ".join(self.types)
        )
