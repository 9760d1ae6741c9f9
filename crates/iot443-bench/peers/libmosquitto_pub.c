/* libmosquitto peer for the e2e bench (crates/iot443-bench/src/bin/e2e/), built by the bench:
 *   cc -O2 -o libmosquitto_pub libmosquitto_pub.c -lmosquitto -lpthread   (Debian libmosquitto-dev)
 *
 * usage: libmosquitto_pub connects|stream HOST PORT CA CERT KEY CLIENT_ID QOS COUNT WINDOW
 *
 * connects  COUNT connections one after the other in this process; prints `connect_ms=<ms> ...`:
 *           mosquitto_new + TLS settings + mosquitto_connect -> CONNACK callback (the first one
 *           includes OpenSSL's initialisation, as in any program).
 * stream    COUNT messages of 100 bytes at QOS with at most WINDOW in flight
 *           (mosquitto_max_inflight_messages_set), the way mosquitto_pub -l -M WINDOW does it: the
 *           network loop in libmosquitto's own thread (mosquitto_loop_start), publishes from the
 *           main thread. Prints `elapsed_ms=<ms>`: first mosquitto_publish -> last publish
 *           callback (PUBACK at QoS 1, written at QoS 0).
 */
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *ALPN = "x-amzn-mqtt-ca";
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int connected = -1; /* CONNACK return code once received */
static long acked = 0;
static long count = 1;
static double t_connack = 0, t_last = 0;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_connect(struct mosquitto *m, void *obj, int rc) {
    (void)m; (void)obj;
    pthread_mutex_lock(&lock);
    t_connack = now_ms();
    connected = rc;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_publish(struct mosquitto *m, void *obj, int mid) {
    (void)m; (void)obj; (void)mid;
    pthread_mutex_lock(&lock);
    if (++acked == count) {
        t_last = now_ms();
        pthread_cond_broadcast(&changed);
    }
    pthread_mutex_unlock(&lock);
}

static struct mosquitto *client(const char *cid, const char *ca, const char *cert, const char *key,
                                int window) {
    struct mosquitto *m = mosquitto_new(cid, true, NULL);
    if (!m) { fprintf(stderr, "mosquitto_new failed\n"); exit(1); }
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    if (mosquitto_tls_set(m, ca, NULL, cert, key, NULL) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mosquitto_tls_set failed\n"); exit(1);
    }
    mosquitto_string_option(m, MOSQ_OPT_TLS_ALPN, ALPN);
    mosquitto_max_inflight_messages_set(m, (unsigned)window);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_publish_callback_set(m, on_publish);
    return m;
}

int main(int argc, char **argv) {
    if (argc != 11) {
        fprintf(stderr, "usage: %s connects|stream HOST PORT CA CERT KEY CLIENT_ID QOS COUNT WINDOW\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *host = argv[2], *ca = argv[4], *cert = argv[5], *key = argv[6], *cid = argv[7];
    int port = atoi(argv[3]), qos = atoi(argv[8]), window = atoi(argv[10]);
    count = atol(argv[9]);
    if (count < 1 || count > 1000000) return 2;
    mosquitto_lib_init();

    if (strcmp(mode, "connects") == 0) {
        printf("connect_ms=");
        for (long i = 0; i < count; i++) {
            connected = -1;
            double t0 = now_ms();
            struct mosquitto *m = client(cid, ca, cert, key, window);
            if (mosquitto_connect(m, host, port, 60) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "connect failed\n"); return 1; }
            double deadline = t0 + 10000;
            while (connected < 0 && now_ms() < deadline) mosquitto_loop(m, 1000, 1);
            if (connected != 0) { fprintf(stderr, "no CONNACK (%d)\n", connected); return 1; }
            printf("%s%.3f", i ? " " : "", t_connack - t0);
            mosquitto_disconnect(m);
            mosquitto_loop(m, 100, 1);
            mosquitto_destroy(m);
        }
        printf("\n");
        mosquitto_lib_cleanup();
        return 0;
    }

    char *payloads = malloc((size_t)count * 101);
    for (long i = 0; i < count; i++) snprintf(payloads + i * 101, 101, "%0100ld", i);
    struct mosquitto *m = client(cid, ca, cert, key, window);
    if (mosquitto_connect(m, host, port, 60) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "connect failed\n"); return 1; }
    mosquitto_loop_start(m);
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 100;
    pthread_mutex_lock(&lock);
    while (connected < 0) if (pthread_cond_timedwait(&changed, &lock, &limit)) break;
    pthread_mutex_unlock(&lock);
    if (connected != 0) { fprintf(stderr, "no CONNACK (%d)\n", connected); return 1; }

    double t0 = now_ms();
    for (long i = 0; i < count; i++) {
        int rc = mosquitto_publish(m, NULL, "bench/s", 100, payloads + i * 101, qos, false);
        if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "publish %ld: %s\n", i, mosquitto_strerror(rc)); return 1; }
    }
    pthread_mutex_lock(&lock);
    while (acked < count) if (pthread_cond_timedwait(&changed, &lock, &limit)) break;
    long done = acked;
    pthread_mutex_unlock(&lock);
    if (done < count) { fprintf(stderr, "%ld of %ld completed\n", done, count); return 1; }
    printf("elapsed_ms=%.3f\n", t_last - t0);
    fflush(stdout);
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    free(payloads);
    return 0;
}
