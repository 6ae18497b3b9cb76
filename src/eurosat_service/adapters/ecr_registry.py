"""``ImageRegistry`` on Amazon ECR: the repository and its policies, a login token, existing tags.

``registry_url`` replaces the registry host ECR reports (``<account>.dkr.ecr.<region>...``) for
pushes and tag look-ups, so a stand-in registry can receive the image while ECR's API (or moto's,
which has no registry endpoint) still manages the repository and issues the token.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from eurosat_service.adapters.aws_errors import error_code, translates_aws_errors
from eurosat_service.adapters.aws_tags import as_dict, key_value
from eurosat_service.domain.container_image import RegistryLogin
from eurosat_service.domain.deployment import PROJECT, PROJECT_TAG_KEY, Ensured
from eurosat_service.domain.errors import BuildError

log = logging.getLogger(__name__)

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


def lifecycle_policy(keep_images: int) -> str:
    """Expire all but the newest ``keep_images`` images (tagged or not): pushes accumulate."""
    return json.dumps({"rules": [{
        "rulePriority": 1,
        "description": f"keep the last {keep_images} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_images},
        "action": {"type": "expire"},
    }]})


def parse_registry_url(url: str) -> tuple[str, bool]:
    """(host[:port], plain_http) of ``http://host:port``, ``https://host`` or a bare ``host:port``."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if not parts.netloc or parts.path not in ("", "/"):
        raise BuildError(f"registry URL {url!r} should be host[:port], optionally with http:// or https://")
    return parts.netloc, parts.scheme == "http"


@translates_aws_errors
class EcrRegistry:
    def __init__(self, client: Any, registry_url: str | None = None, timeout: float = 15.0) -> None:
        self.client = client
        self.override = parse_registry_url(registry_url) if registry_url else None
        self.timeout = timeout

    def ensure_repository(self, name: str, tags: Mapping[str, str], keep_images: int) -> Ensured:
        try:
            repository = self.client.create_repository(
                repositoryName=name,
                imageTagMutability="IMMUTABLE",
                imageScanningConfiguration={"scanOnPush": True},
                encryptionConfiguration={"encryptionType": "AES256"},
                tags=key_value(tags),
            )["repository"]
            created = True
        except ClientError as exc:
            if error_code(exc) != "RepositoryAlreadyExistsException":
                raise
            repository = self.client.describe_repositories(repositoryNames=[name])["repositories"][0]
            created = False
        if created or self._is_ours(repository):
            # also completes a repository whose creating run stopped before its lifecycle policy
            self._apply_policies(name, keep_images)
        else:
            log.warning("ECR repository %s was not created by eurosat-service: pushing to it without "
                        "changing its settings", name)
        return Ensured(self._uri(repository["repositoryUri"]), created)

    def login(self) -> RegistryLogin:
        data = self.client.get_authorization_token()["authorizationData"][0]
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        if self.override:
            host, plain_http = self.override
        else:
            host, plain_http = urlsplit(data["proxyEndpoint"]).netloc, False
        return RegistryLogin(host, username, password, plain_http)

    def find_digest(self, repository_uri: str, tag: str, login: RegistryLogin) -> str | None:
        name = repository_uri.split("/", 1)[1]
        if self.override:
            return self._registry_digest(name, tag, login)
        try:
            details = self.client.describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])["imageDetails"]
        except ClientError as exc:
            if error_code(exc) == "ImageNotFoundException":
                return None
            raise
        return details[0]["imageDigest"] if details else None

    # -- helpers ---------------------------------------------------------------------------------

    def _uri(self, reported: str) -> str:
        return f"{self.override[0]}/{reported.split('/', 1)[1]}" if self.override else reported

    def _is_ours(self, repository: Mapping[str, Any]) -> bool:
        tags = as_dict(self.client.list_tags_for_resource(resourceArn=repository["repositoryArn"]).get("tags"))
        return tags.get(PROJECT_TAG_KEY) == PROJECT

    def _apply_policies(self, name: str, keep_images: int) -> None:
        self.client.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE")
        self.client.put_image_scanning_configuration(repositoryName=name,
                                                     imageScanningConfiguration={"scanOnPush": True})
        self.client.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=lifecycle_policy(keep_images))

    def _registry_digest(self, name: str, tag: str, login: RegistryLogin) -> str | None:
        """HEAD on the registry API (``/v2/<name>/manifests/<tag>``) of the stand-in registry."""
        host, plain_http = self.override
        credentials = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
        request = urllib.request.Request(
            f"{'http' if plain_http else 'https'}://{host}/v2/{name}/manifests/{tag}", method="HEAD",
            headers={"Accept": ", ".join(MANIFEST_TYPES), "Authorization": f"Basic {credentials}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.headers.get("Docker-Content-Digest")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if exc.code in (401, 403):
                raise BuildError(f"registry {host} refused the login for {name} (HTTP {exc.code}): "
                                 "expired or wrong credentials") from None
            raise BuildError(f"registry {host} answered HTTP {exc.code} for {name}:{tag}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise BuildError(f"cannot reach registry {host}: {getattr(exc, 'reason', exc)}") from None
