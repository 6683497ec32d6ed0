#!/usr/bin/env python3
"""A backend written for IoT Core's Pub/Sub topics, run unchanged against Tether:
Google's own client (google-cloud-pubsub) with PUBSUB_EMULATOR_HOST pointing at
`tether serve --pubsub-addr`. A device publishes with Mosquitto's mosquitto_pub.

Driven by crates/tether-cli/tests/it/pubsub_e2e.rs, in two phases around a kill -9
and a restart of the server:

  before:  subscription on the registry's topic; a device message arrives through
           subscribe() (streaming pull) with IoT Core's attributes; a nack delivers
           it again; a message published by a backend arrives through pull();
           a second device message is received and left unacked; a push
           subscription's endpoint answers 500 and then 204, and gets the message
           twice, then never again; bad input gets the precise status.
  after:   the subscription survived; only the unacked message is delivered again;
           an ack id from before the restart is refused by name.

Configuration comes from the environment (see the Rust driver). Exits 0 when every
check holds; a failed check raises with what was seen.
"""

import base64
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.api_core import exceptions
from google.cloud import pubsub_v1

TOPIC = os.environ["PUBSUB_TEST_TOPIC"]
# Names of this run's own: on a shared JetStream, subscriptions outlive a server.
RUN = TOPIC.rsplit("/", 1)[-1]
SUBSCRIPTION = f"projects/acme/subscriptions/backend-{RUN}"
PUSHED = f"projects/acme/subscriptions/pushed-{RUN}"
# On JetStream acks are kept by message: an ack id from before a restart applies.
JETSTREAM = os.environ.get("PUBSUB_TEST_JETSTREAM") == "1"
STATE = os.environ["PUBSUB_TEST_STATE"]
# Generous: a CI machine running the whole suite on two cores is slow.
WAIT = 60


START = time.time()


def log(*args):
    print(f"[{time.time() - START:6.2f}s]", *args, file=sys.stderr, flush=True)


def device_publish(payload):
    """dev-1 publishes telemetry to subfolder 'alerts' at QoS 1, as firmware would."""
    out = subprocess.run(
        [
            "mosquitto_pub", "-h", "127.0.0.1", "-p", os.environ["MQTT_PORT"],
            "--cafile", os.environ["MQTT_CA"], "-i", os.environ["MQTT_CLIENT_ID"],
            "-u", "unused", "-P", os.environ["MQTT_JWT"], "-q", "1",
            "-t", "/devices/dev-1/events/alerts", "-m", payload,
        ],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, f"mosquitto_pub failed: {out.stderr}"


def expect_error(kind, fragment, call):
    try:
        call()
    except kind as e:
        assert fragment in str(e), f"{kind.__name__} without {fragment!r}: {e}"
        log(f"refused as expected ({kind.__name__}): {e.message}")
        return
    raise AssertionError(f"expected {kind.__name__} containing {fragment!r}")


def pull_until(subscriber, want, seconds=WAIT):
    """Unary pulls until `want` messages came (or time is up)."""
    got = []
    end = time.time() + seconds
    while len(got) < want and time.time() < end:
        r = subscriber.pull(subscription=SUBSCRIPTION, max_messages=10, timeout=30)
        got.extend(r.received_messages)
    return got


def push_checks(subscriber):
    """Push: 500 retries after the backoff, 204 acks; nothing comes after the ack."""
    posts = []

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            posts.append((body, self.headers.get("authorization")))
            self.send_response(500 if len(posts) == 1 else 204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = PUSHED
    subscriber.create_subscription(request={
        "name": name, "topic": TOPIC,
        "push_config": {"push_endpoint": f"http://127.0.0.1:{server.server_port}/push"},
        "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 2}},
    })
    device_publish("pushed-1")
    end = time.time() + WAIT
    while len(posts) < 2 and time.time() < end:
        time.sleep(0.1)
    log("push POSTs:", len(posts))
    # Longer than the largest backoff: an unacked message would come a third time.
    time.sleep(4)
    server.shutdown()
    assert len(posts) == 2, posts
    body, authorization = posts[1]
    assert posts[0][0] == body, "a retry sends the same message"
    assert body["subscription"] == name, body
    message = body["message"]
    assert base64.b64decode(message["data"]) == b"pushed-1", message
    assert message["attributes"]["deviceId"] == "dev-1", message
    assert message["messageId"] == message["message_id"], message
    assert message["publishTime"].endswith("Z"), message
    assert authorization == os.environ["PUSH_AUTHORIZATION"], authorization
    subscriber.delete_subscription(subscription=name)


def before():
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()

    # The registry's notification topic exists without CreateTopic.
    assert publisher.get_topic(topic=TOPIC).name == TOPIC
    names = [t.name for t in publisher.list_topics(project="projects/acme")]
    assert TOPIC in names, names

    created = subscriber.create_subscription(name=SUBSCRIPTION, topic=TOPIC)
    assert created.ack_deadline_seconds == 10, created

    # Bad input: each refusal names what is wrong.
    expect_error(exceptions.AlreadyExists, "already exists",
                 lambda: subscriber.create_subscription(name=SUBSCRIPTION, topic=TOPIC))
    expect_error(exceptions.NotFound, "does not exist",
                 lambda: subscriber.get_subscription(subscription="projects/acme/subscriptions/nope"))
    expect_error(exceptions.NotFound, "does not exist",
                 lambda: subscriber.create_subscription(
                     name="projects/acme/subscriptions/other", topic="projects/acme/topics/nope"))
    expect_error(exceptions.InvalidArgument, "ack_deadline_seconds 700",
                 lambda: subscriber.create_subscription(
                     name="projects/acme/subscriptions/slow", topic=TOPIC, ack_deadline_seconds=700))
    expect_error(exceptions.InvalidArgument, "subscription.filter",
                 lambda: subscriber.create_subscription(
                     request={"name": "projects/acme/subscriptions/f", "topic": TOPIC,
                              "filter": 'attributes.subFolder = "alerts"'}))
    expect_error(exceptions.InvalidArgument, "not issued by this server",
                 lambda: subscriber.acknowledge(subscription=SUBSCRIPTION, ack_ids=["1.1.forged"]))
    expect_error(exceptions.InvalidArgument, "out of range",
                 lambda: subscriber.modify_ack_deadline(
                     subscription=SUBSCRIPTION, ack_ids=["1.1.x"], ack_deadline_seconds=601))
    expect_error(exceptions.MethodNotImplemented, "Tether has no snapshots",
                 lambda: subscriber.seek(request={"subscription": SUBSCRIPTION, "snapshot": "x"}))

    # A device publishes; streaming pull receives it with IoT Core's attributes.
    device_publish("hello-1")
    log("device published hello-1")
    seen = []
    done = threading.Event()

    def callback(message):
        log("received", message.data, "attempt", len(seen) + 1)
        seen.append((message.data, dict(message.attributes), message.message_id))
        if len(seen) == 1:
            message.nack()  # delivered again
        else:
            message.ack()
            done.set()

    future = subscriber.subscribe(SUBSCRIPTION, callback)
    try:
        assert done.wait(WAIT), f"no redelivery after a nack within {WAIT} s: {seen}"
    finally:
        future.cancel()
        future.result(timeout=30)
        log("streaming pull closed")
    first, again = seen[0], seen[1]
    assert first[0] == b"hello-1" and again[0] == b"hello-1", seen
    assert first[2] == again[2], "a redelivery keeps its messageId"
    attributes = first[1]
    for key, value in {
        "deviceId": "dev-1", "deviceRegistryId": "fleet",
        "deviceRegistryLocation": "us-central1", "projectId": "acme", "subFolder": "alerts",
    }.items():
        assert attributes.get(key) == value, (key, attributes)
    assert attributes["deviceNumId"].isdigit(), attributes

    push_checks(subscriber)
    # The pull subscription on the same topic got the pushed message too.
    got = pull_until(subscriber, 1)
    assert [m.message.data for m in got] == [b"pushed-1"], got
    subscriber.acknowledge(subscription=SUBSCRIPTION, ack_ids=[got[0].ack_id])

    # A backend publishes to the same topic; unary pull receives it.
    log("publishing from a backend")
    message_id = publisher.publish(TOPIC, b"from-backend", origin="backend").result(timeout=30)
    log("published", message_id)
    got = pull_until(subscriber, 1)
    log("pulled")
    assert [m.message.data for m in got] == [b"from-backend"], got
    assert got[0].message.message_id == message_id
    assert got[0].message.attributes["origin"] == "backend"
    subscriber.acknowledge(subscription=SUBSCRIPTION, ack_ids=[got[0].ack_id])
    # Acking twice is harmless, as on Pub/Sub.
    subscriber.acknowledge(subscription=SUBSCRIPTION, ack_ids=[got[0].ack_id])

    log("backend message acked")
    # Received, not acked: must come again after the restart.
    device_publish("hello-2")
    got = pull_until(subscriber, 1)
    assert [m.message.data for m in got] == [b"hello-2"], got
    with open(STATE, "w") as f:
        json.dump({"unacked_ack_id": got[0].ack_id}, f)
    # Let the subscriber client's background acks land before the kill.
    time.sleep(2)


def after():
    with open(STATE) as f:
        state = json.load(f)
    subscriber = pubsub_v1.SubscriberClient()
    assert subscriber.get_subscription(subscription=SUBSCRIPTION).topic == TOPIC
    got = pull_until(subscriber, 1)
    # Only what was not acked: hello-1 and from-backend were.
    assert [m.message.data for m in got] == [b"hello-2"], [m.message.data for m in got]
    if JETSTREAM:
        subscriber.acknowledge(subscription=SUBSCRIPTION, ack_ids=[state["unacked_ack_id"]])
    else:
        expect_error(exceptions.InvalidArgument, "not issued by this server",
                     lambda: subscriber.acknowledge(subscription=SUBSCRIPTION,
                                                    ack_ids=[state["unacked_ack_id"]]))
        subscriber.acknowledge(subscription=SUBSCRIPTION, ack_ids=[got[0].ack_id])
    r = subscriber.pull(subscription=SUBSCRIPTION, max_messages=10, return_immediately=True,
                        timeout=30)
    assert not r.received_messages, r
    subscriber.delete_subscription(subscription=SUBSCRIPTION)
    expect_error(exceptions.NotFound, "does not exist",
                 lambda: subscriber.get_subscription(subscription=SUBSCRIPTION))


if __name__ == "__main__":
    {"before": before, "after": after}[sys.argv[1]]()
    print("ok")
