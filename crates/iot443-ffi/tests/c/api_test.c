/* The C API from C: compiled with -Wall -Wextra -Werror against include/iot443.h, linked with
 * libiot443.so and with libiot443.a, run against the emulator (and under valgrind) by
 * crates/iot443-interop/tests/c_api.rs.
 *
 *   usage: api_test CONFIG CLOSED_PORT
 *
 * CONFIG is the emulator's iot443.toml; CLOSED_PORT a port of 127.0.0.1 nothing listens on.
 * Prints one line per check ("ok" or "not ok") and exits 0 when every check passed.
 */
#include "iot443.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures = 0;
static int checks = 0;

#define CHECK(condition, ...)                                                                    \
    do {                                                                                         \
        checks++;                                                                                \
        if (condition) {                                                                         \
            printf("ok %d - ", checks);                                                          \
        } else {                                                                                 \
            failures++;                                                                          \
            printf("not ok %d - (%s:%d: %s) ", checks, __FILE__, __LINE__, #condition);          \
        }                                                                                        \
        printf(__VA_ARGS__);                                                                     \
        printf("\n");                                                                            \
        fflush(stdout);                                                                          \
    } while (0)

/* What the callbacks saw. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static char received[8][64];
static int received_qos[8];
static int received_count = 0;
static int nested_rc = 1;
static int completion_rc = 1;
static int completions = 0;
static int connected_events = 0;
static int disconnected_events = 0;
static unsigned connected_port = 0;
static char connected_alpn[32];

static void on_message(const iot443_message *message, void *user_data) {
    iot443_client *client = user_data;
    pthread_mutex_lock(&lock);
    if (received_count < 8) {
        int length = (int)message->payload_len < 63 ? (int)message->payload_len : 63;
        memcpy(received[received_count], message->payload, (size_t)length);
        received[received_count][length] = '\0';
        received_qos[received_count] = message->qos;
        received_count++;
    }
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    /* A blocking call from a callback refuses instead of deadlocking. */
    if (message->topic_len == strlen("c/nested") && memcmp(message->topic, "c/nested", 8) == 0) {
        int rc = iot443_publish(client, "c/other", "x", 1, 1, 1000);
        pthread_mutex_lock(&lock);
        nested_rc = rc;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
    }
}

static void on_completion(int result, const char *error, void *user_data) {
    (void)user_data;
    pthread_mutex_lock(&lock);
    completion_rc = result;
    completions++;
    if (error) fprintf(stderr, "publish failed: %s\n", error);
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_event(const iot443_event *event, void *user_data) {
    (void)user_data;
    pthread_mutex_lock(&lock);
    if (event->kind == IOT443_EVENT_CONNECTED) {
        connected_events++;
        connected_port = event->port;
        snprintf(connected_alpn, sizeof connected_alpn, "%s", event->alpn ? event->alpn : "none");
    } else if (event->kind == IOT443_EVENT_DISCONNECTED) {
        disconnected_events++;
    }
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* Waits (at most 20 s) until *value reaches at least `target`. */
static int wait_for(const int *value, int target) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    pthread_mutex_lock(&lock);
    while (*value < target) {
        if (pthread_cond_timedwait(&changed, &lock, &deadline) == ETIMEDOUT) break;
    }
    int reached = *value >= target;
    pthread_mutex_unlock(&lock);
    return reached;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int contains(const char *text, const char *part) { return strstr(text, part) != NULL; }

static void bad_arguments(iot443_client *client) {
    static const char not_utf8[] = {'s', 'd', 'k', (char)0xff, '\0'};
    static char big[128 * 1024 + 1];
    iot443_client *none = NULL;

    CHECK(iot443_client_new(NULL, &none) == IOT443_ERR_INVALID_ARGUMENT && none == NULL,
          "iot443_client_new(NULL): %s", iot443_last_error());
    CHECK(iot443_client_new("/nonexistent/iot443.toml", &none) == IOT443_ERR_CONFIG,
          "a missing file: %s", iot443_last_error());
    CHECK(contains(iot443_last_error(), "/nonexistent/iot443.toml"), "the error names the file");
    CHECK(iot443_client_new("x.toml", NULL) == IOT443_ERR_INVALID_ARGUMENT, "out NULL");
    CHECK(iot443_connect(NULL, 100) == IOT443_ERR_INVALID_ARGUMENT, "connect(NULL)");
    CHECK(iot443_publish(NULL, "t", "x", 1, 0, 100) == IOT443_ERR_INVALID_ARGUMENT, "publish(NULL)");
    CHECK(iot443_publish(client, NULL, "x", 1, 0, 100) == IOT443_ERR_INVALID_ARGUMENT,
          "a NULL topic: %s", iot443_last_error());
    CHECK(iot443_publish(client, not_utf8, "x", 1, 0, 100) == IOT443_ERR_INVALID_ARGUMENT,
          "a topic that is not UTF-8: %s", iot443_last_error());
    CHECK(iot443_subscribe(client, not_utf8, 0, on_message, client, 100) == IOT443_ERR_INVALID_ARGUMENT,
          "a filter that is not UTF-8: %s", iot443_last_error());
    CHECK(iot443_publish(client, "c/qos", "x", 1, 2, 100) == IOT443_ERR_INVALID_ARGUMENT,
          "QoS 2: %s", iot443_last_error());
    CHECK(iot443_subscribe(client, "c/qos", 2, on_message, client, 100) == IOT443_ERR_INVALID_ARGUMENT,
          "subscribe at QoS 2: %s", iot443_last_error());
    CHECK(iot443_publish(client, "c/+/x", "x", 1, 1, 100) == IOT443_ERR_INVALID_ARGUMENT,
          "a wildcard in a publish topic: %s", iot443_last_error());
    CHECK(iot443_publish_async(client, "c/#", "x", 1, 1, on_completion, NULL) == IOT443_ERR_INVALID_ARGUMENT,
          "a wildcard, asynchronously: %s", iot443_last_error());
    CHECK(iot443_publish(client, "c/big", big, sizeof big, 1, 100) == IOT443_ERR_INVALID_ARGUMENT,
          "an oversize payload: %s", iot443_last_error());
    CHECK(iot443_publish(client, "c/null", NULL, 3, 1, 100) == IOT443_ERR_INVALID_ARGUMENT,
          "a NULL payload of 3 bytes: %s", iot443_last_error());
    CHECK(iot443_subscribe(client, "c/cb", 0, NULL, NULL, 100) == IOT443_ERR_INVALID_ARGUMENT,
          "a NULL callback: %s", iot443_last_error());
    iot443_client_free(NULL);
    iot443_config_free(NULL);
    CHECK(1, "iot443_client_free(NULL) and iot443_config_free(NULL) do nothing");
}

static void closed_port(const char *port_text) {
    iot443_config *config = NULL;
    iot443_client *client = NULL;
    CHECK(iot443_config_new("127.0.0.1", "c-closed-port", &config) == IOT443_OK, "iot443_config_new");
    CHECK(iot443_config_set_port(config, (uint16_t)atoi(port_text)) == IOT443_OK, "set_port");
    CHECK(iot443_config_set_certificate(config, "device.crt") == IOT443_OK, "set_certificate");
    CHECK(iot443_config_set_private_key(config, "device.key") == IOT443_OK, "set_private_key");
    CHECK(iot443_config_set_keep_alive(config, 5) == IOT443_ERR_INVALID_ARGUMENT,
          "a keep-alive below IoT Core's 30 s: %s", iot443_last_error());
    CHECK(iot443_client_new_with_config(config, &client) == IOT443_OK, "iot443_client_new_with_config: %s",
          iot443_last_error());
    iot443_config_free(config);
    double started = now_ms();
    int rc = iot443_connect(client, 3000);
    double elapsed = now_ms() - started;
    /* The files are checked when connecting; nothing listens on the port either way. */
    CHECK(rc == IOT443_ERR_CONNECTION || rc == IOT443_ERR_CONFIG || rc == IOT443_ERR_TIMEOUT,
          "connecting to a closed port: %s (%d): %s", iot443_strerror(rc), rc, iot443_last_error());
    /* Returns, and not long after its timeout (the slack is for valgrind). */
    CHECK(elapsed < 3000 + 10000, "it returned within its timeout (%.0f ms of 3000)", elapsed);
    iot443_client_free(client);
}

static void closed_port_with_credentials(const char *config_path, const char *port_text) {
    char variable[64];
    snprintf(variable, sizeof variable, "%s", port_text);
    setenv("IOT443_PORT", variable, 1);
    iot443_client *client = NULL;
    CHECK(iot443_client_new(config_path, &client) == IOT443_OK, "IOT443_PORT applies: %s", iot443_last_error());
    unsetenv("IOT443_PORT");
    double started = now_ms();
    int rc = iot443_connect(client, 3000);
    double elapsed = now_ms() - started;
    CHECK(rc == IOT443_ERR_CONNECTION, "a closed port is a connection error: %s", iot443_last_error());
    CHECK(contains(iot443_last_error(), port_text), "the error names host:port");
    CHECK(elapsed < 3000 + 10000, "within its timeout (%.0f ms of 3000)", elapsed);
    iot443_client_free(client);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s CONFIG CLOSED_PORT\n", argv[0]);
        return 2;
    }
    const char *config_path = argv[1];
    CHECK(strlen(iot443_version()) > 0, "libiot443 %s", iot443_version());
    CHECK(strcmp(iot443_strerror(IOT443_ERR_TIMEOUT), "timed out") == 0, "iot443_strerror");
    CHECK(iot443_log_to_stderr("warn") == IOT443_OK, "iot443_log_to_stderr: %s", iot443_last_error());
    CHECK(iot443_log_to_stderr("warn") == IOT443_ERR_INVALID_ARGUMENT, "only once: %s", iot443_last_error());

    iot443_client *client = NULL;
    CHECK(iot443_client_new(config_path, &client) == IOT443_OK && client != NULL, "iot443_client_new: %s",
          iot443_last_error());
    if (client == NULL) return 1;
    CHECK(iot443_publish(client, "c/early", "x", 1, 1, 100) == IOT443_ERR_CLOSED,
          "publishing before connecting: %s", iot443_last_error());
    CHECK(iot443_set_event_callback(client, on_event, NULL) == IOT443_OK, "iot443_set_event_callback");
    CHECK(iot443_connect(client, 20000) == IOT443_OK, "iot443_connect: %s", iot443_last_error());
    CHECK(wait_for(&connected_events, 1), "the connected event");
    pthread_mutex_lock(&lock);
    char alpn[32];
    snprintf(alpn, sizeof alpn, "%s", connected_alpn);
    unsigned port = connected_port;
    pthread_mutex_unlock(&lock);
    CHECK(strcmp(alpn, "x-amzn-mqtt-ca") == 0 && port != 0, "connected on port %u alpn %s", port, alpn);

    bad_arguments(client);

    CHECK(iot443_subscribe(client, "c/q0", 0, on_message, client, 20000) == IOT443_OK, "subscribe QoS 0: %s",
          iot443_last_error());
    CHECK(iot443_subscribe(client, "c/q1", 1, on_message, client, 20000) == IOT443_OK, "subscribe QoS 1: %s",
          iot443_last_error());
    CHECK(iot443_publish(client, "c/q0", "zero", 4, 0, 20000) == IOT443_OK, "publish QoS 0: %s",
          iot443_last_error());
    CHECK(wait_for(&received_count, 1), "the QoS 0 message came back");
    CHECK(iot443_publish(client, "c/q1", "one", 3, 1, 20000) == IOT443_OK, "publish QoS 1 (PUBACK): %s",
          iot443_last_error());
    CHECK(wait_for(&received_count, 2), "the QoS 1 message came back");
    pthread_mutex_lock(&lock);
    CHECK(strcmp(received[0], "zero") == 0 && received_qos[0] == 0, "QoS 0 payload %s qos %d", received[0],
          received_qos[0]);
    CHECK(strcmp(received[1], "one") == 0 && received_qos[1] == 1, "QoS 1 payload %s qos %d", received[1],
          received_qos[1]);
    pthread_mutex_unlock(&lock);

    CHECK(iot443_publish_async(client, "c/q1", "async", 5, 1, on_completion, NULL) == IOT443_OK,
          "iot443_publish_async: %s", iot443_last_error());
    int completed = wait_for(&completions, 1);
    pthread_mutex_lock(&lock);
    int completed_rc = completion_rc;
    pthread_mutex_unlock(&lock);
    CHECK(completed && completed_rc == IOT443_OK, "its completion callback: %d", completed_rc);
    CHECK(wait_for(&received_count, 3), "the asynchronous message came back");

    CHECK(iot443_subscribe(client, "c/nested", 0, on_message, client, 20000) == IOT443_OK, "subscribe c/nested");
    CHECK(iot443_publish(client, "c/nested", "n", 1, 1, 20000) == IOT443_OK, "publish c/nested");
    CHECK(wait_for(&received_count, 4), "c/nested came back");
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    pthread_mutex_lock(&lock);
    while (nested_rc == 1) {
        if (pthread_cond_timedwait(&changed, &lock, &deadline) == ETIMEDOUT) break;
    }
    int nested = nested_rc;
    pthread_mutex_unlock(&lock);
    CHECK(nested == IOT443_ERR_IN_CALLBACK, "a blocking call from a callback: %s (%d)", iot443_strerror(nested),
          nested);

    CHECK(iot443_unsubscribe(client, "c/q0", 20000) == IOT443_OK, "unsubscribe: %s", iot443_last_error());
    CHECK(iot443_disconnect(client, 20000) == IOT443_OK, "disconnect: %s", iot443_last_error());
    pthread_mutex_lock(&lock);
    int disconnected = disconnected_events;
    pthread_mutex_unlock(&lock);
    CHECK(disconnected == 1, "the disconnected event ran before iot443_disconnect returned (%d)", disconnected);
    CHECK(iot443_publish(client, "c/q1", "late", 4, 1, 1000) == IOT443_ERR_CLOSED, "after disconnect: %s",
          iot443_last_error());
    iot443_client_free(client);

    closed_port(argv[2]);
    closed_port_with_credentials(config_path, argv[2]);

    printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
