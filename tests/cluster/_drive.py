"""A driver on the head of the shared-nothing cluster (run as a subprocess: the test process has
its own local Ray). ``deploy ARTIFACT PORT``: the artifact's Serve app with two one-CPU replicas,
then print where they run as JSON; ``shutdown``: stop Serve; ``warn RUN_DIR``: the warning a
local run directory gets before any work."""

from __future__ import annotations

import json
import sys
import time

import ray
import requests
from ray import serve
from ray.util.state import list_actors

from automodel.serve._config import apply_config, deploy_config


def deploy(address: str, artifact: str, port: int) -> None:
    overrides = {"min_replicas": 2, "max_replicas": 2, "num_cpus": 1}
    config = deploy_config(artifact, port=port, overrides=overrides)
    # both test nodes share one network namespace, so only the head's proxy can bind the port
    config["proxy_location"] = "HeadOnly"
    apply_config(config)
    deadline = time.time() + 240
    while time.time() < deadline:
        replicas = [
            a
            for a in list_actors(address=address, filters=[("state", "=", "ALIVE")], detail=True)
            if a.class_name.startswith("ServeReplica")
        ]
        try:
            ready = requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5).ok
        except requests.RequestException:
            ready = False
        if ready and len(replicas) == 2:
            break
        time.sleep(2)
    print(json.dumps({"config_artifact": config["applications"][0]["args"]["artifact"],
                      "replica_nodes": sorted(a.node_id for a in replicas)}))  # fmt: skip


if __name__ == "__main__":
    ray.init(address=sys.argv[1], log_to_driver=False, logging_level="WARNING")
    if sys.argv[2] == "warn":  # what run/tune/train call before any work
        from automodel.cluster import warn_unshared

        warn_unshared(sys.argv[3])
    elif sys.argv[2] == "deploy":
        deploy(sys.argv[1], sys.argv[3], int(sys.argv[4]))
    else:
        serve.shutdown()
