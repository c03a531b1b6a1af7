/*
 * C reference for the fdpass benchmark: sendmsg/recvmsg with one SCM_RIGHTS
 * message, MSG_NOSIGNAL on send and MSG_CMSG_CLOEXEC on receive, a receive
 * control buffer with room for the kernel's maximum of fds (as fdpass has).
 * The physical limit the other rows are measured against.
 *
 * Usage: fdbench <workload> <variant> <seconds> <reps> [warm-up seconds]
 *   w1 stream|seqpacket|dgram   one process: send 1 byte + 1 fd, receive, close
 *   w2 <nfds>                   one process: 1 byte + nfds fds per message
 *   w3 -                        ping-pong with a forked child: fd one way, 1 byte back
 *   w4 -                        stream 1 fd per message to a forked child
 *   w5 <KiB>                    a byte stream to a forked child with 1 fd every <KiB> KiB,
 *                               read with recvmsg into a 256 KiB ring (bytes/s)
 * Prints one JSON line (see bench/README.md).
 *
 * With FDBENCH_IDLE_THREAD=1 the process first starts one thread that only
 * sleeps. A Node.js process always has threads (V8's platform workers), and
 * Linux's fd lookups, installs and closes cost more in a process whose fd
 * table is shared by several threads: this row shows that cost.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 253
#define RECV_SLOTS 256

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what) {
  printf("{\"error\":\"%s: %s\"}\n", what, strerror(errno));
  exit(1);
}

static int open_fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n - 3; /* ".", ".." and the directory's own fd */
}

static int send_fds(int sock, const char *data, size_t len, const int *fds, int nfds) {
  union {
    char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {(void *)data, len};
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (nfds > 0) {
    memset(u.buf, 0, CMSG_SPACE(nfds * sizeof(int)));
    m.msg_control = u.buf;
    m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(h), fds, nfds * sizeof(int));
  }
  ssize_t n;
  do n = sendmsg(sock, &m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return (int)n;
}

/* Receives one message; returns its byte count and writes its fds. */
static int recv_fds(int sock, char *data, size_t len, int *fds, int *nfds) {
  union {
    char buf[CMSG_SPACE(RECV_SLOTS * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {data, len};
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.buf;
  m.msg_controllen = sizeof u.buf;
  ssize_t n;
  do n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  *nfds = 0;
  if (n < 0) return -1;
  for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
    if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
      int k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      memcpy(fds + *nfds, CMSG_DATA(h), k * sizeof(int));
      *nfds += k;
    }
  }
  if (m.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) return -2;
  return (int)n;
}

/* Whether `fd` is the same open file as `ref` (the fd that was sent). */
static int same_file(int fd, const struct stat *ref) {
  struct stat st;
  return fstat(fd, &st) == 0 && st.st_ino == ref->st_ino && st.st_dev == ref->st_dev;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* --- one process: W1 and W2 ------------------------------------------------ */

static long long bad; /* fds that did not arrive, or were not valid */

static void one_process_batch(int a, int b, int file, const struct stat *ref, int nfds, long n) {
  int sent[MAX_FDS], got[RECV_SLOTS], k;
  char c = 'x', r[16];
  for (int i = 0; i < nfds; i++) sent[i] = file;
  for (long i = 0; i < n; i++) {
    if (send_fds(a, &c, 1, sent, nfds) != 1) die("sendmsg");
    if (recv_fds(b, r, sizeof r, got, &k) != 1) die("recvmsg");
    if (k != nfds) bad += nfds - k;
    if (i == 0 && k > 0 && !same_file(got[0], ref)) bad++;
    for (int j = 0; j < k; j++)
      if (close(got[j]) != 0) bad++; /* EBADF: the fd was not valid */
  }
}

static int sock_type(const char *name) {
  if (!strcmp(name, "stream")) return SOCK_STREAM;
  if (!strcmp(name, "seqpacket")) return SOCK_SEQPACKET;
  if (!strcmp(name, "dgram")) return SOCK_DGRAM;
  return -1;
}

/* Batches of n operations; n is calibrated by the warm-up to last about `seconds`. */
typedef void (*batch_fn)(long n, void *ctx);

static double timed(batch_fn fn, void *ctx, long *n_io) {
  long n = *n_io;
  double t0 = now();
  fn(n, ctx);
  double dt = now() - t0;
  return n / dt;
}

/* Warm-up and calibration, as in bench/runners/common.js: batches run until
 * the warm-up time has passed, n growing while a batch takes under 20 ms,
 * then one more is measured; returns the n for a batch of about `seconds`.
 * FDPASS_BENCH_N fixes n and skips both. */
static double warmup = 0.3;

static double measure(batch_fn fn, void *ctx, long n) {
  double t0 = now();
  fn(n, ctx);
  return now() - t0;
}

static long calibrate(batch_fn fn, void *ctx, double seconds) {
  const char *fixed = getenv("FDPASS_BENCH_N"); /* counting syscalls, instructions */
  if (fixed) return atol(fixed);
  double start = now();
  long n = 20;
  for (;;) {
    double took = measure(fn, ctx, n);
    if (took <= 0.02 && n < 50000000)
      n *= 4;
    else if (now() - start >= warmup)
      break;
  }
  /* Measured after the warm-up, not by the first (cold) batch. */
  long want = (long)(n * seconds / measure(fn, ctx, n));
  return want < 10 ? 10 : want;
}

struct w12 {
  int a, b, file, nfds;
  struct stat ref;
};

static void w12_batch(long n, void *p) {
  struct w12 *c = p;
  one_process_batch(c->a, c->b, c->file, &c->ref, c->nfds, n);
}

static void print_reps(const char *unit, double *ops, int reps, long n, long long fds_expected, double *p50,
                       double *p99) {
  printf("{\"unit\":\"%s\",\"ops\":[", unit);
  for (int i = 0; i < reps; i++) printf("%s%.1f", i ? "," : "", ops[i]);
  printf("],\"perRep\":%ld,\"fdsExpected\":%lld,\"fdsBad\":%lld", n, fds_expected, bad);
  if (p50) {
    printf(",\"p50us\":[");
    for (int i = 0; i < reps; i++) printf("%s%.2f", i ? "," : "", p50[i]);
    printf("],\"p99us\":[");
    for (int i = 0; i < reps; i++) printf("%s%.2f", i ? "," : "", p99[i]);
    printf("]");
  }
}

/* --- two processes: W3 and W4 ---------------------------------------------- */

/* The child: receives messages on `sock`. 'f' + fds: check and close them, then
 * in ping-pong mode answer 'y' (or 'n' if an fd was missing or invalid).
 * 'E': answer the number of good fds since the last 'E' (8 bytes). 'Q': exit. */
static int child_main(int sock, const struct stat *ref, int pingpong) {
  int base = open_fd_count();
  int got[RECV_SLOTS], k;
  char r[16];
  long long good = 0;
  for (;;) {
    int n = recv_fds(sock, r, 1, got, &k);
    if (n <= 0) return 2;
    if (r[0] == 'Q') break;
    if (r[0] == 'E') {
      if (send(sock, &good, sizeof good, MSG_NOSIGNAL) != sizeof good) return 2;
      good = 0;
      continue;
    }
    int ok = k == 1 && (good > 0 || same_file(got[0], ref));
    for (int j = 0; j < k; j++)
      if (close(got[j]) != 0) ok = 0;
    good += ok;
    if (pingpong) {
      char y = ok ? 'y' : 'n';
      if (send(sock, &y, 1, MSG_NOSIGNAL) != 1) return 2;
    }
  }
  return open_fd_count() == base ? 0 : 3;
}

struct two {
  int sock, file;
  double *lat; /* per round trip, W3 */
  long long good;
};

static void w3_batch(long n, void *p) {
  struct two *c = p;
  char x = 'f', y;
  for (long i = 0; i < n; i++) {
    double t0 = c->lat ? now() : 0;
    if (send_fds(c->sock, &x, 1, &c->file, 1) != 1) die("sendmsg");
    if (read(c->sock, &y, 1) != 1) die("read");
    if (c->lat) c->lat[i] = now() - t0;
    if (y != 'y') bad++;
  }
}

static void end_rep(struct two *c, long n) {
  char e = 'E';
  long long good;
  if (send_fds(c->sock, &e, 1, NULL, 0) != 1) die("sendmsg");
  if (recv(c->sock, &good, sizeof good, MSG_WAITALL) != sizeof good) die("recv");
  bad += n - good;
}

static void w4_batch(long n, void *p) {
  struct two *c = p;
  char x = 'f';
  for (long i = 0; i < n; i++)
    if (send_fds(c->sock, &x, 1, &c->file, 1) != 1) die("sendmsg");
  end_rep(c, n); /* the time includes the child's receipt of the last fd */
}

/* --- W5: a byte stream with an fd every chunk ------------------------------- */

#define RING (256 * 1024)

/* The child of W5: per batch an 8-byte count n, then n chunks of `chunk`
 * bytes, an fd with the first byte of each; it reads them with recvmsg into
 * a ring (never past the batch, whose end the parent waits for), checks the
 * first fd, closes every fd, and answers the number of good fds (8 bytes).
 * n = 0: exit. */
static int w5_child(int sock, const struct stat *ref, long chunk) {
  int base = open_fd_count();
  static char ring[RING];
  int got[RECV_SLOTS], k;
  long head = 0;
  for (;;) {
    long long n;
    if (recv(sock, &n, sizeof n, MSG_WAITALL) != sizeof n) return 2;
    if (n == 0) break;
    long long left = n * chunk, good = 0;
    while (left > 0) {
      long room = RING - head;
      if (room > left) room = (long)left;
      int r = recv_fds(sock, ring + head, room, got, &k);
      if (r <= 0) return 2;
      head = (head + r) % RING;
      left -= r;
      for (int j = 0; j < k; j++) {
        int ok = good > 0 || same_file(got[j], ref);
        if (close(got[j]) != 0) ok = 0;
        good += ok;
      }
    }
    if (send(sock, &good, sizeof good, MSG_NOSIGNAL) != sizeof good) return 2;
  }
  return open_fd_count() == base ? 0 : 3;
}

struct w5 {
  int sock, file;
  long chunk;
  char *data;
};

static void w5_batch(long n, void *p) {
  struct w5 *c = p;
  long long count = n, good;
  if (send(c->sock, &count, sizeof count, MSG_NOSIGNAL) != sizeof count) die("send");
  for (long i = 0; i < n; i++) {
    /* A stream send may be partial: the fd went with the first byte, the rest follows without. */
    long off = send_fds(c->sock, c->data, c->chunk, &c->file, 1);
    if (off <= 0) die("sendmsg");
    while (off < c->chunk) {
      ssize_t w = send(c->sock, c->data + off, c->chunk - off, MSG_NOSIGNAL);
      if (w <= 0) die("send");
      off += w;
    }
  }
  if (recv(c->sock, &good, sizeof good, MSG_WAITALL) != sizeof good) die("recv");
  bad += n - good;
}

static void *idle_thread(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: fdbench w1|w2|w3|w4|w5 variant seconds reps [warm-up seconds]\n");
    return 64;
  }
  if (argc == 6) warmup = atof(argv[5]);
  const char *idle = getenv("FDBENCH_IDLE_THREAD");
  if (idle && !strcmp(idle, "1")) {
    pthread_t t;
    if (pthread_create(&t, NULL, idle_thread, NULL) != 0) die("pthread_create");
  }
  const char *w = argv[1], *variant = argv[2];
  double seconds = atof(argv[3]);
  int reps = atoi(argv[4]);
  if (reps < 1 || reps > 100) return 64;
  int base = open_fd_count();
  int file = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (file < 0) die("open");
  struct stat ref;
  fstat(file, &ref);
  double ops[100], p50[100], p99[100];

  if (!strcmp(w, "w1") || !strcmp(w, "w2")) {
    int type = !strcmp(w, "w1") ? sock_type(variant) : SOCK_STREAM;
    int nfds = !strcmp(w, "w1") ? 1 : atoi(variant);
    if (type < 0 || nfds < 1 || nfds > MAX_FDS) return 64;
    int sv[2];
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
    struct w12 c = {sv[0], sv[1], file, nfds, ref};
    long n = calibrate(w12_batch, &c, seconds);
    bad = 0;
    for (int r = 0; r < reps; r++) ops[r] = timed(w12_batch, &c, &n);
    close(sv[0]);
    close(sv[1]);
    close(file);
    print_reps(!strcmp(w, "w1") ? "round trips/s" : "messages/s", ops, reps, n, (long long)n * nfds * reps, 0,
               0);
  } else if (!strcmp(w, "w3") || !strcmp(w, "w4")) {
    int pingpong = !strcmp(w, "w3");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      close(sv[0]);
      close(file);
      _exit(child_main(sv[1], &ref, pingpong));
    }
    close(sv[1]);
    struct two c = {sv[0], file, NULL, 0};
    batch_fn fn = pingpong ? w3_batch : w4_batch;
    long n = calibrate(fn, &c, seconds);
    if (pingpong) end_rep(&c, 0); /* the child's count since the start */
    bad = 0;
    double *lat = pingpong ? malloc(sizeof(double) * n) : NULL;
    for (int r = 0; r < reps; r++) {
      c.lat = lat;
      ops[r] = timed(fn, &c, &n);
      if (pingpong) {
        end_rep(&c, n);
        qsort(lat, n, sizeof(double), cmp_double);
        p50[r] = lat[n / 2] * 1e6;
        p99[r] = lat[(long)(n * 0.99)] * 1e6;
      }
    }
    char q = 'Q';
    send_fds(sv[0], &q, 1, NULL, 0);
    int status;
    waitpid(pid, &status, 0);
    close(sv[0]);
    close(file);
    print_reps(pingpong ? "round trips/s" : "fds/s", ops, reps, n, (long long)n * reps, pingpong ? p50 : 0,
               pingpong ? p99 : 0);
    printf(",\"childExit\":%d", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    free(lat);
  } else if (!strcmp(w, "w5")) {
    long chunk = atol(variant) * 1024;
    if (chunk < 1024 || chunk > 16 * 1024 * 1024) return 64;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      close(sv[0]);
      close(file);
      _exit(w5_child(sv[1], &ref, chunk));
    }
    close(sv[1]);
    struct w5 c = {sv[0], file, chunk, calloc(1, chunk)};
    if (!c.data) die("calloc");
    long n = calibrate(w5_batch, &c, seconds);
    bad = 0;
    for (int r = 0; r < reps; r++) ops[r] = timed(w5_batch, &c, &n) * chunk;
    long long zero = 0;
    send(sv[0], &zero, sizeof zero, MSG_NOSIGNAL);
    int status;
    waitpid(pid, &status, 0);
    close(sv[0]);
    close(file);
    free(c.data);
    print_reps("bytes/s", ops, reps, n, (long long)n * reps, 0, 0);
    printf(",\"childExit\":%d", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  } else {
    return 64;
  }
  printf(",\"leakedFds\":%d}\n", open_fd_count() - base);
  return 0;
}
