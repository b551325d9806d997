"""The offline sandbox: the Vela AWS account, its databases and its API health route, on loopback.

Parts (each a small module): `moto_server` (AWS), `seed` (the Vela account), `aurora_db` and
`dsql_proxy` (the databases behind Aurora and DSQL, both in the local PostgreSQL), `health_route`
(the API's DSQL health check), `faults` and `control` (fault switches), `runner` (all of it).
"""
