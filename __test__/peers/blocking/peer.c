/* A blocking peer in C: see README.md. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCK 3
#define MAX_FDS 16

static int nonblock_seen;

static void die(const char *what) {
  fprintf(stderr, "c peer: %s: %s (errno %d)\n", what, strerror(errno), errno);
  exit(2);
}

static void check_mode(void) {
  int flags = fcntl(SOCK, F_GETFL);
  if (flags < 0) die("fcntl");
  if (flags & O_NONBLOCK) nonblock_seen = 1;
}

/* The open fds, as a sorted list in `out`; returns how many. */
static int open_fds(int *out, int max) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) die("opendir");
  int n = 0, self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) && n < max) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd != self) out[n++] = fd;
  }
  closedir(d);
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
      int t = out[j]; out[j] = out[j - 1]; out[j - 1] = t;
    }
  return n;
}

/* One recvmsg into buf, fds appended to fds[*nfds]. */
static size_t recv_some(char *buf, size_t len, int *fds, int *nfds) {
  union { struct cmsghdr h; char space[CMSG_SPACE(sizeof(int) * 253)]; } control;
  struct iovec iov = {buf, len};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.space;
  msg.msg_controllen = sizeof control.space;
  ssize_t n;
  do n = recvmsg(SOCK, &msg, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  if (n < 0) die("recvmsg");
  if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) { errno = EMSGSIZE; die("recvmsg truncated"); }
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    if (*nfds + count > MAX_FDS) { errno = EMFILE; die("too many fds"); }
    memcpy(fds + *nfds, CMSG_DATA(c), count * sizeof(int));
    *nfds += count;
  }
  return (size_t)n;
}

static size_t recv_message(int framed, char *buf, size_t cap, int *fds, int *nfds) {
  *nfds = 0;
  if (!framed) return recv_some(buf, cap, fds, nfds);
  unsigned char h[8];
  size_t got = 0;
  while (got < 8) {
    size_t n = recv_some((char *)h + got, 8 - got, fds, nfds);
    if (n == 0) { errno = EPIPE; die("end of stream in a header"); }
    got += n;
  }
  uint32_t len = h[0] | h[1] << 8 | h[2] << 16 | (uint32_t)h[3] << 24;
  int want = h[4] | h[5] << 8;
  if (len > cap || want != *nfds) { errno = EPROTO; die("bad header"); }
  got = 0;
  while (got < len) {
    size_t n = recv_some(buf + got, len - got, fds, nfds);
    if (n == 0) { errno = EPIPE; die("end of stream in a payload"); }
    got += n;
  }
  if (*nfds != want) { errno = EPROTO; die("fds outside a header"); }
  return len;
}

static void send_message(int framed, const char *data, size_t len, const int *fds, int nfds) {
  unsigned char h[8] = {len & 255, len >> 8 & 255, len >> 16 & 255, len >> 24, nfds & 255, nfds >> 8, 0, 0};
  struct iovec iov[2] = {{h, 8}, {(void *)data, len}};
  union { struct cmsghdr h; char space[CMSG_SPACE(sizeof(int) * MAX_FDS)]; } control;
  struct msghdr msg = {0};
  msg.msg_iov = framed ? iov : iov + 1;
  msg.msg_iovlen = framed ? 2 : 1;
  if (nfds > 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.space;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  size_t total = len + (framed ? 8 : 0);
  ssize_t n;
  do n = sendmsg(SOCK, &msg, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  if (n < 0) die("sendmsg");
  if ((size_t)n != total) { errno = EMSGSIZE; die("short sendmsg"); }
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: peer framed|raw ROUNDS\n"); return 2; }
  int framed = strcmp(argv[1], "framed") == 0;
  int rounds = atoi(argv[2]);
  int before[256], after[256];
  int nbefore = open_fds(before, 256);
  static char buf[1 << 16], reply[1 << 16];
  printf("{\"lang\":\"c\",\"got\":[");
  for (int r = 0; r < rounds; r++) {
    check_mode();
    int fds[MAX_FDS + 1], nfds;
    size_t len = recv_message(framed, buf, sizeof buf, fds, &nfds);
    check_mode();
    int at = snprintf(reply, sizeof reply, "ack:c:");
    for (int i = 0; i < nfds; i++) {
      char text[128];
      ssize_t n = pread(fds[i], text, sizeof text - 1, 0);
      if (n < 0) die("pread");
      at += snprintf(reply + at, sizeof reply - at, "%s%.*s", i ? "," : "", (int)n, text);
    }
    printf("%s\"%.*s\"", r ? "," : "", (int)len, buf);
    char path[] = "/tmp/fdpass-c-peer-XXXXXX";
    int own = mkostemp(path, O_CLOEXEC);
    if (own < 0) die("mkostemp");
    unlink(path);
    char mine[32];
    int mlen = snprintf(mine, sizeof mine, "c-%d", r);
    if (write(own, mine, mlen) != mlen) die("write");
    fds[nfds] = own;
    send_message(framed, reply, at, fds, nfds + 1);
    for (int i = 0; i <= nfds; i++) close(fds[i]);
  }
  check_mode();
  int nafter = open_fds(after, 256);
  int same = nafter == nbefore && memcmp(before, after, sizeof(int) * nafter) == 0;
  printf("],\"nonblock_seen\":%s,\"fd_audit_ok\":%s}\n", nonblock_seen ? "true" : "false", same ? "true" : "false");
  close(SOCK);
  return 0;
}
