"""CloudFormation in the sandbox's moto, closer to AWS: what moto 5.2 lacks, registered before serving.

Each part is a deliberate, tested extension listed in docs/sandbox.md with how AWS differs:
`resources` (models for the resource types Vela's templates use that moto lacks), `engine` (change
sets with Replacement/PolicyAction/Details, IMPORT change sets, DeletionPolicy on removal, exports
held by their importers, per-resource stack events), `drift` (stack drift detection) and `iam_auth` (IAM
evaluated for the sandbox's principals when moto's access control is on).
`install()` is idempotent: the sandbox's moto process (`python -m infra.sandbox.cfn.server`) and the
tests' in-process moto both call it.
"""

from __future__ import annotations

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.cloudformation import parsing

    from infra.sandbox import dsql_lifecycle, dsql_login
    from infra.sandbox.cfn import drift, engine, iam_auth, iam_simulate, resources

    dsql_lifecycle.install()  # DSQL's IDLE/INACTIVE/UPDATING/PENDING_SETUP (not CloudFormation, same install)
    dsql_login.install()  # the DSQL endpoint's one question per login
    resources.install()
    engine.install()
    drift.install()
    iam_auth.install()
    iam_simulate.install()  # SimulatePrincipalPolicy, on iam_auth's resource-aware evaluation
    # moto maps resource types to models once (lru_cache over CloudFormationModel.__subclasses__()):
    # forget that map so the models registered above are found.
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    _installed = True
