"""Domain exceptions. The edges map them to HTTP statuses and CLI exit codes, never tracebacks."""

from __future__ import annotations


class EurosatError(Exception):
    """Base of every error a user can cause and fix; its message says what to do."""


class DatasetError(EurosatError):
    """The data directory or archive is missing, malformed or fails its checksum."""


class InvalidTrainingConfig(EurosatError):
    """A training flag or setting is refused before any data is read."""


class TrainingDiverged(EurosatError):
    """The loss or a validation metric became inf or nan: the weights are no model to serve."""


class Interrupted(EurosatError):
    """The user stopped a long run (Ctrl-C); the message says what was kept and how to go on."""


class ArtifactNotFound(EurosatError):
    """No model artifact (or no 'latest' pointer) at the given location."""


class ArtifactIntegrityError(EurosatError):
    """An artifact's bytes do not match the sha256 recorded for it."""


class StoreAccessError(EurosatError):
    """The artifact store refused: missing bucket, missing or expired credentials, access denied."""


class ModelLoadError(EurosatError):
    """A file is not a model this service can load."""


class InvalidImage(EurosatError):
    """An upload is not a decodable image."""


class UnsupportedImageFormat(InvalidImage):
    """An upload is not in any image format the decoder knows (a text file, a PDF, ...)."""


class ImageTooLarge(EurosatError):
    """An image's pixel count exceeds the limit (a decompression bomb, or just too big)."""


class Overloaded(EurosatError):
    """The inference queue is full; the client should retry later."""


class DeploymentError(EurosatError):
    """A deploy step failed; the message says which and how to clean up."""


class InvalidDeploymentConfig(DeploymentError):
    """A deployment setting is refused before any resource is created."""


class CloudAccessError(DeploymentError):
    """AWS cannot be used: no or expired credentials, unknown profile, access denied, unreachable."""


class ServiceUnhealthy(DeploymentError):
    """The service never became healthy; the message carries its events and stopped tasks' reasons."""


class DeploymentTimeout(DeploymentError):
    """A wait (service stable, service inactive) ran past its timeout."""


class ResourceInUse(DeploymentError):
    """AWS refuses to delete a resource something still uses (a security group with live ENIs)."""


class BuildError(EurosatError):
    """Building or pushing the container image failed."""
