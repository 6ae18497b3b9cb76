"""Domain exceptions. The edges map them to HTTP statuses and CLI exit codes, never tracebacks."""

from __future__ import annotations


class EurosatError(Exception):
    """Base of every error a user can cause and fix; its message says what to do."""


class DatasetError(EurosatError):
    """The data directory or archive is missing, malformed or fails its checksum."""


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


class ImageTooLarge(EurosatError):
    """An image's pixel count exceeds the limit (a decompression bomb, or just too big)."""


class Overloaded(EurosatError):
    """The inference queue is full; the client should retry later."""


class DeploymentError(EurosatError):
    """A deploy step failed; the message says which and how to clean up."""


class InvalidDeploymentConfig(DeploymentError):
    """A deployment setting is refused before any resource is created."""


class BuildError(EurosatError):
    """Building or pushing the container image failed."""
