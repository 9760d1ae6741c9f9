"""awsiotsdk (AWS IoT Device SDK v2 for Python, on awscrt) peer for the e2e bench.

usage: awsiot_pub.py connect|connects|stream HOST PORT CA CERT KEY CLIENT_ID [QOS COUNT WINDOW]

On port 443 the SDK's own builder offers ALPN x-amzn-mqtt-ca; on any other port the bench sets
the same ALPN list on the TLS options (the SDK only does it by itself on 443). With
AWSIOT_WEBSOCKETS_REGION set, the connection is MQTT over WebSocket signed with SigV4 by
`websockets_with_default_aws_signing` (credentials from the default chain: AWS_* variables or
AWS_SHARED_CREDENTIALS_FILE); CERT and KEY are then not used.
connect   process start -> CONNACK -> one QoS 0 publish written -> DISCONNECT -> exit
connects  COUNT connections in this process; prints `connect_ms=<ms> <ms> ...` (-> CONNACK)
stream    COUNT messages of 100 bytes at QOS, at most WINDOW outstanding (QoS 1; QoS 0 not
          limited); prints `elapsed_ms=<ms>`: first publish -> last PUBACK / last written
"""
import os
import sys
import threading
import time

import awscrt.auth
import awscrt.io
import awscrt.mqtt
from awsiot import mqtt_connection_builder

mode, host, port, ca, cert, key, cid = sys.argv[1:8]
port = int(port)
qos = awscrt.mqtt.QoS(int(sys.argv[8])) if len(sys.argv) > 8 else awscrt.mqtt.QoS.AT_MOST_ONCE
count = int(sys.argv[9]) if len(sys.argv) > 9 else 1
window = int(sys.argv[10]) if len(sys.argv) > 10 else 100


def new_connection():
    common = dict(endpoint=host, port=port, ca_filepath=ca, client_id=cid,
                  clean_session=True, keep_alive_secs=60)
    region = os.environ.get("AWSIOT_WEBSOCKETS_REGION")
    if region:
        return mqtt_connection_builder.websockets_with_default_aws_signing(
            region=region, credentials_provider=awscrt.auth.AwsCredentialsProvider.new_default_chain(),
            **common)
    if port == 443:
        return mqtt_connection_builder.mtls_from_path(cert_filepath=cert, pri_key_filepath=key, **common)
    options = awscrt.io.TlsContextOptions.create_client_with_mtls_from_path(cert, key)
    options.alpn_list = ["x-amzn-mqtt-ca"]
    return mqtt_connection_builder._builder(options, **common)


if mode == "connect":
    conn = new_connection()
    conn.connect().result(10)
    conn.publish("bench/t", b"x", awscrt.mqtt.QoS.AT_MOST_ONCE)[0].result(10)
    conn.disconnect().result(10)
elif mode == "connects":
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        conn = new_connection()
        conn.connect().result(10)
        times.append((time.perf_counter() - t0) * 1e3)
        conn.disconnect().result(10)
    print("connect_ms=" + " ".join(f"{t:.3f}" for t in times))
else:
    payloads = [f"{i:0>100}".encode() for i in range(count)]
    conn = new_connection()
    conn.connect().result(10)
    limit = threading.Semaphore(window)
    lock = threading.Lock()
    finished = threading.Event()
    state = {"done": 0, "errors": 0, "t1": 0.0}

    def on_done(future):
        if qos == awscrt.mqtt.QoS.AT_LEAST_ONCE:
            limit.release()
        with lock:
            if future.exception() is not None:
                state["errors"] += 1
            state["done"] += 1
            if state["done"] == count:
                state["t1"] = time.perf_counter()
                finished.set()

    t0 = time.perf_counter()
    for payload in payloads:
        if qos == awscrt.mqtt.QoS.AT_LEAST_ONCE:
            limit.acquire()
        future, _ = conn.publish("bench/s", payload, qos)
        future.add_done_callback(on_done)
    if not finished.wait(120):
        sys.exit(f"awsiot: {state['done']} of {count} completed")
    conn.disconnect().result(10)
    if state["errors"]:
        sys.exit(f"awsiot: {state['errors']} publishes failed")
    print(f"elapsed_ms={(state['t1'] - t0) * 1e3:.3f}")
