"""CloudFormation models for the resource types Vela's templates use that moto 5.2 lacks.

`AWS::DSQL::Cluster`, `AWS::RDS::DBCluster`, `AWS::SecretsManager::Secret` and
`AWS::SecretsManager::SecretTargetAttachment`: without a model moto skips the resource (the stack still
completes) and `Fn::GetAtt` on it answers HTTP 500. Each model creates the real resource in moto's own
backend, so DSQL, RDS and Secrets Manager describe what a stack made; the object moto's CloudFormation
keeps is a small handle (account, region, physical id) that looks the service's object up when asked.
`Ref` and the attributes follow AWS's documentation and the registry schemas (`registry.py`).

`AWS::RDS::DBInstance` is moto's own model, extended here: moto ignores its `DBClusterIdentifier`, so an
Aurora instance became a stand-alone instance that its cluster did not list as a member.

Sandbox setting: `SANDBOX_AURORA_PORT`. The sandbox's Aurora is the local PostgreSQL; when that server is
not on the template's port the sandbox sets this variable and an `AWS::RDS::DBCluster` reports that port
(`DescribeDBClusters`, `Endpoint.Port`, the attached secret) instead of the template's `Port`; drift detection
still reads the template's there (`template_port`).

Where this differs from AWS is listed in docs/sandbox.md.
"""

from __future__ import annotations

import json
import logging
import os
import re
import string
from typing import Any

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException, ValidationError
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import JsonRESTError, ServiceException
from moto.dsql.exceptions import ResourceNotFoundException as DsqlNotFound
from moto.dsql.models import dsql_backends
from moto.moto_api._internal import mock_random
from moto.rds import models as rds_models
from moto.rds.exceptions import DBClusterNotFoundError, RDSClientError
from moto.rds.models import rds_backends
from moto.secretsmanager.models import secretsmanager_backends

from infra.sandbox.cfn import registry

log = logging.getLogger(__name__)

AURORA_PORT_VARIABLE = "SANDBOX_AURORA_PORT"


def install() -> None:
    """Importing this module defined (registered) the models; patch moto's DBInstance and DSQL cluster once."""
    _dsql_endpoint_as_aws_names_it()
    if not getattr(rds_models.DBInstance, "_sandbox_cluster_aware", False):
        original = rds_models.DBInstance.create_from_cloudformation_json.__func__
        rds_models.DBInstance.create_from_cloudformation_json = classmethod(_db_instance_creator(original))
        rds_models.DBInstance._sandbox_cluster_aware = True


def _dsql_endpoint_as_aws_names_it() -> None:
    """moto's GetCluster/CreateCluster say `endpoint: <id>.<region>.on.aws`; AWS's is `<id>.dsql.<region>.on.aws`
    (the Aurora DSQL user guide's connection pages), the host VelaOps signs its tokens for."""
    from moto.dsql import models as dsql_models

    if getattr(dsql_models.Cluster, "_sandbox_endpoint", False):
        return
    original = dsql_models.Cluster.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.endpoint = f"{self.identifier}.dsql.{self.region_name}.on.aws"

    dsql_models.Cluster.__init__ = init
    dsql_models.Cluster._sandbox_endpoint = True


# ---------------------------------------------------------------- helpers


def _properties(cloudformation_json: dict[str, Any]) -> dict[str, Any]:
    return dict(cloudformation_json.get("Properties") or {})


def _bool(value: Any, default: bool | None = None) -> bool | None:
    if value is None:
        return default
    if isinstance(value, str):  # parameters and Fn::If can hand booleans over as strings
        return value.strip().lower() == "true"
    return bool(value)


def _tag_list(properties: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": tag["Key"], "Value": tag["Value"]} for tag in properties.get("Tags") or []]


def _replacing(type_name: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The changed properties whose change replaces the resource (the registry's createOnlyProperties)."""
    schema = registry.schema(type_name)
    changed = {name for name in set(old) | set(new) if old.get(name) != new.get(name)}
    return sorted(name for name in changed if schema is not None and schema.replaces(name))


def _refuse_custom_name_replacement(name_property: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    name = new.get(name_property)
    if name and name == old.get(name_property):
        raise ValidationError(
            message=(
                "CloudFormation cannot update a stack when a custom-named resource requires replacing. "
                f"Rename {name} and update the stack again."
            )
        )


def _unknown_attribute() -> UnformattedGetAttTemplateException:
    return UnformattedGetAttTemplateException()


def _service_error(error: JsonRESTError) -> ServiceException:
    # Secrets Manager's errors are JSON-only; CloudFormation's query protocol can serialise a ServiceException.
    return ServiceException(error.error_type, error.message)


_DYNAMIC_SECRET = re.compile(r"\{\{resolve:secretsmanager:(?P<reference>[^}]+)\}\}")


def _resolve_dynamic_references(value: Any, account_id: str, region_name: str) -> Any:
    """`{{resolve:secretsmanager:…}}` as CloudFormation resolves it (moto passes it on verbatim)."""
    if not isinstance(value, str) or "{{resolve:secretsmanager:" not in value:
        return value

    def resolve(match: re.Match[str]) -> str:
        parts = match.group("reference").split(":")
        # secret-id:SecretString:json-key:version-stage:version-id; the secret id may be an ARN (7 parts)
        width = 7 if parts[0] == "arn" else 1
        secret_id, rest = ":".join(parts[:width]), parts[width:]
        json_key = rest[1] if len(rest) > 1 and rest[1] else None
        stage = rest[2] if len(rest) > 2 and rest[2] else None
        version_id = rest[3] if len(rest) > 3 and rest[3] else None
        backend = secretsmanager_backends[account_id][region_name]
        try:
            secret_string = backend.get_secret_value(secret_id, version_id, stage).get("SecretString", "")
        except JsonRESTError as error:
            raise _service_error(error) from error
        if json_key is None:
            return secret_string
        try:
            return str(json.loads(secret_string)[json_key])
        except (ValueError, KeyError, TypeError) as error:
            raise ValidationError(
                message=f"Could not parse SecretString JSON or find key {json_key} in secret {secret_id}"
            ) from error

    return _DYNAMIC_SECRET.sub(resolve, value)


class _Handle:
    """What moto's CloudFormation keeps for a resource: where it lives and its physical id.

    Plain attributes only: /moto-api/data.json serialises every public attribute of every model.
    """

    ATTRIBUTES: tuple[str, ...] = ()

    def __init__(self, account_id: str, region_name: str, physical_resource_id: str, properties: dict[str, Any]):
        self.account_id = account_id
        self.region_name = region_name
        self.physical_resource_id = physical_resource_id
        self._properties = properties

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def is_created(self) -> bool:
        return True

    @classmethod
    def _exists(cls, identifier: str, account_id: str, region_name: str) -> bool:
        raise NotImplementedError

    @classmethod
    def import_existing(cls, identifier: str, resource_json: dict[str, Any], account_id: str, region_name: str) -> Any:
        """An IMPORT change set's adoption (infra/sandbox/cfn/adopt.py): a handle on what exists, or None."""
        if not cls._exists(identifier, account_id, region_name):
            return None
        return cls(account_id, region_name, identifier, _properties(resource_json) if resource_json else {})


# ---------------------------------------------------------------- AWS::DSQL::Cluster


class DsqlCluster(_Handle, CloudFormationModel):
    """An Aurora DSQL cluster in moto's DSQL backend. Ref: the cluster identifier."""

    ATTRIBUTES = (
        "Identifier",
        "ResourceArn",
        "Endpoint",
        "VpcEndpoint",
        "VpcEndpointServiceName",
        "Status",
        "CreationTime",
        "PolicyVersion",
        "EncryptionDetails.EncryptionStatus",
        "EncryptionDetails.EncryptionType",
        "EncryptionDetails.KmsKeyArn",
    )

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::DSQL::Cluster"

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""  # no name property: the identifier is generated

    @staticmethod
    def _backend(account_id: str, region_name: str) -> Any:
        if region_name not in dsql_backends[account_id].regions:
            # moto serves DSQL in a few regions only; AWS rejects a type a region does not offer like this.
            raise ValidationError(message="Template format error: Unrecognized resource types: [AWS::DSQL::Cluster]")
        return dsql_backends[account_id][region_name]

    @staticmethod
    def _api_arguments(properties: dict[str, Any]) -> dict[str, Any]:
        key = properties.get("KmsEncryptionKey")
        multi_region = properties.get("MultiRegionProperties")
        return {
            "kms_encryption_key": None if key in (None, "AWS_OWNED_KMS_KEY") else key,
            "multi_region_properties": (
                {
                    name: multi_region[key_name]
                    for key_name, name in (("WitnessRegion", "witnessRegion"), ("Clusters", "clusters"))
                    if key_name in multi_region
                }
                if multi_region
                else None
            ),
        }

    def _cluster(self) -> Any:
        return self._backend(self.account_id, self.region_name).clusters[self.physical_resource_id]

    @classmethod
    def _exists(cls, identifier: str, account_id: str, region_name: str) -> bool:
        return identifier in cls._backend(account_id, region_name).clusters

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.ATTRIBUTES:
            raise _unknown_attribute()
        cluster = self._cluster()
        if attribute_name == "Identifier":
            return cluster.identifier
        if attribute_name == "ResourceArn":
            return cluster.arn
        if attribute_name == "Endpoint":
            return cluster.endpoint  # AWS's form (install() corrects moto's)
        if attribute_name in ("VpcEndpoint", "VpcEndpointServiceName"):
            # what dsql:GetVpcEndpointServiceName answers, read without advancing the state manager
            return cluster.endpoint if attribute_name == "VpcEndpoint" else cluster.endpoint_service_name
        if attribute_name == "Status":
            return cluster.status
        if attribute_name == "CreationTime":
            return cluster.creation_time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        if attribute_name == "PolicyVersion":
            return cluster.policy_version
        detail = attribute_name.split(".", 1)[1]  # EncryptionDetails.EncryptionStatus → encryptionStatus
        return cluster.encryption_details.get(detail[0].lower() + detail[1:])

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> DsqlCluster:
        properties = _properties(cloudformation_json)
        cluster = cls._backend(account_id, region_name).create_cluster(
            deletion_protection_enabled=_bool(properties.get("DeletionProtectionEnabled"), True),
            tags={tag["Key"]: tag["Value"] for tag in _tag_list(properties)} or None,
            client_token=None,
            policy=properties.get("PolicyDocument"),
            **cls._api_arguments(properties),
        )
        return cls(account_id, region_name, cluster.identifier, properties)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: DsqlCluster,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> DsqlCluster:
        # every DSQL property updates in place (the schema has no createOnlyProperties)
        old, new = original_resource._properties, _properties(cloudformation_json)
        backend = cls._backend(account_id, region_name)
        identifier = original_resource.physical_resource_id
        arguments = cls._api_arguments(new)
        backend.update_cluster(
            identifier=identifier,
            deletion_protection_enabled=_bool(new.get("DeletionProtectionEnabled"), True),
            kms_encryption_key=arguments["kms_encryption_key"]
            if old.get("KmsEncryptionKey") != new.get("KmsEncryptionKey")
            else None,
            multi_region_properties=arguments["multi_region_properties"],
        )
        cluster = backend.clusters[identifier]
        cluster.tags = {tag["Key"]: tag["Value"] for tag in _tag_list(new)} or None
        if old.get("PolicyDocument") != new.get("PolicyDocument"):
            if new.get("PolicyDocument"):
                backend.put_cluster_policy(identifier, new["PolicyDocument"], None)
            elif cluster.policy is not None:
                backend.delete_cluster_policy(identifier, None)
        original_resource._properties = new
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        try:
            # refuses a deletion-protected cluster (ConflictException), as DSQL does
            cls._backend(account_id, region_name).delete_cluster(identifier=resource_name)
        except DsqlNotFound:
            pass  # already gone: CloudFormation counts that as deleted


# ---------------------------------------------------------------- AWS::RDS::DBCluster

# CloudFormation property → moto DBCluster keyword
_RDS_CLUSTER_PROPERTIES = {
    "Engine": "engine",
    "EngineVersion": "engine_version",
    "EngineMode": "engine_mode",
    "DatabaseName": "database_name",
    "MasterUsername": "master_username",
    "MasterUserPassword": "master_user_password",
    "DBClusterParameterGroupName": "db_cluster_parameter_group_name",
    "DBClusterInstanceClass": "db_cluster_instance_class",
    "KmsKeyId": "kms_key_id",
    "VpcSecurityGroupIds": "vpc_security_group_ids",
    "AvailabilityZones": "availability_zones",
    "BackupRetentionPeriod": "backup_retention_period",
    "PreferredBackupWindow": "preferred_backup_window",
    "PreferredMaintenanceWindow": "preferred_maintenance_window",
    "EnableCloudwatchLogsExports": "enable_cloudwatch_logs_exports",
    "GlobalClusterIdentifier": "global_cluster_identifier",
    "ReplicationSourceIdentifier": "replication_source_identifier",
    "StorageType": "storage_type",
    "Iops": "iops",
    "AllocatedStorage": "allocated_storage",
    "NetworkType": "network_type",
}
_RDS_CLUSTER_FLAGS = {
    "DeletionProtection": "deletion_protection",
    "StorageEncrypted": "storage_encrypted",
    "CopyTagsToSnapshot": "copy_tags_to_snapshot",
    "EnableIAMDatabaseAuthentication": "enable_iam_database_authentication",
    "EnableHttpEndpoint": "enable_http_endpoint",
    "ManageMasterUserPassword": "manage_master_user_password",
    "PubliclyAccessible": "publicly_accessible",
}
# what an in-place update may change, CloudFormation property → moto DBCluster attribute
_RDS_CLUSTER_UPDATABLE = {
    "DeletionProtection": "deletion_protection",
    "CopyTagsToSnapshot": "copy_tags_to_snapshot",
    "EngineVersion": "engine_version",
    "BackupRetentionPeriod": "backup_retention_period",
    "PreferredBackupWindow": "preferred_backup_window",
    "PreferredMaintenanceWindow": "preferred_maintenance_window",
    "DBClusterParameterGroupName": "parameter_group",
    "VpcSecurityGroupIds": "vpc_security_group_ids",
    "EnableIAMDatabaseAuthentication": "iam_auth",
    "EnableCloudwatchLogsExports": "enabled_cloudwatch_logs_exports",
    "MasterUsername": "master_username",
    "Engine": "engine",
}


def _aurora_port(template_port: Any) -> int | None:
    override = os.environ.get(AURORA_PORT_VARIABLE)
    if override:
        return int(override)
    return int(template_port) if template_port not in (None, "") else None


def _remember_template_port(cluster: Any, template_port: Any) -> None:
    """Keep which template port the local server's port stands in for: drift detection reads the cluster as AWS
    would report it (infra/sandbox/cfn/drift.py), so a sandbox on another port is not drift, while a port changed
    out of band afterwards (no longer the substituted one) still is."""
    if template_port in (None, "") or cluster.port == int(template_port):
        cluster.sandbox_port_substitution = None
    else:
        cluster.sandbox_port_substitution = (cluster.port, int(template_port))


def template_port(cluster: Any) -> Any:
    """The cluster's port as it would be on AWS: the template's where the sandbox substituted the local one."""
    substitution = getattr(cluster, "sandbox_port_substitution", None)
    if substitution and cluster.port == substitution[0]:
        return substitution[1]
    return cluster.port


class RdsDBCluster(_Handle, CloudFormationModel):
    """An Aurora cluster in moto's RDS backend. Ref: the cluster identifier."""

    ATTRIBUTES = (
        "DBClusterArn",
        "DBClusterResourceId",
        "Endpoint.Address",
        "Endpoint.Port",
        "ReadEndpoint.Address",
        "MasterUserSecret.SecretArn",
    )

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::RDS::DBCluster"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "DBClusterIdentifier"

    def _cluster(self) -> Any:
        cluster = rds_backends[self.account_id][self.region_name].clusters.get(self.physical_resource_id)
        if cluster is None:
            raise DBClusterNotFoundError(self.physical_resource_id)
        return cluster

    @classmethod
    def _exists(cls, identifier: str, account_id: str, region_name: str) -> bool:
        return identifier in rds_backends[account_id][region_name].clusters

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.ATTRIBUTES:
            raise _unknown_attribute()
        cluster = self._cluster()
        if attribute_name == "DBClusterArn":
            return cluster.db_cluster_arn
        if attribute_name == "DBClusterResourceId":
            return cluster.db_cluster_resource_id
        if attribute_name == "Endpoint.Address":
            return cluster.endpoint
        if attribute_name == "Endpoint.Port":
            return str(cluster.port)  # CloudFormation hands the port over as a string
        if attribute_name == "ReadEndpoint.Address":
            return cluster.reader_endpoint
        if not cluster.manage_master_user_password:
            raise _unknown_attribute()
        return cluster.master_user_secret.secret_arn

    @staticmethod
    def _identifier(resource_name: str) -> str:
        # CloudFormation generates lower-case identifiers of at most 63 characters
        return resource_name.lower()[:63].rstrip("-")

    @classmethod
    def _create(cls, identifier: str, properties: dict[str, Any], account_id: str, region_name: str) -> RdsDBCluster:
        backend = rds_backends[account_id][region_name]
        if identifier in backend.clusters:
            raise RDSClientError("DBClusterAlreadyExistsFault", "DB Cluster already exists")
        arguments: dict[str, Any] = {"db_cluster_identifier": identifier}
        for name, keyword in _RDS_CLUSTER_PROPERTIES.items():
            if properties.get(name) is not None:
                arguments[keyword] = _resolve_dynamic_references(properties[name], account_id, region_name)
        for name, keyword in _RDS_CLUSTER_FLAGS.items():
            if properties.get(name) is not None:
                arguments[keyword] = _bool(properties[name])
        subnet_group = properties.get("DBSubnetGroupName")
        if subnet_group is not None:
            # moto's DBSubnetGroup has no physical id: its Ref is the model itself
            arguments["db_subnet_group_name"] = getattr(subnet_group, "name", subnet_group)
        for name in ("BackupRetentionPeriod", "Iops", "AllocatedStorage"):
            if name in properties:
                arguments[_RDS_CLUSTER_PROPERTIES[name]] = int(properties[name])
        if properties.get("MasterUserSecret", {}).get("KmsKeyId"):
            arguments["master_user_secret_kms_key_id"] = properties["MasterUserSecret"]["KmsKeyId"]
        port = _aurora_port(properties.get("Port"))
        if port is not None:
            arguments["port"] = port
        arguments["tags"] = _tag_list(properties)
        backend.create_db_cluster(arguments)
        _remember_template_port(backend.clusters[identifier], properties.get("Port"))
        return cls(account_id, region_name, identifier, properties)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> RdsDBCluster:
        return cls._create(cls._identifier(resource_name), _properties(cloudformation_json), account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: RdsDBCluster,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> RdsDBCluster:
        old, new = original_resource._properties, _properties(cloudformation_json)
        if _replacing(cls.cloudformation_type(), old, new):
            _refuse_custom_name_replacement("DBClusterIdentifier", old, new)
            replacement = cls._create(cls._identifier(new_resource_name), new, account_id, region_name)
            _delete_replaced(cls, original_resource, account_id, region_name)
            return replacement
        cluster = original_resource._cluster()
        for name, attribute in _RDS_CLUSTER_UPDATABLE.items():
            if old.get(name) != new.get(name) and new.get(name) is not None:
                value = new[name]
                if name in _RDS_CLUSTER_FLAGS:
                    value = _bool(value)
                elif name == "BackupRetentionPeriod":
                    value = int(value)
                setattr(cluster, attribute, value)
        if old.get("DeletionProtection") is not None and new.get("DeletionProtection") is None:
            cluster.deletion_protection = False  # the property's default
        if old.get("MasterUserPassword") != new.get("MasterUserPassword") and new.get("MasterUserPassword"):
            cluster.master_user_password = _resolve_dynamic_references(
                new["MasterUserPassword"], account_id, region_name
            )
        port = _aurora_port(new.get("Port"))
        if port is not None:
            cluster.port = port
            _remember_template_port(cluster, new.get("Port"))
        cluster.tags = _tag_list(new)
        original_resource._properties = new
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        try:
            # refuses a protected cluster with InvalidParameterCombination, as RDS does
            rds_backends[account_id][region_name].delete_db_cluster(cluster_identifier=resource_name)
        except DBClusterNotFoundError:
            pass


def _delete_replaced(model: Any, old: _Handle, account_id: str, region_name: str) -> None:
    """Replacement: AWS deletes the old resource in the cleanup phase and a failure there does not fail the
    update (the old one is left behind, with a DELETE_FAILED event)."""
    try:
        model.delete_from_cloudformation_json(old.physical_resource_id, {}, account_id, region_name)
    except ServiceException as error:
        log.warning("replaced %s %s not deleted: %s", model.cloudformation_type(), old.physical_resource_id, error)


def _db_instance_creator(original: Any) -> Any:
    def create_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json.get("Properties") or {}
        cluster_id = properties.get("DBClusterIdentifier")
        if not cluster_id:
            return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        # An Aurora instance: storage, credentials, database and port belong to the cluster.
        backend = rds_backends[account_id][region_name]
        cluster_id = str(cluster_id).lower()
        if cluster_id not in backend.clusters:
            raise DBClusterNotFoundError(cluster_id)
        cluster = backend.clusters[cluster_id]
        subnet_group = properties.get("DBSubnetGroupName")
        arguments = {
            "db_instance_identifier": resource_name.replace("_", "-").lower(),
            "db_cluster_identifier": cluster_id,
            "db_instance_class": properties.get("DBInstanceClass"),
            "engine": properties.get("Engine") or cluster.engine,
            "availability_zone": properties.get("AvailabilityZone"),
            "promotion_tier": int(properties.get("PromotionTier", 1)),
            "publicly_accessible": _bool(properties.get("PubliclyAccessible")),
            "auto_minor_version_upgrade": _bool(properties.get("AutoMinorVersionUpgrade"), True),
            "preferred_maintenance_window": str(
                properties.get("PreferredMaintenanceWindow", "wed:06:38-wed:07:08")
            ).lower(),
            "db_parameter_group_name": properties.get("DBParameterGroupName"),
            "db_subnet_group_name": getattr(subnet_group, "name", subnet_group) or cluster.db_subnet_group_name,
            "port": cluster.port,
            "storage_encrypted": cluster.storage_encrypted,
            "vpc_security_group_ids": cluster.vpc_security_group_ids,
            "tags": properties.get("Tags"),
        }
        return backend.create_db_instance({key: value for key, value in arguments.items() if value is not None})

    return create_from_cloudformation_json


# ---------------------------------------------------------------- AWS::SecretsManager::Secret


def generate_password(spec: dict[str, Any]) -> str:
    """A random password as GetRandomPassword makes it, from a GenerateSecretString's options."""
    length = int(spec.get("PasswordLength", 32))
    if not 1 <= length <= 4096:
        raise ValidationError(message=f"PasswordLength must be between 1 and 4096, not {length}")
    excluded = set(spec.get("ExcludeCharacters") or "")
    pools = []
    for flag, characters in (
        ("ExcludeLowercase", string.ascii_lowercase),
        ("ExcludeUppercase", string.ascii_uppercase),
        ("ExcludeNumbers", string.digits),
        ("ExcludePunctuation", string.punctuation),  # AWS's set is the same 32 characters
    ):
        if not _bool(spec.get(flag), False):
            pool = "".join(c for c in characters if c not in excluded)
            if pool:
                pools.append(pool)
    if _bool(spec.get("IncludeSpace"), False) and " " not in excluded:
        pools.append(" ")
    if not pools:
        raise ServiceException("InvalidParameterException", "The password has no characters left to use.")
    required = _bool(spec.get("RequireEachIncludedType"), True)
    if required and length < len(pools):
        raise ServiceException("InvalidParameterException", "Password length is too short based on the required types.")
    alphabet = "".join(pools)
    characters = [mock_random.choice(pool) for pool in pools] if required else []
    characters += [mock_random.choice(alphabet) for _ in range(length - len(characters))]
    mock_random.shuffle(characters)
    return "".join(characters)


def generate_secret_string(spec: dict[str, Any]) -> str:
    template, key = spec.get("SecretStringTemplate"), spec.get("GenerateStringKey")
    if bool(template) != bool(key):
        raise ValidationError(
            message="GenerateSecretString: SecretStringTemplate and GenerateStringKey must be specified together"
        )
    password = generate_password(spec)
    if not template:
        return password
    try:
        document = json.loads(template)
    except ValueError as error:
        raise ValidationError(message="GenerateSecretString: SecretStringTemplate is not valid JSON") from error
    if not isinstance(document, dict):
        raise ValidationError(message="GenerateSecretString: SecretStringTemplate must be a JSON object")
    document[key] = password
    return json.dumps(document, separators=(",", ":"))


def _secret_string(properties: dict[str, Any]) -> str | None:
    if properties.get("SecretString") is not None and properties.get("GenerateSecretString"):
        raise ValidationError(message="You can't specify both SecretString and GenerateSecretString")
    if properties.get("SecretString") is not None:
        return str(properties["SecretString"])
    if properties.get("GenerateSecretString"):
        return generate_secret_string(properties["GenerateSecretString"])
    return None  # neither: an empty secret, as AWS makes it


class SecretsManagerSecret(_Handle, CloudFormationModel):
    """A secret in moto's Secrets Manager backend. Ref and Id: the secret's ARN."""

    ATTRIBUTES = ("Id",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.ATTRIBUTES:
            raise _unknown_attribute()
        return self.physical_resource_id

    @classmethod
    def _create(cls, name: str, properties: dict[str, Any], account_id: str, region_name: str) -> SecretsManagerSecret:
        backend = secretsmanager_backends[account_id][region_name]
        try:
            backend.create_secret(
                name=name,
                secret_string=_secret_string(properties),
                secret_binary=None,
                description=properties.get("Description"),
                tags=_tag_list(properties) or None,
                kms_key_id=properties.get("KmsKeyId"),
                client_request_token=None,
                replica_regions=properties.get("ReplicaRegions") or [],
                force_overwrite=False,
            )
        except JsonRESTError as error:
            raise _service_error(error) from error
        return cls(account_id, region_name, backend.secrets[name].arn, properties)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> SecretsManagerSecret:
        properties = _properties(cloudformation_json)
        name = properties.get("Name") or cls._generated_name(kwargs.get("LogicalId"), resource_name)
        return cls._create(name, properties, account_id, region_name)

    @staticmethod
    def _generated_name(logical_id: str | None, fallback: str) -> str:
        # AWS names an unnamed secret `<LogicalId>-<12 random characters>`
        if not logical_id:
            return fallback
        suffix = "".join(mock_random.choice(string.ascii_letters + string.digits) for _ in range(12))
        return f"{logical_id}-{suffix}"

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: SecretsManagerSecret,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> SecretsManagerSecret:
        old, new = original_resource._properties, _properties(cloudformation_json)
        if _replacing(cls.cloudformation_type(), old, new):  # the Name
            replacement = cls._create(
                new.get("Name") or cls._generated_name(None, new_resource_name), new, account_id, region_name
            )
            _delete_replaced(cls, original_resource, account_id, region_name)
            return replacement
        backend = secretsmanager_backends[account_id][region_name]
        secret = backend.secrets[original_resource.physical_resource_id]
        secret.description = new.get("Description")
        secret.tags = _tag_list(new) or None
        if new.get("KmsKeyId") != old.get("KmsKeyId"):
            secret.kms_key_id = new.get("KmsKeyId")
        if (new.get("SecretString"), new.get("GenerateSecretString")) != (
            old.get("SecretString"),
            old.get("GenerateSecretString"),
        ):
            value = _secret_string(new)
            if value is not None:  # a change of either makes a new AWSCURRENT version
                backend.put_secret_value(secret.arn, value, None, None, ["AWSCURRENT"])
        original_resource._properties = new
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        backend = secretsmanager_backends[account_id][region_name]
        if resource_name in backend.secrets:
            # CloudFormation deletes secrets without a recovery window
            backend.delete_secret(resource_name, recovery_window_in_days=None, force_delete_without_recovery=True)


# ---------------------------------------------------------------- AWS::SecretsManager::SecretTargetAttachment

# The `engine` value Secrets Manager writes for an RDS engine (the secret JSON structure AWS documents).
_SECRET_ENGINES = {"aurora-postgresql": "postgres", "aurora-mysql": "mysql", "aurora": "mysql"}
_TARGET_KEYS = ("engine", "host", "port", "dbClusterIdentifier", "dbInstanceIdentifier")


def _target_details(target_type: str, target_id: str, account_id: str, region_name: str) -> dict[str, Any]:
    backend = rds_backends[account_id][region_name]
    if target_type == "AWS::RDS::DBCluster":
        cluster = backend.clusters.get(str(target_id).lower())
        if cluster is None:
            raise DBClusterNotFoundError(str(target_id))
        return {
            "engine": _SECRET_ENGINES.get(cluster.engine, cluster.engine),
            "host": cluster.endpoint,
            "port": int(cluster.port),
            "dbClusterIdentifier": cluster.db_cluster_identifier,
        }
    if target_type == "AWS::RDS::DBInstance":
        instance = backend.describe_db_instances(str(target_id).lower())[0]
        engine = instance.engine
        return {
            "engine": _SECRET_ENGINES.get(engine, engine.split("-")[0]),
            "host": instance.address,
            "port": int(instance.port),
            "dbInstanceIdentifier": instance.db_instance_identifier,
        }
    raise ValidationError(message=f"SecretTargetAttachment: TargetType {target_type} is not supported in the sandbox")


def _rewrite_secret(secret_id: str, account_id: str, region_name: str, change: Any) -> str:
    """Apply change(document) to the secret's JSON and put it as the new AWSCURRENT version; the ARN."""
    backend = secretsmanager_backends[account_id][region_name]
    try:
        value = backend.get_secret_value(secret_id, None, None)
    except JsonRESTError as error:
        raise _service_error(error) from error
    try:
        document = json.loads(value.get("SecretString") or "")
    except ValueError:
        document = None
    if not isinstance(document, dict) or "username" not in document or "password" not in document:
        raise ValidationError(
            message="SecretTargetAttachment: the secret must be a JSON object with the keys username and password"
        )
    change(document)
    backend.put_secret_value(value["ARN"], json.dumps(document, separators=(",", ":")), None, None, ["AWSCURRENT"])
    return value["ARN"]


class SecretTargetAttachment(_Handle, CloudFormationModel):
    """Adds a database's connection details to its secret. Ref and Id: the secret's ARN."""

    ATTRIBUTES = ("Id",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::SecretTargetAttachment"

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.ATTRIBUTES:
            raise _unknown_attribute()
        return self.physical_resource_id

    @classmethod
    def _attach(cls, properties: dict[str, Any], account_id: str, region_name: str) -> SecretTargetAttachment:
        details = _target_details(
            properties.get("TargetType", ""), properties.get("TargetId", ""), account_id, region_name
        )

        def attach(document: dict[str, Any]) -> None:
            for key in _TARGET_KEYS:
                document.pop(key, None)
            document.update(details)

        arn = _rewrite_secret(properties.get("SecretId", ""), account_id, region_name, attach)
        return cls(account_id, region_name, arn, properties)

    @staticmethod
    def _detach(secret_id: str, account_id: str, region_name: str) -> None:
        # AWS takes the connection details out again (PutSecretValue) when the attachment goes
        if secret_id not in secretsmanager_backends[account_id][region_name].secrets:
            return

        def detach(document: dict[str, Any]) -> None:
            for key in _TARGET_KEYS:
                document.pop(key, None)

        try:
            _rewrite_secret(secret_id, account_id, region_name, detach)
        except (ServiceException, ValidationError):
            pass  # deleted or no longer a credentials document: nothing of ours left in it

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> SecretTargetAttachment:
        return cls._attach(_properties(cloudformation_json), account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: SecretTargetAttachment,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> SecretTargetAttachment:
        new = _properties(cloudformation_json)
        if _replacing(cls.cloudformation_type(), original_resource._properties, new):  # another secret
            replacement = cls._attach(new, account_id, region_name)
            cls._detach(original_resource.physical_resource_id, account_id, region_name)
            return replacement
        updated = cls._attach(new, account_id, region_name)
        original_resource._properties = updated._properties
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        cls._detach(resource_name, account_id, region_name)
