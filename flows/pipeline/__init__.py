"""The pipeline core: what a run does, as plain functions, without Prefect.

extract (:mod:`.extract`: read and normalise new deliveries, pull changed member rows) ->
validate (:mod:`.validate`: Great Expectations; failing rows to quarantine; batch gates) ->
load (:mod:`.load`: rows, quarantine and ledger entry of each batch in one transaction), slice by
slice; then the dbt build and the figures; and the run's life around them (:mod:`.run`: the lock,
``ops.runs``, conservation, a stop signal or a failure recorded).

:class:`.run.Steps` names the steps a run calls. :func:`.run.plain_steps` gives the plain
functions (a test runs a whole load with them, no Prefect imported); flows/nightly.py, the Prefect
shell, gives the same functions wrapped as tasks (named task runs, retries, a task runner that may
be a Dask cluster). Nothing in this package imports Prefect (an import-linter contract says so).
"""
