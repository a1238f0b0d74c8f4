/* native-epoll: the iomodels protocol in C, one thread, level-triggered epoll.
 *
 * A reference for CPU per request, not a model under study: a 4-byte big-endian length,
 * then the payload; the answer is the payload with a-z upper-cased, in order, pipelined
 * frames answered from one read, one send per batch of answers. A length above
 * --max-frame closes that connection before any payload is buffered. Half close: every
 * answer is sent, then the connection closes. Bounded output: a connection whose pending
 * output is over OUT_CAP is not read until it drains. EMFILE: a spare descriptor is given
 * up to accept and close the newcomer (shed), never a busy loop. SIGTERM/SIGINT: exit 0.
 * Same command line as `python -m servers MODEL`: --host --port --max-frame --backlog.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define OUT_CAP (1024 * 1024)
#define MAX_EVENTS 256

typedef struct {
    char *data;
    size_t head, len, cap; /* bytes [head, len) are pending */
} buffer;

typedef struct {
    int fd;
    int eof;       /* the peer shut its write side */
    int want_read; /* EPOLLIN is registered */
    int want_write;
    buffer in, out;
} conn;

static volatile sig_atomic_t stopping = 0;
static int epfd = -1;
static size_t max_frame = 1 << 20;
static int spare_fd = -1;
static long events_bad_frame = 0, events_shed = 0;
static time_t log_second = 0;
static int log_lines_this_second = 0;

static void on_signal(int sig) { (void)sig; stopping = 1; }

/* Diagnostics on stderr, at most 5 lines a second; `event=KEY count=N` markers. */
static void log_event(const char *key, long count, const char *fmt, unsigned long value) {
    time_t now = time(NULL);
    if (now != log_second) { log_second = now; log_lines_this_second = 0; }
    if (++log_lines_this_second > 5) return;
    fprintf(stderr, "event=%s count=%ld ", key, count);
    fprintf(stderr, fmt, value);
    fputc('\n', stderr);
}

static int reserve(buffer *b, size_t extra) {
    if (b->head && b->head == b->len) b->head = b->len = 0;
    if (b->len + extra <= b->cap) return 0;
    if (b->head) { /* compact before growing */
        memmove(b->data, b->data + b->head, b->len - b->head);
        b->len -= b->head;
        b->head = 0;
        if (b->len + extra <= b->cap) return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static size_t pending(const buffer *b) { return b->len - b->head; }

static void set_interest(conn *c) {
    int want_read = !c->eof && pending(&c->out) <= OUT_CAP;
    int want_write = pending(&c->out) > 0;
    if (want_read == c->want_read && want_write == c->want_write) return;
    struct epoll_event ev = {.events = (want_read ? EPOLLIN : 0) | (want_write ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_read = want_read;
    c->want_write = want_write;
}

static void close_conn(conn *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in.data);
    free(c->out.data);
    free(c);
}

/* Answers every complete frame in c->in; -1 on a length above the limit. */
static int answer_frames(conn *c) {
    buffer *in = &c->in;
    while (pending(in) >= 4) {
        const unsigned char *p = (const unsigned char *)in->data + in->head;
        uint32_t n = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
        if (n > max_frame) {
            log_event("protocol.frame_too_large", ++events_bad_frame,
                      "frame length %lu exceeds the limit: connection closed", n);
            return -1;
        }
        if (pending(in) < 4 + (size_t)n) break;
        if (reserve(&c->out, 4 + (size_t)n) < 0) return -1;
        p = (const unsigned char *)in->data + in->head; /* in is not moved by reserve(out) */
        unsigned char *q = (unsigned char *)c->out.data + c->out.len;
        memcpy(q, p, 4);
        for (uint32_t i = 0; i < n; i++) {
            unsigned char ch = p[4 + i];
            q[4 + i] = (ch >= 'a' && ch <= 'z') ? ch - 32 : ch;
        }
        c->out.len += 4 + n;
        in->head += 4 + n;
    }
    if (in->head == in->len) in->head = in->len = 0;
    return 0;
}

/* Sends what is pending; -1 when the peer is gone. */
static int flush_out(conn *c) {
    buffer *out = &c->out;
    while (pending(out)) {
        ssize_t n = send(c->fd, out->data + out->head, pending(out), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        out->head += (size_t)n;
    }
    out->head = out->len = 0;
    if (out->cap > 4 * OUT_CAP) { free(out->data); out->data = NULL; out->cap = 0; }
    return 0;
}

/* Both handlers return 1 when they closed (freed) the connection. */
static int drop(conn *c) { close_conn(c); return 1; }

static int on_readable(conn *c) {
    if (c->eof || pending(&c->out) > OUT_CAP) return 0;
    if (reserve(&c->in, READ_CHUNK) < 0) return drop(c);
    ssize_t n = recv(c->fd, c->in.data + c->in.len, READ_CHUNK, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
        return drop(c);
    }
    if (n == 0) {
        c->eof = 1;
    } else {
        c->in.len += (size_t)n;
        if (answer_frames(c) < 0) return drop(c);
    }
    if (flush_out(c) < 0) return drop(c);
    if (c->eof && pending(&c->out) == 0) return drop(c);
    set_interest(c);
    return 0;
}

static int on_writable(conn *c) {
    if (flush_out(c) < 0) return drop(c);
    if (c->eof && pending(&c->out) == 0) return drop(c);
    set_interest(c);
    return 0;
}

static void shed_one(int listener) {
    /* out of descriptors: give up the spare one to take the newcomer off the backlog */
    events_shed++;
    log_event("shed.emfile", events_shed, "out of file descriptors (%lu): connection shed",
              (unsigned long)EMFILE);
    if (spare_fd >= 0) { close(spare_fd); spare_fd = -1; }
    int fd = accept(listener, NULL, NULL);
    if (fd >= 0) close(fd);
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_accept(int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE) { shed_one(listener); return; }
            return; /* EAGAIN, or a transient error */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) { close(fd); continue; }
        c->fd = fd;
        c->want_read = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) { close(fd); free(c); }
    }
}

static void usage(const char *prog) {
    fprintf(stderr, "usage: %s [--host H] [--port P] [--max-frame N] [--backlog N]\n", prog);
    exit(2);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0, backlog = 4096;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (i + 1 >= argc) usage(argv[0]);
        if (!strcmp(arg, "--host")) host = argv[++i];
        else if (!strcmp(arg, "--port")) port = atoi(argv[++i]);
        else if (!strcmp(arg, "--max-frame")) max_frame = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(arg, "--backlog")) backlog = atoi(argv[++i]);
        else usage(argv[0]);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "not an IPv4 address: %s\n", host);
        return 2;
    }
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, backlog) < 0) {
        perror("bind/listen");
        return 1;
    }
    socklen_t alen = sizeof addr;
    getsockname(listener, (struct sockaddr *)&addr, &alen);
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &lev);
    char shown[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr.sin_addr, shown, sizeof shown);
    printf("listening on %s:%d\n", shown, ntohs(addr.sin_port));
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    while (!stopping) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (c == NULL) { on_accept(listener); continue; }
            uint32_t e = events[i].events;
            if (e & (EPOLLERR | EPOLLHUP) && !(e & (EPOLLIN | EPOLLOUT))) { close_conn(c); continue; }
            if ((e & EPOLLOUT) && on_writable(c)) continue;
            if (e & (EPOLLIN | EPOLLHUP)) on_readable(c);
        }
    }
    if (events_bad_frame) fprintf(stderr, "event=protocol.frame_too_large count=%ld (final)\n", events_bad_frame);
    if (events_shed) fprintf(stderr, "event=shed.emfile count=%ld (final)\n", events_shed);
    close(listener);
    close(epfd);
    return 0;
}
