"""EC2: the default VPC's public subnets, the service's security group, and task public IPs.

The security group allows inbound TCP 80 from anywhere and outbound HTTPS only (what pulling
from ECR, reading S3 and writing CloudWatch Logs need; the VPC's DNS resolver is not filtered).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from eurosat_service.adapters.aws_errors import error_code, translates_aws_errors
from eurosat_service.adapters.aws_tags import as_dict, key_value
from eurosat_service.domain.deployment import Ensured, Placement, carries
from eurosat_service.domain.errors import DeploymentError, ResourceInUse

ANYWHERE = "0.0.0.0/0"
HTTPS = 443


@translates_aws_errors
class Ec2Network:
    def __init__(self, client: Any) -> None:
        self.client = client

    def default_placement(self) -> Placement:
        vpcs = self.client.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise DeploymentError(
                "this region has no default VPC: create one (VPC console > Your VPCs > Actions > "
                "Create default VPC, or `aws ec2 create-default-vpc`) or choose another --region")
        vpc_id = vpcs[0]["VpcId"]
        subnets = self.client.describe_subnets(Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default-for-az", "Values": ["true"]},
        ])["Subnets"]
        public = sorted(s["SubnetId"] for s in subnets if s.get("MapPublicIpOnLaunch", True))
        if not public:
            raise DeploymentError(f"the default VPC {vpc_id} has no public default subnets; recreate them "
                                  "(`aws ec2 create-default-subnet --availability-zone ...`)")
        return Placement(vpc_id, tuple(public))

    def ensure_security_group(self, name: str, vpc_id: str, port: int, tags: Mapping[str, str]) -> Ensured:
        groups = self.client.describe_security_groups(Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]},
        ])["SecurityGroups"]
        if groups:
            group_id, created = groups[0]["GroupId"], False
            if not carries(as_dict(groups[0].get("Tags")), tags):
                raise DeploymentError(f"security group {name} ({group_id}) exists but was not created by this job "
                                      "(its tags differ); choose another --name-prefix")
        else:
            group_id, created = self.client.create_security_group(
                GroupName=name, VpcId=vpc_id, Description=f"eurosat-service API: inbound TCP {port} only",
                TagSpecifications=[{"ResourceType": "security-group", "Tags": key_value(tags)}],
            )["GroupId"], True
        self._keep_only(group_id, egress=False, port=port, description="HTTP to the eurosat-service API")
        self._keep_only(group_id, egress=True, port=HTTPS, description="HTTPS to ECR, S3 and CloudWatch Logs")
        return Ensured(group_id, created)

    def find_security_groups(self, tags: Mapping[str, str]) -> list[tuple[str, str]]:
        filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
        found = []
        for page in self.client.get_paginator("describe_security_groups").paginate(Filters=filters):
            found += [(g["GroupId"], g["GroupName"]) for g in page["SecurityGroups"]]
        return found

    def delete_security_group(self, group_id: str) -> bool:
        try:
            self.client.delete_security_group(GroupId=group_id)
            return True
        except ClientError as exc:
            code = error_code(exc)
            if code in ("InvalidGroup.NotFound", "InvalidGroupId.NotFound"):
                return False
            if code == "DependencyViolation":
                raise ResourceInUse(f"security group {group_id} is still used by a network interface") from exc
            raise

    def public_ip(self, network_interface_id: str) -> str | None:
        try:
            interfaces = self.client.describe_network_interfaces(
                NetworkInterfaceIds=[network_interface_id])["NetworkInterfaces"]
        except ClientError as exc:
            if error_code(exc) == "InvalidNetworkInterfaceID.NotFound":
                return None
            raise
        return next((i["Association"]["PublicIp"] for i in interfaces if i.get("Association", {}).get("PublicIp")),
                    None)

    def _keep_only(self, group_id: str, egress: bool, port: int, description: str) -> None:
        """Make the group's rules in one direction exactly: TCP ``port`` from/to anywhere (IPv4)."""
        rules = self.client.describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
        wanted_present = False
        extra = []
        for rule in rules:
            if rule["IsEgress"] != egress:
                continue
            if (rule.get("IpProtocol"), rule.get("FromPort"), rule.get("ToPort"), rule.get("CidrIpv4")) == (
                    "tcp", port, port, ANYWHERE):
                wanted_present = True
            else:
                extra.append(rule["SecurityGroupRuleId"])
        revoke = self.client.revoke_security_group_egress if egress else self.client.revoke_security_group_ingress
        authorize = (self.client.authorize_security_group_egress if egress
                     else self.client.authorize_security_group_ingress)
        if extra:
            revoke(GroupId=group_id, SecurityGroupRuleIds=extra)
        if not wanted_present:
            authorize(GroupId=group_id, IpPermissions=[{
                "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                "IpRanges": [{"CidrIp": ANYWHERE, "Description": description}],
            }])
