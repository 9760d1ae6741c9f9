"""paho-mqtt peer for the e2e bench (crates/iot443-bench/src/bin/e2e/).

usage: paho_pub.py connect|connects|stream HOST PORT CA CERT KEY CLIENT_ID [QOS COUNT WINDOW]

connect   process start -> CONNACK -> one QoS 0 publish written -> DISCONNECT -> exit
connects  COUNT connections in this process; prints `connect_ms=<ms> <ms> ...` (-> CONNACK)
stream    COUNT messages of 100 bytes at QOS, WINDOW in flight (QoS 1); prints
          `elapsed_ms=<ms>`: first publish -> last PUBACK (QoS 1) / last publish written (QoS 0)
"""
import ssl
import sys
import time

import paho.mqtt.client as mqtt

mode, host, port, ca, cert, key, cid = sys.argv[1:8]
port = int(port)
qos = int(sys.argv[8]) if len(sys.argv) > 8 else 0
count = int(sys.argv[9]) if len(sys.argv) > 9 else 1
window = int(sys.argv[10]) if len(sys.argv) > 10 else 100


def new_client():
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["x-amzn-mqtt-ca"])
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
    c.tls_set_context(ctx)
    c.max_inflight_messages_set(window)
    c.max_queued_messages_set(0)
    return c


if mode == "connect":
    c = new_client()
    c.on_connect = lambda c, u, f, rc, p: c.publish("bench/t", "x", 0)
    c.on_publish = lambda c, u, mid, rc, p: c.disconnect()
    c.connect(host, port, 60)
    c.loop_forever()
elif mode == "connects":
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        c = new_client()
        done = []
        c.on_connect = lambda c, u, f, rc, p: done.append(time.perf_counter())
        c.connect(host, port, 60)
        while not done:
            c.loop(1.0)
        times.append((done[0] - t0) * 1e3)
        c.disconnect()
        c.loop(0.1)
    print("connect_ms=" + " ".join(f"{t:.3f}" for t in times))
else:
    # The network loop in paho's own thread (loop_start), publishes from the main thread, the
    # way libmosquitto's peer and mosquitto_pub -l do it.
    import threading

    payloads = [f"{i:0>100}".encode() for i in range(count)]
    connected = threading.Event()
    finished = threading.Event()
    state = {"done": 0, "t1": 0.0}
    lock = threading.Lock()
    c = new_client()
    c.on_connect = lambda c, u, f, rc, p: connected.set()

    def on_publish(c, u, mid, rc, p):
        with lock:
            state["done"] += 1
            if state["done"] == count:
                state["t1"] = time.perf_counter()
                finished.set()

    c.on_publish = on_publish
    c.connect(host, port, 60)
    c.loop_start()
    if not connected.wait(10):
        sys.exit("paho: no CONNACK")
    t0 = time.perf_counter()
    for payload in payloads:
        c.publish("bench/s", payload, qos)
    if not finished.wait(100):
        sys.exit(f"paho: {state['done']} of {count} completed")
    c.disconnect()
    c.loop_stop()
    print(f"elapsed_ms={(state['t1'] - t0) * 1e3:.3f}")
