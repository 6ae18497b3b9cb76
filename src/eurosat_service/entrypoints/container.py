"""The composition root: every adapter is built here and nowhere else.

Tests swap any adapter with ``container.<provider>.override(fake)``.
"""

from __future__ import annotations

from dependency_injector import containers, providers

from eurosat_service.adapters import aws_session
from eurosat_service.adapters.artifact_uri import open_artifact_store
from eurosat_service.adapters.confusion_matrix_png import render_confusion_matrix
from eurosat_service.adapters.eurosat_files import open_dataset
from eurosat_service.adapters.torch_trainer import TorchTrainer


class Container(containers.DeclarativeContainer):
    config = providers.Configuration()

    boto3_session = providers.Singleton(
        aws_session.make_session, region=config.aws_region, profile=config.aws_profile
    )
    s3_client = providers.Singleton(
        aws_session.make_client, boto3_session, "s3", endpoint_url=config.aws_endpoint_url
    )

    dataset = providers.Singleton(open_dataset, config.data_dir)
    artifact_store = providers.Factory(open_artifact_store, config.artifact_uri, s3_client=s3_client.provider)
    trainer = providers.Factory(
        TorchTrainer, source=dataset, checkpoint_dir=config.checkpoint_dir, resume=config.resume
    )
    confusion_matrix_renderer = providers.Object(render_confusion_matrix)


def build_container(**overrides: object) -> Container:
    from eurosat_service.entrypoints.settings import Settings

    container = Container()
    container.config.from_dict({**Settings().model_dump(), "resume": False, **overrides})
    return container
