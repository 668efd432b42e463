"""The exceptions reco raises, one per kind of failure.

Every one derives from :class:`RecoError`; those about bad input also derive from
``ValueError``, so code that catches ``ValueError`` keeps working. Messages are those of the
command line.
"""


class RecoError(Exception):
    """Base class of every error reco raises."""


class DataError(RecoError, ValueError):
    """The input data are malformed or inconsistent."""


class SpecError(RecoError, ValueError):
    """A model specification or another parameter is invalid."""


class TrainingError(RecoError):
    """Training failed or diverged on valid input."""


class ArtifactError(RecoError):
    """A saved model is damaged or from an incompatible version."""


class StorageError(RecoError, OSError):
    """The operating system refused a read or write."""


class UnsupportedError(RecoError, NotImplementedError):
    """The model cannot answer this kind of request (a capability it lacks)."""


class ResourceError(RecoError, MemoryError):
    """The work needs more memory than allowed, or an output exists already."""


class StoppedError(RecoError):
    """The work was stopped before it finished."""


class UnknownIdError(RecoError, KeyError):
    """A user or item id the model or dataset does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
