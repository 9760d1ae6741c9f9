/* The Embedded C SDK's subscribe_publish_sample, on libiot443.
 *
 * Subscribes to sdkTest/sub, publishes "hello from SDK QOS0 : n" and "hello from SDK QOS1 : n"
 * to it in turn, and prints every message that comes back. With -x COUNT it publishes COUNT
 * messages, waits until they have all come back (at most -w seconds) and exits 0, or 1 when some
 * did not come back.
 *
 *   make && ./subscribe_publish_sample -c iot443.toml -x 10
 *
 * The configuration is an iot443.toml (the `iot443 emulator` command writes one) or the C SDK's
 * own aws_iot_config.h (certificates in its certs/ folder); the IOT443_* variables override it.
 * Where the C SDK sample stops after a few failed reconnects, libiot443 reconnects by itself
 * (jittered backoff), queues what is published while offline, and resubscribes.
 */
#include "iot443.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOPIC "sdkTest/sub"
#define TIMEOUT_MS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static long received = 0;

/* Runs on libiot443's callback thread; the message is valid during the call only. */
static void on_message(const iot443_message *message, void *user_data) {
    (void)user_data;
    printf("Subscribe callback\n%.*s\t%.*s\n", (int)message->topic_len, message->topic,
           (int)message->payload_len, (const char *)message->payload);
    fflush(stdout);
    pthread_mutex_lock(&lock);
    received++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_event(const iot443_event *event, void *user_data) {
    (void)user_data;
    switch (event->kind) {
    case IOT443_EVENT_CONNECTED:
        fprintf(stderr, "connected to %s:%u via %s alpn=%s\n", event->host, (unsigned)event->port,
                event->tls_version, event->alpn ? event->alpn : "none");
        break;
    case IOT443_EVENT_RECONNECTING:
        fprintf(stderr, "reconnecting in %llu ms (attempt %u): %s\n",
                (unsigned long long)event->delay_ms, (unsigned)event->attempt, event->reason);
        break;
    case IOT443_EVENT_DISCONNECTED:
        fprintf(stderr, "disconnected: %s\n", event->reason);
        break;
    default:
        break;
    }
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s failed: %s (%d): %s\n", what, iot443_strerror(rc), rc, iot443_last_error());
    return 2;
}

static void usage(const char *program) {
    fprintf(stderr,
            "usage: %s [-c CONFIG] [-x COUNT] [-i INTERVAL_MS] [-w WAIT_S]\n"
            "  -c CONFIG       iot443.toml or aws_iot_config.h (default iot443.toml)\n"
            "  -x COUNT        publish COUNT messages, then wait for them and exit (default: forever)\n"
            "  -i INTERVAL_MS  pause between publishes (default 1000, as the C SDK sample)\n"
            "  -w WAIT_S       with -x: how long to wait for the messages to come back (default 10)\n",
            program);
}

int main(int argc, char **argv) {
    const char *config_path = "iot443.toml";
    long count = -1, interval_ms = 1000, wait_s = 10;
    int option;
    while ((option = getopt(argc, argv, "c:x:i:w:h")) != -1) {
        switch (option) {
        case 'c': config_path = optarg; break;
        case 'x': count = atol(optarg); break;
        case 'i': interval_ms = atol(optarg); break;
        case 'w': wait_s = atol(optarg); break;
        default: usage(argv[0]); return option == 'h' ? 0 : 2;
        }
    }
    if (count == 0 || interval_ms < 0 || wait_s < 0) {
        usage(argv[0]);
        return 2;
    }

    /* The library's warnings (and more with RUST_LOG=info or debug) on stderr. */
    iot443_log_to_stderr(NULL);
    fprintf(stderr, "libiot443 %s\n", iot443_version());
    iot443_client *client = NULL;
    int rc = iot443_client_new(config_path, &client);
    if (rc != IOT443_OK) return fail("reading the configuration", rc);
    iot443_set_event_callback(client, on_event, NULL);
    rc = iot443_connect(client, TIMEOUT_MS);
    if (rc != IOT443_OK) {
        fail("connecting", rc);
        iot443_client_free(client);
        return 3;
    }
    rc = iot443_subscribe(client, TOPIC, 0, on_message, NULL, TIMEOUT_MS);
    if (rc != IOT443_OK) {
        fail("subscribing to " TOPIC, rc);
        iot443_client_free(client);
        return 3;
    }

    char payload[64];
    for (long sent = 0; count < 0 || sent < count; sent++) {
        int qos = (int)(sent % 2);
        int length = snprintf(payload, sizeof payload, "hello from SDK QOS%d : %ld", qos, sent);
        rc = iot443_publish(client, TOPIC, payload, (size_t)length, qos, TIMEOUT_MS);
        if (rc == IOT443_ERR_TIMEOUT) {
            fprintf(stderr, "QOS1 publish ack not received: %s\n", iot443_last_error());
        } else if (rc != IOT443_OK) {
            fail("publishing", rc);
        }
        if (interval_ms > 0 && (count < 0 || sent + 1 < count)) {
            struct timespec pause = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
            while (nanosleep(&pause, &pause) == -1 && errno == EINTR) {
            }
        }
    }

    /* Every message published comes back on the subscription: wait for them all. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_s;
    pthread_mutex_lock(&lock);
    while (received < count) {
        if (pthread_cond_timedwait(&changed, &lock, &deadline) == ETIMEDOUT) break;
    }
    long got = received;
    pthread_mutex_unlock(&lock);
    fprintf(stderr, "%ld of %ld messages came back\n", got, count);

    rc = iot443_disconnect(client, TIMEOUT_MS);
    if (rc != IOT443_OK) fail("disconnecting", rc);
    iot443_client_free(client);
    return got >= count ? 0 : 1;
}
