"""The bake (issue #16): a risky change judged by its measured effect on the API, and undone when it hurts.

statistics.py holds the tests (pure functions, no Django), verdict.py the judgement of a bake's samples
against a baseline under an environment's criteria, samples.py reads probe history into samples, and
service.py captures baselines and runs bakes for the runbook's steps (dashboard.runbook.steps.bake).
"""
