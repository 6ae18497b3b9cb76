"""``python -m eurosat_service.entrypoints.deploy <command>``: launch control for ECS Fargate.

``plan`` (what `up` makes and costs), ``image`` (build and push), ``up``, ``status``, ``logs``,
``smoke`` and ``down``. Settings come from flags, else ``EUROSAT_*`` variables (see settings.py).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from eurosat_service.adapters.aws_errors import aws_errors
from eurosat_service.domain.deployment import DeploymentNames, DeploymentSpec, LogEvent, prices_for
from eurosat_service.domain.errors import DeploymentError, Interrupted, InvalidDeploymentConfig
from eurosat_service.entrypoints import cli
from eurosat_service.entrypoints.container import Container, build_container
from eurosat_service.entrypoints.deploy_args import (
    at_least_one,
    http_url,
    parse_env,
    parse_since,
    repository_name,
    seconds,
)
from eurosat_service.entrypoints.deploy_progress import WaitBars
from eurosat_service.entrypoints.last_image import last_image_file, read_last_image
from eurosat_service.entrypoints.settings import load_settings
from eurosat_service.service_layer import deployment as launch
from eurosat_service.service_layer.smoke import smoke

PROG = "python -m eurosat_service.entrypoints.deploy"
IMAGE_FLAG_NAMES = (("aws_region", "region"), ("aws_profile", "profile"), ("aws_endpoint_url", "endpoint_url"),
                    ("deploy_name_prefix", "name_prefix"))
SMOKE_IMAGE = "assets/smoke.jpg"  # a real EuroSAT tile (Forest), shipped inside the package
# The flags that say which deployment a command acts on: carried into every command we print.
DEPLOYMENT_FLAGS = (("deploy_name_prefix", "--name-prefix"), ("aws_region", "--region"),
                    ("aws_profile", "--profile"), ("aws_endpoint_url", "--endpoint-url"))


# -- arguments ------------------------------------------------------------------------------------
def _common() -> argparse.ArgumentParser:
    """Options every command takes, before or after its name (SUPPRESS: unset flags stay unset)."""
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    p.add_argument("--region", dest="aws_region", metavar="REGION", help="AWS region [EUROSAT_AWS_REGION]")
    p.add_argument("--profile", dest="aws_profile", metavar="PROFILE",
                   help="AWS profile from ~/.aws/config [EUROSAT_AWS_PROFILE]")
    p.add_argument("--endpoint-url", dest="aws_endpoint_url", metavar="URL",
                   help="another AWS endpoint, e.g. moto or LocalStack [EUROSAT_AWS_ENDPOINT_URL]")
    p.add_argument("--name-prefix", dest="deploy_name_prefix", metavar="PREFIX",
                   help="names and tags every resource [EUROSAT_DEPLOY_NAME_PREFIX, default eurosat]")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _sizing() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    p.add_argument("--image-uri", help="image to run (default: the one `image` last pushed)")
    p.add_argument("--cpu", dest="deploy_cpu", type=int, metavar="UNITS",
                   help="Fargate CPU units [EUROSAT_DEPLOY_CPU, 256]")
    p.add_argument("--memory", dest="deploy_memory", type=int, metavar="MIB", help="MiB [EUROSAT_DEPLOY_MEMORY, 512]")
    p.add_argument("--desired-count", dest="deploy_desired_count", type=int, metavar="N",
                   help="tasks [EUROSAT_DEPLOY_DESIRED_COUNT, 1]")
    p.add_argument("--log-retention-days", dest="deploy_log_retention_days", type=int, metavar="DAYS",
                   help="[EUROSAT_DEPLOY_LOG_RETENTION_DAYS, 7]")
    p.add_argument("--model-uri", dest="deploy_model_uri", metavar="URI",
                   help="EUROSAT_MODEL_URI for the task, e.g. s3://bucket/models/eurosat-resnet18 "
                        "(default: the model baked into the image) [EUROSAT_DEPLOY_MODEL_URI]")
    p.add_argument("--env", action="append", metavar="KEY=VALUE",
                   help="extra environment variable for the container (repeatable)")
    return p


def _waiting() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    p.add_argument("--wait-timeout", dest="deploy_wait_timeout", type=float, metavar="SECONDS",
                   help="seconds to wait for the service [EUROSAT_DEPLOY_WAIT_TIMEOUT, 900]")
    return p


def flag_names() -> dict[str, str]:
    """Setting -> flag, for errors about a flag whose setting has another name (``--wait-timeout``)."""
    return {action.dest: action.option_strings[-1]
            for parser in (_common(), _sizing(), _waiting()) for action in parser._actions}


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, parents=[common],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("plan", parents=[common, _sizing()],
                        help="what `up` would create and its hourly and monthly cost; no AWS call")
    up = commands.add_parser("up", parents=[common, _sizing(), _waiting()],
                             help="create or update everything and wait until the service is stable")
    up.add_argument("--dry-run", action="store_true", help="same as `plan`")
    status = commands.add_parser("status", parents=[common], help="service, tasks, image, endpoint and health")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--no-probe", action="store_true", help="do not call the endpoint's /readyz")
    logs = commands.add_parser("logs", parents=[common], help="the service's latest CloudWatch log events")
    logs.add_argument("--since", default="10m", help="30s, 10m, 2h, 1d or an ISO time (default 10m)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new events until Ctrl-C")
    logs.add_argument("--limit", type=at_least_one, default=200, help="at most this many of the latest events")
    smoke = commands.add_parser("smoke", parents=[common],
                                help="GET /readyz and POST /predict with a real EuroSAT image: pass or fail")
    smoke.add_argument("--url", type=http_url, help="base URL to test (default: the deployment's public endpoint)")
    smoke.add_argument("--wait", type=seconds, default=30.0, help="seconds to wait for /readyz (default 30)")
    smoke.add_argument("--image", type=Path, help="another image to send (default: the packaged EuroSAT tile)")
    down = commands.add_parser("down", parents=[common, _waiting()],
                               help="delete everything `up` created (found by its tags)")
    down.add_argument("--delete-repository", nargs="?", const="", metavar="NAME", type=repository_name,
                      help="also delete the ECR repository with its images, only if its tags name this "
                           "deployment (default: those tagged so in this region, and the deployed image's)")
    _add_image_command(commands)
    return parser


def _add_image_command(commands: argparse._SubParsersAction) -> None:
    """`image` lives in deploy_image.py (the container issue); say so clearly if it is missing."""
    try:
        from eurosat_service.entrypoints.deploy_image import add_image_parser
    except ModuleNotFoundError as exc:
        if exc.name != "eurosat_service.entrypoints.deploy_image":
            raise
        commands.add_parser("image", help="build and push the image (not available in this installation)")
        return
    add_image_parser(commands)


# -- commands -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None, container: Container | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.setup_logging(getattr(args, "verbose", False))
    if args.command == "image":
        try:
            from eurosat_service.entrypoints.deploy_image import run_image
        except ModuleNotFoundError as exc:
            raise DeploymentError("the `image` command is not installed (entrypoints/deploy_image.py is missing)") \
                from exc
        for ours, theirs in IMAGE_FLAG_NAMES:  # `deploy --region X image` means the same as `image --region X`
            if hasattr(args, ours) and not hasattr(args, theirs):
                setattr(args, theirs, getattr(args, ours))
        return run_image(args)
    overrides = {k: v for k, v in vars(args).items() if k.startswith(("aws_", "deploy_"))}
    if container is None:
        container = build_container(flag_names(), **overrides)
    else:  # a caller's container (tests): this command's flags only, over the environment's settings
        container.config.from_dict(load_settings(overrides, flag_names()).model_dump())
    return COMMANDS[args.command](args, container)


def again(args: argparse.Namespace, command: str) -> str:
    """``command`` as the user would type it next, with this run's deployment flags: a `down`
    printed without the ``--name-prefix`` given to `up` would find nothing, and say so."""
    flags = [f"{flag} {shlex.quote(str(getattr(args, dest)))}" for dest, flag in DEPLOYMENT_FLAGS
             if hasattr(args, dest)]
    return " ".join([PROG, command, *flags])


def _names(container: Container) -> DeploymentNames:
    return DeploymentNames(container.config.deploy_name_prefix())


def _spec(args: argparse.Namespace, container: Container, need_image: bool) -> DeploymentSpec:
    config = container.config
    image = getattr(args, "image_uri", None) or read_last_image()
    if need_image and not image:
        raise InvalidDeploymentConfig(
            f"no image to deploy: pass --image-uri, or run `{PROG} image` first (it records the pushed "
            f"image in {last_image_file()})")
    return DeploymentSpec(
        names=_names(container), region=container.aws_region(), image_uri=image or "",
        cpu=config.deploy_cpu(), memory=config.deploy_memory(), desired_count=config.deploy_desired_count(),
        log_retention_days=config.deploy_log_retention_days(), model_uri=config.deploy_model_uri() or None,
        environment=parse_env(getattr(args, "env", None) or []),
    )


def _waiting_for(container: Container) -> launch.Waiting:
    config = container.config
    return launch.Waiting(timeout=config.deploy_wait_timeout(), poll=config.deploy_poll_seconds(),
                          iam_propagation=0.0 if config.aws_endpoint_url() else 10.0)  # emulators are consistent


def _cloud(container: Container) -> launch.Cloud:
    with aws_errors("opening the AWS session"):  # an unknown --profile fails here
        return container.cloud()


def cmd_plan(args: argparse.Namespace, container: Container) -> int:
    spec = _spec(args, container, need_image=False)
    result = launch.plan(spec, prices_for(spec.region, container.config.fargate_prices()))
    print(f"plan for deployment {spec.names.prefix!r} in {spec.region}: `up` would create or update")
    for resource in result.resources:
        print(f"  + {resource}")
    _print_cost(result.cost.lines())
    return 0


def cmd_up(args: argparse.Namespace, container: Container) -> int:
    if args.dry_run:
        return cmd_plan(args, container)
    spec = _spec(args, container, need_image=True)
    _print_cost(launch.plan(spec, prices_for(spec.region, container.config.fargate_prices())).cost.lines())
    print(f"deploying {spec.image_uri} as {spec.names.prefix!r} in {spec.region}")
    down = again(args, "down")
    cloud = _cloud(container)
    try:
        with WaitBars() as bars:
            result = launch.up(spec, cloud, _waiting_for(container), on_step=bars.step, on_progress=bars)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: what `up` created so far is left in place (a running task bills); "
                          f"`{down}` removes it, `{again(args, 'up')}` carries on") from None
    except DeploymentError as exc:  # part of the deployment may exist, and a service bills
        raise type(exc)(f"{exc}\n`{down}` removes what `up` made, if anything") from None
    revision = result.task_definition
    print(f"service {spec.names.service} is stable: {result.service.running}/{result.service.desired} running "
          f"{spec.names.family}:{revision.revision} (service {result.service_change})")
    if result.endpoint:
        print(f"endpoint: {result.endpoint}   (try: {again(args, 'smoke')})")
    else:
        print(f"no public IP attached yet; `{again(args, 'status')}` shows the endpoint once there is one")
    print(f"when done: {down}   (Fargate bills while the task runs)")
    return 0


def cmd_status(args: argparse.Namespace, container: Container) -> int:
    names = _names(container)
    region = container.aws_region()
    probe = None if args.no_probe else container.endpoint_probe()
    result = launch.status(names, region, _cloud(container), probe)
    if args.json:
        print(json.dumps(asdict(result), indent=2, default=str))
        return 0
    print(f"deployment {names.prefix!r} in {region}")
    service = result.service
    if not result.deployed:
        print(f"  nothing deployed (no active service {names.service} in cluster {names.cluster})")
        return 0
    print(f"  service   {service.name}: {service.status}, {service.running}/{service.desired} running, "
          f"{service.pending} pending, rollout {service.rollout_state or 'n/a'}")
    print(f"  revision  {service.task_definition.rsplit('/', 1)[-1]}")
    print(f"  image     {result.image_uri}")
    for task in result.tasks:
        print(f"  task      {task.id}: {task.last_status}, health {task.health}, "
              f"public IP {task.public_ip or '-'}, private IP {task.private_ip or '-'}")
    if not result.tasks:
        print("  tasks     none running yet")
    print(f"  endpoint  {result.endpoint or 'no public IP yet'}")
    print(f"  health    {result.health}")
    for event in service.events[:3]:
        print(f"  event     {event}")
    return 0


def cmd_logs(args: argparse.Namespace, container: Container) -> int:
    since_ms = parse_since(args.since)

    def show(event: LogEvent) -> None:
        stamp = datetime.fromtimestamp(event.timestamp_ms / 1000, timezone.utc).isoformat(timespec="milliseconds")
        print(f"{stamp.replace('+00:00', 'Z')} {event.stream}  {event.message}", flush=True)

    with aws_errors("opening the AWS session"):
        reader = container.cloudwatch_logs()
    try:
        count = launch.read_logs(reader, _names(container), since_ms, show, follow=args.follow, limit=args.limit,
                                 waiting=launch.Waiting(poll=2.0))
    except KeyboardInterrupt:
        return 0
    if not count:
        print(f"no log events since {datetime.fromtimestamp(since_ms / 1000, timezone.utc):%Y-%m-%d %H:%M:%S} UTC",
              file=sys.stderr)
    return 0


def cmd_smoke(args: argparse.Namespace, container: Container) -> int:
    image = _read_image(args.image) if args.image else smoke_image()  # before any AWS call
    url = args.url
    if not url:
        names, region = _names(container), container.aws_region()
        current = launch.status(names, region, _cloud(container))
        if not current.deployed:
            raise DeploymentError(f"nothing is deployed as {names.prefix!r} in {region} (`{again(args, 'up')}` "
                                  "deploys it); pass --url to test another server")
        if not current.endpoint:
            raise DeploymentError(f"the deployment has no public endpoint yet (see `{again(args, 'status')}`); "
                                  "pass --url")
        url = current.endpoint
    report = smoke(url, container.endpoint_probe(), image, waiting=launch.Waiting(timeout=args.wait, poll=1.0))
    print(f"smoke test of {report.url}")
    for check in report.checks:
        print(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    print("smoke: PASS" if report.passed else "smoke: FAIL")
    return 0 if report.passed else 1


def cmd_down(args: argparse.Namespace, container: Container) -> int:
    names = _names(container)
    region = container.aws_region()
    repository = None
    with aws_errors("opening the AWS session"):  # every adapter built inside: none may leak a boto3 error
        cloud = container.cloud()
        if args.delete_repository is not None:
            repository = launch.RepositoryRemoval(container.repository_remover(), region,
                                                  args.delete_repository or None)
    print(f"removing deployment {names.prefix!r} in {region} (resources tagged "
          f"{', '.join(f'{k}={v}' for k, v in names.tags.items())})")
    try:
        with WaitBars() as bars:
            report = launch.down(names, cloud, _waiting_for(container), on_step=bars.step, on_progress=bars,
                                 repository=repository)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: part of the deployment may be left; `{again(args, 'down')}` "
                          "removes the rest") from None
    for kept in report.kept:
        print(f"kept: {kept}")
    for problem in report.problems:
        print(f"problem: {problem}")
    if report.remaining:
        print("still present:")
        for resource in report.remaining:
            print(f"  - {resource}")
        if report.problems:
            print(f"once the problems above are fixed, run `{again(args, 'down')}` again")
        else:  # still being deleted
            print(f"run `{again(args, 'down')}` again in a minute; it only removes what this job tagged")
        return 1
    print(f"nothing is left of deployment {names.prefix!r} in {region}"
          + (" (some steps reported problems above)" if report.problems else ""))
    return 1 if report.problems else 0


COMMANDS = {"plan": cmd_plan, "up": cmd_up, "status": cmd_status, "logs": cmd_logs, "smoke": cmd_smoke,
            "down": cmd_down}


# -- small parsers and files ----------------------------------------------------------------------
def _read_image(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidDeploymentConfig(f"cannot read --image {path}: {exc.strerror or exc}") from None


def smoke_image() -> bytes:
    return resources.files("eurosat_service.entrypoints").joinpath(SMOKE_IMAGE).read_bytes()


def _print_cost(lines: list[str]) -> None:
    print("cost (Fargate list prices):")
    for line in lines:
        print(f"  {line}")


if __name__ == "__main__":
    cli.run(main)
