"""Our botocore session's data loader (`aws/_clients.py`) checks service names against the
services we call without listing every service botocore knows: it must find exactly what
botocore's own loader finds for those services, load the same models, and every client of
ours must be built through it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from botocore.loaders import Loader, create_loader
from botocore.session import Session

from mobile_backup.aws import _clients
from mobile_backup.core import EMULATOR_KEY, Settings

KINDS = ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2")


@pytest.mark.parametrize("kind", KINDS)
def test_it_finds_what_botocore_finds_for_our_services(kind: str) -> None:
    ours = _clients._services_loader(None).list_available_services(kind)
    theirs = Loader().list_available_services(kind)
    assert ours == sorted(s for s in _clients.SERVICES if s in theirs)
    if kind == "service-2":
        assert ours == sorted(_clients.SERVICES)  # every service we call has a model


@pytest.mark.parametrize("service", _clients.SERVICES)
def test_it_loads_the_same_models_as_botocore(service: str) -> None:
    ours = _clients._services_loader(None)
    theirs = Loader()
    for kind in ("service-2", "endpoint-rule-set-1"):
        assert ours.load_service_model(service, kind) == theirs.load_service_model(service, kind)


def test_a_service_we_do_not_call_is_unknown_to_it_and_refused_by_our_clients() -> None:
    from botocore.exceptions import UnknownServiceError

    with pytest.raises(UnknownServiceError):
        _clients._services_loader(None).load_service_model("ec2", "service-2")
    with pytest.raises(ValueError, match="ec2"):
        _clients._client(Settings(local=True, region="us-east-1"), "ec2", "test")


def test_it_reads_extra_model_folders_as_botocore_does(tmp_path: Path) -> None:
    """AWS_DATA_PATH (the session's `data_path`): a model there is found as botocore finds it."""
    folder = tmp_path / "sqs" / "2099-01-01"
    folder.mkdir(parents=True)
    (folder / "waiters-2.json").write_text('{"version": 2, "waiters": {}}', encoding="utf-8")
    data_path = os.pathsep.join([str(tmp_path), "~/unused"])
    ours = _clients._services_loader(data_path)
    theirs = create_loader(data_path)
    assert ours.search_paths == theirs.search_paths
    assert "sqs" in ours.list_available_services("waiters-2")
    assert ours.load_service_model("sqs", "waiters-2") == {"version": 2, "waiters": {}}


def test_every_client_of_ours_is_built_through_it(monkeypatch: pytest.MonkeyPatch) -> None:
    listed: list[str] = []
    original = Loader.list_available_services

    def spy(self: Loader, type_name: str) -> list[str]:
        listed.append(type(self).__name__)
        return original(self, type_name)

    monkeypatch.setattr(Loader, "list_available_services", spy)
    monkeypatch.setattr(_clients, "_sessions", {})
    settings = Settings(
        local=True,
        region="us-east-1",
        aws_endpoint_url="http://127.0.0.1:9",
        aws_access_key_id=EMULATOR_KEY,
        aws_secret_access_key=EMULATOR_KEY,
    )
    for service in _clients.SERVICES:
        client = _clients._client(settings, service, "test")
        assert client.meta.service_model.service_name == service
    # botocore's own listing never ran (the spy sees the subclass's override bypass it).
    assert listed == []
    assert isinstance(_clients._session(None), Session)
