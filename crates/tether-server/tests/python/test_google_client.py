"""Google's own Device Manager client (google-cloud-iot 2.9.2) against a running
`tether serve`, on either transport:

- REST (tests/google_client.rs):
  TETHER_ENDPOINT=http://127.0.0.1:PORT TETHER_TOKEN=... python3 test_google_client.py
- gRPC, the client's default (tether-cli tests/it/grpc_api_e2e.rs):
  TETHER_TRANSPORT=grpc TETHER_ENDPOINT=127.0.0.1:PORT TETHER_TOKEN=...
  GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=ca.pem python3 test_google_client.py
  Nothing but the endpoint, the token and the CA is given: no transport argument.

The harness has stored two states for device `dev-state` in registry `seeded`.
"""

import os
import sys

from google.api_core import exceptions
from google.cloud import iot_v1
from google.oauth2.credentials import Credentials

ENDPOINT = os.environ["TETHER_ENDPOINT"]
TOKEN = os.environ["TETHER_TOKEN"]
GRPC = os.environ.get("TETHER_TRANSPORT", "rest") == "grpc"
PROJECT, REGION = "acme", "us-central1"
KEY = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENxuJLM8nEPdT/SC96SPSF74qVxnA
1oY9t0KduDT1ohy3Ig/5G1Nj3dCnmklowwSfFMJxUA02ZE4rYHkbZSxYag==
-----END PUBLIC KEY-----
"""

def make_client(token):
    if GRPC:
        # The default transport: gRPC over TLS, the CA from GRPC_DEFAULT_SSL_ROOTS_FILE_PATH.
        return iot_v1.DeviceManagerClient(
            client_options={"api_endpoint": ENDPOINT}, credentials=Credentials(token=token))
    return iot_v1.DeviceManagerClient(
        transport="rest", client_options={"api_endpoint": ENDPOINT}, credentials=Credentials(token=token))


def status_of(e):
    """The canonical status name of a client exception, on either transport."""
    if GRPC:
        return e.grpc_status_code.name
    return e.response.json()["error"]["status"]


client = make_client(TOKEN)
assert GRPC == (type(client._transport).__name__ == "DeviceManagerGrpcTransport"), type(client._transport)
parent = f"projects/{PROJECT}/locations/{REGION}"
results = []


def step(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
            print(f"ok    {name}")
        except Exception as e:  # report every step, then fail at the end
            results.append((name, e))
            print(f"FAIL  {name}: {type(e).__name__}: {e}")
        return fn
    return wrap


registry_name = f"{parent}/registries/fleet"
device_name = f"{registry_name}/devices/dev-1"
state = {}


@step("registries.create")
def _():
    r = client.create_device_registry(
        parent=parent,
        device_registry={
            "id": "fleet",
            "event_notification_configs": [{"pubsub_topic_name": f"projects/{PROJECT}/topics/events"}],
            "mqtt_config": {"mqtt_enabled_state": iot_v1.MqttState.MQTT_ENABLED},
            "log_level": iot_v1.LogLevel.INFO,
        },
    )
    assert r.name == registry_name, r.name
    assert r.mqtt_config.mqtt_enabled_state == iot_v1.MqttState.MQTT_ENABLED
    assert r.log_level == iot_v1.LogLevel.INFO


@step("registries.create duplicate -> Conflict")
def _():
    try:
        client.create_device_registry(parent=parent, device_registry={"id": "fleet"})
    except exceptions.Conflict as e:
        assert status_of(e) == "ALREADY_EXISTS", e
    else:
        raise AssertionError("expected 409")


@step("registries.get")
def _():
    r = client.get_device_registry(name=registry_name)
    assert r.id == "fleet"
    assert r.event_notification_configs[0].pubsub_topic_name == f"projects/{PROJECT}/topics/events"


@step("registries.list")
def _():
    ids = [r.id for r in client.list_device_registries(request={"parent": parent, "page_size": 1})]
    assert ids == ["fleet", "seeded"], ids


@step("registries.patch")
def _():
    r = client.update_device_registry(
        device_registry={"name": registry_name, "http_config": {"http_enabled_state": iot_v1.HttpState.HTTP_DISABLED}},
        update_mask={"paths": ["http_config.http_enabled_state"]},
    )
    assert r.http_config.http_enabled_state == iot_v1.HttpState.HTTP_DISABLED
    assert r.mqtt_config.mqtt_enabled_state == iot_v1.MqttState.MQTT_ENABLED


@step("devices.create")
def _():
    d = client.create_device(
        parent=registry_name,
        device={
            "id": "dev-1",
            "credentials": [{"public_key": {"format": iot_v1.PublicKeyFormat.ES256_PEM, "key": KEY}}],
            "metadata": {"site": "north"},
        },
    )
    assert d.num_id > 0
    assert d.name == f"{registry_name}/devices/{d.num_id}", d.name
    assert d.config.version == 1
    state["num_id"] = d.num_id


@step("devices.create gateway")
def _():
    g = client.create_device(
        parent=registry_name,
        device={
            "id": "gw-1",
            "gateway_config": {
                "gateway_type": iot_v1.GatewayType.GATEWAY,
                "gateway_auth_method": iot_v1.GatewayAuthMethod.ASSOCIATION_ONLY,
            },
        },
    )
    assert g.gateway_config.gateway_type == iot_v1.GatewayType.GATEWAY


@step("devices.get by id and numId")
def _():
    d = client.get_device(name=device_name)
    assert d.metadata["site"] == "north"
    assert d.credentials[0].public_key.format == iot_v1.PublicKeyFormat.ES256_PEM
    d2 = client.get_device(name=f"{registry_name}/devices/{state['num_id']}")
    assert d2.id == "dev-1"
    d3 = client.get_device(request={"name": device_name, "field_mask": {"paths": ["last_heartbeat_time", "blocked"]}})
    assert d3.id == "dev-1" and not d3.credentials


@step("devices.list")
def _():
    # Devices come in numId order, and numIds are random.
    ids = sorted(d.id for d in client.list_devices(request={"parent": registry_name, "page_size": 1}))
    assert ids == ["dev-1", "gw-1"], ids
    gws = [d.id for d in client.list_devices(request={
        "parent": registry_name,
        "gateway_list_options": {"gateway_type": iot_v1.GatewayType.GATEWAY},
        "field_mask": {"paths": ["gateway_config"]},
    })]
    assert gws == ["gw-1"], gws
    some = [d.id for d in client.list_devices(request={"parent": registry_name, "device_ids": ["dev-1", "nope"]})]
    assert some == ["dev-1"], some


@step("devices.patch")
def _():
    d = client.update_device(
        device={"name": device_name, "blocked": True, "metadata": {"site": "south"}},
        update_mask={"paths": ["blocked", "metadata"]},
    )
    assert d.blocked and d.metadata["site"] == "south"
    d = client.update_device(device={"name": device_name, "blocked": False}, update_mask={"paths": ["blocked"]})
    assert not d.blocked


@step("devices.patch without mask -> BadRequest")
def _():
    try:
        client.update_device(device={"name": device_name, "blocked": True}, update_mask={})
    except exceptions.BadRequest as e:
        assert "updateMask" in e.message, e.message
    else:
        raise AssertionError("expected 400")


@step("modifyCloudToDeviceConfig and configVersions.list")
def _():
    c = client.modify_cloud_to_device_config(name=device_name, binary_data=b"v2")
    assert c.version == 2 and c.binary_data == b"v2"
    c = client.modify_cloud_to_device_config(request={"name": device_name, "binary_data": b"v3", "version_to_update": 2})
    assert c.version == 3
    try:
        client.modify_cloud_to_device_config(request={"name": device_name, "binary_data": b"x", "version_to_update": 2})
    except exceptions.Conflict as e:
        assert status_of(e) == "ABORTED", e
    else:
        raise AssertionError("expected 409 ABORTED")
    versions = client.list_device_config_versions(request={"name": device_name, "num_versions": 2}).device_configs
    assert [v.version for v in versions] == [3, 2], versions
    assert versions[0].binary_data == b"v3"


@step("states.list")
def _():
    states = client.list_device_states(name=f"{parent}/registries/seeded/devices/dev-state").device_states
    assert [s.binary_data for s in states] == [b"state-2", b"state-1"], states
    assert states[0].update_time.timestamp() > states[1].update_time.timestamp()
    assert client.list_device_states(name=device_name).device_states == []


@step("sendCommandToDevice (not connected) -> FAILED_PRECONDITION")
def _():
    try:
        client.send_command_to_device(name=device_name, binary_data=b"reboot")
    except exceptions.BadRequest as e:
        assert status_of(e) == "FAILED_PRECONDITION" and "not connected" in e.message, e
    else:
        raise AssertionError("expected 400 FAILED_PRECONDITION")


@step("bind and unbind")
def _():
    client.bind_device_to_gateway(parent=registry_name, gateway_id="gw-1", device_id="dev-1")
    bound = [d.id for d in client.list_devices(request={
        "parent": registry_name, "gateway_list_options": {"associations_gateway_id": "gw-1"}})]
    assert bound == ["dev-1"], bound
    client.unbind_device_from_gateway(parent=registry_name, gateway_id="gw-1", device_id="dev-1")


@step("getIamPolicy -> MethodNotImplemented")
def _():
    try:
        client.get_iam_policy(resource=registry_name)
    except exceptions.MethodNotImplemented:
        pass
    else:
        raise AssertionError("expected 501")


@step("devices.delete and registries.delete")
def _():
    client.delete_device(name=device_name)
    client.delete_device(name=f"{registry_name}/devices/gw-1")
    try:
        client.get_device(name=device_name)
    except exceptions.NotFound:
        pass
    else:
        raise AssertionError("expected 404")
    client.delete_device_registry(name=registry_name)
    try:
        client.get_device_registry(name=registry_name)
    except exceptions.NotFound:
        pass
    else:
        raise AssertionError("expected 404")


@step("wrong token -> Forbidden (REST) / Unauthenticated (gRPC)")
def _():
    bad = make_client("wrong")
    try:
        bad.get_device_registry(name=f"{parent}/registries/seeded")
    except (exceptions.Unauthenticated if GRPC else exceptions.Forbidden) as e:
        assert "admin token" in e.message, e.message
    else:
        raise AssertionError("expected a refusal")


failed = [n for n, e in results if e is not None]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
