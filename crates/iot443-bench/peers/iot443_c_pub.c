/* The iot443 C API peer for the e2e bench (crates/iot443-bench/src/bin/e2e/), built by the bench
 * against the release libiot443.so (cargo build --release -p iot443-ffi):
 *   cc -O2 -I crates/iot443-ffi/include -o iot443_c_pub iot443_c_pub.c target/release/libiot443.so
 *
 * usage: iot443_c_pub connects|stream HOST PORT CA CERT KEY CLIENT_ID QOS COUNT WINDOW
 *
 * The same interface and timing as libmosquitto_pub.c beside it:
 * connects  COUNT connections one after the other in this process; prints `connect_ms=<ms> ...`:
 *           iot443_client_new_with_config + iot443_connect (which returns on CONNACK).
 * stream    COUNT messages of 100 bytes at QOS, published from the main thread with
 *           iot443_publish_async (the library keeps at most 100 in flight, IoT Core's limit;
 *           WINDOW must be 100); the completion callbacks run on the library's callback thread.
 *           Prints `elapsed_ms=<ms>`: first publish -> last completion (PUBACK at QoS 1,
 *           written at QoS 0).
 */
#include "iot443.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static long completed = 0, failed = 0, count = 1;
static double t_last = 0;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_published(int result, const char *error, void *user_data) {
    (void)user_data;
    pthread_mutex_lock(&lock);
    if (result != IOT443_OK) {
        if (failed++ == 0) fprintf(stderr, "publish failed: %s\n", error);
    }
    if (++completed == count) {
        t_last = now_ms();
        pthread_cond_broadcast(&changed);
    }
    pthread_mutex_unlock(&lock);
}

static iot443_client *client(const char *host, int port, const char *ca, const char *cert, const char *key,
                             const char *cid) {
    iot443_config *config = NULL;
    iot443_client *client = NULL;
    if (iot443_config_new(host, cid, &config) != IOT443_OK || iot443_config_set_port(config, (uint16_t)port) ||
        iot443_config_set_root_ca(config, ca) || iot443_config_set_certificate(config, cert) ||
        iot443_config_set_private_key(config, key) || iot443_config_set_alpn(config, "x-amzn-mqtt-ca") ||
        iot443_client_new_with_config(config, &client) != IOT443_OK) {
        fprintf(stderr, "configuration: %s\n", iot443_last_error());
        exit(1);
    }
    iot443_config_free(config);
    return client;
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
    if (window != 100) {
        fprintf(stderr, "WINDOW must be 100: libiot443 keeps at most 100 QoS 1 messages in flight\n");
        return 2;
    }

    if (strcmp(mode, "connects") == 0) {
        printf("connect_ms=");
        for (long i = 0; i < count; i++) {
            double t0 = now_ms();
            iot443_client *c = client(host, port, ca, cert, key, cid);
            if (iot443_connect(c, 10000) != IOT443_OK) {
                fprintf(stderr, "connect: %s\n", iot443_last_error());
                return 1;
            }
            printf("%s%.3f", i ? " " : "", now_ms() - t0);
            iot443_disconnect(c, 10000);
            iot443_client_free(c);
        }
        printf("\n");
        return 0;
    }

    char *payloads = malloc((size_t)count * 101);
    if (!payloads) return 1;
    for (long i = 0; i < count; i++) snprintf(payloads + i * 101, 101, "%0100ld", i);
    iot443_client *c = client(host, port, ca, cert, key, cid);
    if (iot443_connect(c, 10000) != IOT443_OK) {
        fprintf(stderr, "connect: %s\n", iot443_last_error());
        return 1;
    }
    double t0 = now_ms();
    for (long i = 0; i < count; i++) {
        int rc = iot443_publish_async(c, "bench/s", payloads + i * 101, 100, qos, on_published, NULL);
        if (rc != IOT443_OK) {
            fprintf(stderr, "publish %ld: %s\n", i, iot443_last_error());
            return 1;
        }
    }
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 100;
    pthread_mutex_lock(&lock);
    while (completed < count)
        if (pthread_cond_timedwait(&changed, &lock, &limit) == ETIMEDOUT) break;
    long done = completed, bad = failed;
    pthread_mutex_unlock(&lock);
    if (done < count || bad > 0) {
        fprintf(stderr, "%ld of %ld completed, %ld failed\n", done, count, bad);
        return 1;
    }
    printf("elapsed_ms=%.3f\n", t_last - t0);
    fflush(stdout);
    iot443_disconnect(c, 10000);
    iot443_client_free(c);
    free(payloads);
    return 0;
}
