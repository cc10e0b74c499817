"""A replica's session request (pure checks of SessionService): inference only, a publishable
port, which joins the preopen ports once."""

from __future__ import annotations

import pytest

from workbay.manager.services.session_request import CreateSession, ReplicaLaunch
from workbay.manager.services.sessions import check_replica, session_ports


def req(**kw):
    return CreateSession.model_validate({"image": "img", "type": "inference", **kw})


def test_a_replica_is_an_inference_session_with_a_publishable_port():
    check_replica(req(), ReplicaLaunch(model_service={"port": 8000}))
    with pytest.raises(ValueError, match="inference session"):
        check_replica(req(type="interactive"), ReplicaLaunch(model_service={"port": 8000}))
    for port in (None, "8000", 80, 70000, True):
        with pytest.raises(ValueError, match="1024-65535"):
            check_replica(req(), ReplicaLaunch(model_service={"port": port}))


def test_the_model_port_joins_the_preopen_ports_once():
    replica = ReplicaLaunch(model_service={"port": 8000})
    assert session_ports(req(), replica) == [8000]
    assert session_ports(req(config={"preopen_ports": [9000]}), replica) == [9000, 8000]
    assert session_ports(req(config={"preopen_ports": [8000, 9000]}), replica) == [8000, 9000]
    assert session_ports(req(config={"preopen_ports": [9000]}), None) == [9000]
