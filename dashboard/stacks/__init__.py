"""CloudFormation as VelaOps drives it: who owns a resource, change sets reviewed and executed, drift.

CloudFormation owns what it owns: a resource a stack owns is changed only through that stack. These
functions take a CloudFormation client (the runbook passes its logged one) and plain callables for
logging and waiting, so they hold no Django or runbook state.
"""
