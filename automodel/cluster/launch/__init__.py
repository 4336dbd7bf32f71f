"""Cluster, top layer: job entry points (``jobs/*.py``), ``automodel submit``, Docker contexts.

It sits above every stage (a job runs the pipeline; a Docker context renders a Serve config) and
uses the bottom layer, :mod:`automodel.cluster`, for connecting and preflight.
"""

from automodel.cluster.launch._docker import write_docker_context
from automodel.cluster.launch._job import job_main, job_parser
from automodel.cluster.launch._submit import job_status, stop_job, submit

__all__ = ["job_main", "job_parser", "job_status", "stop_job", "submit", "write_docker_context"]
