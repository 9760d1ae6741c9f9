/* The e2e bench's process runner (crates/iot443-bench/src/bin/e2e/), built by the bench:
 *   cc -O2 -o measure measure.c
 *
 * usage: measure DELAY_MS FEED_FILE|- TIMEOUT_S PROGRAM [ARGS...]
 *
 * Forks and executes PROGRAM (stdout and stderr inherited; stdin /dev/null, or a pipe that gets
 * FEED_FILE's bytes DELAY_MS after the start), waits for it with wait4(2) and appends to stderr:
 *   E2E-MEASURE wall_us=... from_stdin_us=... cpu_us=... maxrss_kib=... status=...
 * wall: fork -> reaped; from_stdin: first byte written to its stdin -> reaped (-1 without feed);
 * cpu: the child's user+sys; maxrss: the child's peak RSS. Killed after TIMEOUT_S seconds.
 *
 * Why a separate small process: Linux carries the parent's peak RSS over into a child's
 * ru_maxrss across fork/vfork + exec (exec_mmap records the old mm's high-water mark), so a
 * child started directly by the bench (several MiB of its own) could never report less than
 * the bench's peak. This runner stays near 1 MiB, the floor of every figure it reports.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t child = -1;

static void on_alarm(int sig) {
    (void)sig;
    if (child > 0) kill(child, SIGKILL);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: measure DELAY_MS FEED_FILE|- TIMEOUT_S PROGRAM [ARGS...]\n");
        return 2;
    }
    long delay_ms = atol(argv[1]);
    const char *feed = argv[2];
    unsigned timeout_s = (unsigned)atol(argv[3]);
    int feeding = strcmp(feed, "-") != 0;
    int pipefd[2] = {-1, -1};
    int input = -1;
    if (feeding) {
        input = open(feed, O_RDONLY | O_CLOEXEC);
        if (input < 0 || pipe2(pipefd, O_CLOEXEC) != 0) { perror("measure: feed"); return 2; }
    }
    double start = now_us();
    child = fork();
    if (child < 0) { perror("measure: fork"); return 2; }
    if (child == 0) {
        int in = feeding ? pipefd[0] : open("/dev/null", O_RDONLY);
        dup2(in, 0);
        execvp(argv[4], argv + 4);
        fprintf(stderr, "measure: cannot execute %s: %s\n", argv[4], strerror(errno));
        _exit(127);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(timeout_s);

    double first = -1;
    if (feeding) {
        close(pipefd[0]);
        struct timespec delay = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        while (nanosleep(&delay, &delay) != 0 && errno == EINTR) {}
        static char buf[65536];
        first = now_us();
        ssize_t n;
        while ((n = read(input, buf, sizeof buf)) > 0) {
            ssize_t off = 0;
            while (off < n) {
                ssize_t w = write(pipefd[1], buf + off, (size_t)(n - off));
                if (w < 0) { if (errno == EINTR) continue; goto fed; }
                off += w;
            }
        }
    fed:
        close(pipefd[1]);
        close(input);
    }
    int status = 0;
    struct rusage ru;
    while (wait4(child, &status, 0, &ru) < 0) {
        if (errno != EINTR) { perror("measure: wait4"); return 2; }
    }
    double end = now_us();
    long cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    fprintf(stderr, "\nE2E-MEASURE wall_us=%.1f from_stdin_us=%.1f cpu_us=%ld maxrss_kib=%ld status=%d\n",
            end - start, first < 0 ? -1.0 : end - first, cpu, ru.ru_maxrss, status);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
