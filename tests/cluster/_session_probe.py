"""Run by tests/cluster/test_cleanup.py in a child pytest: one test on the session's Ray, so the
child's teardown (the conftest fixture) is the cleanup path under test. Not collected on its own
(the name does not start with ``test_``)."""


def test_session_ray_answers(ray_cluster):
    assert ray_cluster.cluster_resources()["CPU"] >= 1
