"""`down` removes every task definition revision of the deployment, inactive ones included: it
deregisters (-> INACTIVE), then deletes, and a `down` stopped in between or refused the delete
left inactive revisions that the next `down` never found ("nothing is left", exit 0). Real moto
over HTTP; what moto cannot do (refuse, stop half-way) is injected into the ECS client only."""

from __future__ import annotations

from botocore.exceptions import ClientError
from dependency_injector import providers

from eurosat_service.entrypoints.container import build_container
from tests.integration.deploy_helpers import IMAGE, Patched, run_deploy


def shell_whose_ecs(**methods):
    """A fresh shell (container) whose ECS client has ``methods`` replaced."""
    shell = build_container()
    shell.ecs_client.override(providers.Object(Patched(shell.ecs_client(), **methods)))
    return shell


def refused(code: str, message: str, status: int = 400):
    def raise_it(**kwargs):
        raise ClientError({"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, "DeleteTaskDefinitions")

    return raise_it


def revisions(moto, prefix: str, status: str) -> list[str]:
    arns = moto.client("ecs").list_task_definitions(familyPrefix=f"{prefix}-api", status=status)["taskDefinitionArns"]
    return [arn.rsplit("/", 1)[-1] for arn in arns]


def up(moto, prefix, capsys, *tags: str) -> None:
    for tag in tags:  # each image makes a revision
        code, _, err = run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", IMAGE.format(tag=tag))
        assert code == 0, err


def test_a_down_stopped_between_deregister_and_delete_is_finished_by_the_next(moto, prefix, capsys):
    up(moto, prefix, capsys, "v1", "v2")

    def stopped(**kwargs):
        raise KeyboardInterrupt  # Ctrl-C right after the first deregistration

    code, _, _ = run_deploy(capsys, "down", "--name-prefix", prefix,
                            container=shell_whose_ecs(delete_task_definitions=stopped))
    assert code == 130
    assert revisions(moto, prefix, "INACTIVE") == [f"{prefix}-api:1"]

    code, out, err = run_deploy(capsys, "down", "--name-prefix", prefix)
    assert code == 0, out + err
    assert f"deleted task definition {prefix}-api:1" in out and f"deleted task definition {prefix}-api:2" in out
    assert f"nothing is left of deployment '{prefix}'" in out
    assert revisions(moto, prefix, "INACTIVE") == [] and moto.made_by(prefix) == []


def test_a_refused_delete_is_a_problem_and_a_later_down_deletes_the_inactive_revision(moto, prefix, capsys):
    up(moto, prefix, capsys, "v1")
    denied = refused("AccessDeniedException", "User: arn:aws:iam::123456789012:user/ci is not authorized to "
                                              "perform: ecs:DeleteTaskDefinitions")
    code, out, _ = run_deploy(capsys, "down", "--name-prefix", prefix,
                              container=shell_whose_ecs(delete_task_definitions=denied))
    assert code == 1
    assert (f"problem: task definition {prefix}-api:1: access denied while deregister task definition: "
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ecs:DeleteTaskDefinitions") in out
    assert f"still present:\n  - task definition {prefix}-api:1\n" in out and "nothing is left" not in out
    assert revisions(moto, prefix, "INACTIVE") == [f"{prefix}-api:1"]

    code, out, err = run_deploy(capsys, "down", "--name-prefix", prefix)  # the permission granted
    assert code == 0, out + err
    assert f"deleted task definition {prefix}-api:1" in out and "nothing is left" in out
    assert revisions(moto, prefix, "INACTIVE") == []


def test_a_revision_ecs_lists_as_not_deleted_is_a_problem(moto, prefix, capsys):
    """DeleteTaskDefinitions answers 200 with a per-revision ``failures`` list instead of raising."""
    up(moto, prefix, capsys, "v1")

    def not_deleted(taskDefinitions):
        return {"taskDefinitions": [], "failures": [{"arn": taskDefinitions[0], "reason": "SERVER_ERROR"}]}

    code, out, _ = run_deploy(capsys, "down", "--name-prefix", prefix,
                              container=shell_whose_ecs(delete_task_definitions=not_deleted))
    assert code == 1
    assert f"problem: task definition {prefix}-api:1: ECS did not delete the inactive revision: SERVER_ERROR" in out
    assert f"  - task definition {prefix}-api:1" in out
    assert run_deploy(capsys, "down", "--name-prefix", prefix)[0] == 0
    assert revisions(moto, prefix, "INACTIVE") == []


def test_an_endpoint_without_delete_task_definitions_leaves_them_inactive_and_down_succeeds(moto, prefix, capsys):
    """Older LocalStack answers 501 for it: not a refusal to fix, and inactive revisions cost nothing."""
    up(moto, prefix, capsys, "v1", "v2")
    lacking = refused("InternalFailure", "API action 'DeleteTaskDefinitions' for service 'ecs' not yet implemented",
                      status=501)
    for _ in range(2):  # and again: the inactive revisions it cannot delete are not reported as left
        code, out, err = run_deploy(capsys, "down", "--name-prefix", prefix,
                                    container=shell_whose_ecs(delete_task_definitions=lacking))
        assert code == 0, out + err
        assert "problem" not in out and "nothing is left" in out
    assert sorted(revisions(moto, prefix, "INACTIVE")) == [f"{prefix}-api:1", f"{prefix}-api:2"]
    assert revisions(moto, prefix, "ACTIVE") == [] and moto.made_by(prefix) == []
    assert run_deploy(capsys, "down", "--name-prefix", prefix)[0] == 0  # a full endpoint deletes them
    assert revisions(moto, prefix, "INACTIVE") == []
