"""The composition root: every adapter is built here and nowhere else.

Tests swap any adapter with ``container.<provider>.override(fake)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from dependency_injector import containers, providers

from eurosat_service.adapters import aws_session
from eurosat_service.adapters.artifact_uri import open_artifact_store, resolve_model_file
from eurosat_service.adapters.cloudwatch_logs import CloudWatchLogs
from eurosat_service.adapters.cpu_quota import inference_workers, threads_per_worker
from eurosat_service.adapters.ec2_network import Ec2Network
from eurosat_service.adapters.ecr_registry import EcrRegistry
from eurosat_service.adapters.ecr_repository_remover import EcrRepositoryRemover
from eurosat_service.adapters.ecs_fargate_deployer import EcsFargateDeployer
from eurosat_service.adapters.eurosat_files import open_dataset
from eurosat_service.adapters.http_probe import UrllibEndpointProbe
from eurosat_service.adapters.iam_task_role import IamTaskRoles
from eurosat_service.adapters.image_builders import open_image_builder
from eurosat_service.adapters.lazy_aws_client import lazy_client
from eurosat_service.adapters.prometheus_metrics import ServiceMetrics
from eurosat_service.adapters.sts_account import StsCloudAccount
from eurosat_service.service_layer.deployment import Cloud
from eurosat_service.service_layer.inference import InferenceService


def deferred(target: str) -> Callable[..., Any]:
    """``module:name``, imported when first called: importing torch takes about 3 s, which the
    deploy commands, which never touch a model, should not pay (nor the API a plotting module)."""
    module, _, name = target.partition(":")

    def build(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    build.__qualname__ = build.__name__ = name
    return build


class Container(containers.DeclarativeContainer):
    config = providers.Configuration()

    boto3_session = providers.Singleton(
        aws_session.make_session, region=config.aws_region, profile=config.aws_profile
    )
    aws_region = providers.Callable(aws_session.session_region, boto3_session.provider)  # the one in use
    s3_client = providers.Singleton(
        aws_session.make_client, boto3_session, "s3", endpoint_url=config.aws_endpoint_url
    )

    dataset = providers.Singleton(open_dataset, config.data_dir)
    artifact_store = providers.Factory(open_artifact_store, config.artifact_uri, s3_client=s3_client.provider)
    trainer = providers.Factory(
        deferred("eurosat_service.adapters.torch_trainer:TorchTrainer"),
        source=dataset, checkpoint_dir=config.checkpoint_dir, resume=config.resume,
    )
    confusion_matrix_renderer = providers.Object(
        deferred("eurosat_service.adapters.confusion_matrix_png:render_confusion_matrix")
    )
    # a verified local model.pt for config.model_uri, or for the URI given to model_file_at (a
    # teacher's); S3 objects are cached in model_cache_dir
    model_file = providers.Singleton(
        resolve_model_file, config.model_uri, config.model_cache_dir, s3_client=s3_client.provider
    )
    model_file_at = providers.Factory(resolve_model_file, cache_dir=config.model_cache_dir,
                                      s3_client=s3_client.provider)

    # Inference engine: the loaded model, its micro-batcher and the service's metrics
    workers = providers.Callable(inference_workers, config.inference_workers)
    classifier = providers.Singleton(
        deferred("eurosat_service.adapters.torch_classifier:TorchClassifier"),
        model_file, max_pixels=config.max_image_pixels, views=config.views,
        threads=providers.Callable(threads_per_worker, config.inference_threads, workers),
    )
    metrics = providers.Singleton(ServiceMetrics)
    inference = providers.Singleton(
        InferenceService, classifier, max_batch_size=config.max_batch_size, max_wait_ms=config.max_wait_ms,
        max_queue=config.max_queue, decode_in=config.decode_in, decode_threads=config.decode_threads,
        on_batch=metrics.provided.observe_batch, workers=workers,
    )

    # Launch control (deploy to ECS Fargate): one boto3 client per AWS service (made on first
    # use), one adapter per port
    aws_endpoint = config.aws_endpoint_url
    sts_client = providers.Singleton(lazy_client, boto3_session.provider, "sts", aws_endpoint)
    logs_client = providers.Singleton(lazy_client, boto3_session.provider, "logs", aws_endpoint)
    iam_client = providers.Singleton(lazy_client, boto3_session.provider, "iam", aws_endpoint)
    ec2_client = providers.Singleton(lazy_client, boto3_session.provider, "ec2", aws_endpoint)
    ecs_client = providers.Singleton(lazy_client, boto3_session.provider, "ecs", aws_endpoint)
    ecr_client = providers.Singleton(lazy_client, boto3_session.provider, "ecr", aws_endpoint)
    cloud_account = providers.Singleton(StsCloudAccount, sts_client)
    cloudwatch_logs = providers.Singleton(CloudWatchLogs, logs_client)  # the LogGroups and LogReader ports
    task_roles = providers.Singleton(IamTaskRoles, iam_client, cloud_account, aws_region)
    network = providers.Singleton(Ec2Network, ec2_client)
    deployer = providers.Singleton(EcsFargateDeployer, ecs_client)
    cloud = providers.Factory(Cloud, account=cloud_account, log_groups=cloudwatch_logs, roles=task_roles,
                              network=network, deployer=deployer)
    repository_remover = providers.Singleton(EcrRepositoryRemover, ecr_client)
    endpoint_probe = providers.Factory(UrllibEndpointProbe)

    # Shipping container (`deploy image`): the local build tool and the registry (ECR or a stand-in)
    image_builder = providers.Singleton(open_image_builder, config.image_builder, network=config.image_build_network,
                                        idle_timeout=config.image_idle_timeout_s)
    image_registry = providers.Singleton(EcrRegistry, ecr_client, registry_url=config.registry_url)


def build_container(flag_names: Mapping[str, str] | None = None, **overrides: object) -> Container:
    """The container over the environment's settings with ``overrides`` (an entrypoint's flags)
    on top; both pass the same validation, so a bad flag is refused, by ``flag_names`` where a
    flag is not named after its setting, before anything is built."""
    from eurosat_service.entrypoints.settings import Settings, load_settings

    settings = load_settings({k: v for k, v in overrides.items() if k in Settings.model_fields}, flag_names)
    container = Container()
    container.config.from_dict({"resume": False, **overrides, **settings.model_dump()})
    return container
