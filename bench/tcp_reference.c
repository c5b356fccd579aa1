/* tcp_reference: the yardstick for fxd's small-request figures. A minimal
 * single-threaded epoll server speaking fxd's TCP framing for echo only:
 * each frame is a u32 big-endian header length, a JSON header and header.size
 * body bytes; each reply is fxd's echo reply, {"status":"ok","op":"echo",
 * "id":ID,"size":N} (id only when the request had one) and the body
 * upper-cased. Usage: tcp_reference PORT [ADDRESS] (default 127.0.0.1; port 0
 * picks a free one and prints "tcp=PORT" on stdout). Prints nothing else but
 * errors.
 *
 * It is written for speed, as the best a server in C can do with the same
 * bytes on the wire: non-blocking sockets, edge-triggered epoll, every read
 * taking all the socket holds (up to 256 KiB), every complete frame of it
 * answered into one output buffer that goes out in one send, and no copy of a
 * frame that arrived whole.
 *
 * It understands only the headers fxbench sends: one flat JSON object with
 * no whitespace and no escapes in strings, whose values are strings or
 * integers, among them "op":"echo" and "size":N (N <= 1 MiB), optionally
 * "id" (integer or string, copied as it came). Anything else (another op,
 * nesting, escapes, a header over 4 KiB, a broken frame) closes the
 * connection: it is not a parser, and it does not check what fxd checks. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    read_chunk = 256 * 1024,
    max_header = 4096,
    max_body = 1 << 20,
    max_events = 256,
    max_id = 128,
};

struct conn {
    int fd;
    char *in;            /* bytes read, not yet consumed by a whole frame */
    size_t in_len, in_cap;
    char *out;           /* replies not yet sent */
    size_t out_off, out_len, out_cap;
    int want_out;        /* EPOLLOUT is in the interest set */
};

/* Grows *buf to hold at least need bytes; 0 when memory ran out. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 1;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p)
        return 0;
    *buf = p;
    *cap = n;
    return 1;
}

static void drop(struct conn *c)
{
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

/* The fields of one echo header this server needs. */
struct echo_header {
    const char *id; /* the raw JSON token of "id", or NULL */
    size_t id_len;
    uint64_t size;
};

/* Reads the flat header h[0..n) (see the top of the file); 0 when it is not
 * one this server understands. */
static int read_header(const char *h, size_t n, struct echo_header *out)
{
    const char *p = h, *end = h + n;
    int saw_echo = 0;
    out->id = NULL;
    out->id_len = 0;
    out->size = 0;
    if (p == end || *p++ != '{')
        return 0;
    if (p < end && *p == '}')
        return 0;
    for (;;) {
        /* "key": */
        if (p == end || *p++ != '"')
            return 0;
        const char *key = p;
        while (p < end && *p != '"' && *p != '\\')
            ++p;
        if (p == end || *p != '"')
            return 0;
        const size_t key_len = (size_t)(p - key);
        ++p;
        if (p == end || *p++ != ':' || p == end)
            return 0;
        /* value: a string or an integer */
        const char *value = p;
        if (*p == '"') {
            ++p;
            while (p < end && *p != '"' && *p != '\\')
                ++p;
            if (p == end || *p != '"')
                return 0;
            ++p;
        } else {
            if (*p == '-')
                ++p;
            const char *digits = p;
            while (p < end && *p >= '0' && *p <= '9')
                ++p;
            if (p == digits)
                return 0;
        }
        const size_t value_len = (size_t)(p - value);
        if (key_len == 2 && memcmp(key, "op", 2) == 0) {
            if (value_len != 6 || memcmp(value, "\"echo\"", 6) != 0)
                return 0;
            saw_echo = 1;
        } else if (key_len == 4 && memcmp(key, "size", 4) == 0) {
            if (*value == '"' || *value == '-' || value_len > 8)
                return 0;
            out->size = strtoull(value, NULL, 10);
            if (out->size > max_body)
                return 0;
        } else if (key_len == 2 && memcmp(key, "id", 2) == 0) {
            if (value_len > max_id)
                return 0;
            out->id = value;
            out->id_len = value_len;
        }
        if (p == end)
            return 0;
        if (*p == '}')
            return p + 1 == end && saw_echo;
        if (*p++ != ',')
            return 0;
    }
}

/* Appends the reply to one echo to c->out; 0 when memory ran out. */
static int append_reply(struct conn *c, const struct echo_header *h, const char *body)
{
    char header[64 + max_id];
    int len;
    if (h->id)
        len = snprintf(header, sizeof header, "{\"status\":\"ok\",\"op\":\"echo\",\"id\":%.*s,\"size\":%llu}",
                       (int)h->id_len, h->id, (unsigned long long)h->size);
    else
        len = snprintf(header, sizeof header, "{\"status\":\"ok\",\"op\":\"echo\",\"size\":%llu}",
                       (unsigned long long)h->size);
    const size_t frame = 4 + (size_t)len + h->size;
    if (!reserve(&c->out, &c->out_cap, c->out_len + frame))
        return 0;
    unsigned char *o = (unsigned char *)c->out + c->out_len;
    o[0] = (unsigned char)(len >> 24);
    o[1] = (unsigned char)(len >> 16);
    o[2] = (unsigned char)(len >> 8);
    o[3] = (unsigned char)len;
    memcpy(o + 4, header, (size_t)len);
    char *b = (char *)o + 4 + len;
    for (uint64_t i = 0; i < h->size; ++i) {
        const char ch = body[i];
        b[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
    }
    c->out_len += frame;
    return 1;
}

/* Answers every whole frame in data[0..n); returns the bytes consumed, or
 * -1 when the stream is one this server does not understand. */
static long answer_frames(struct conn *c, const char *data, size_t n)
{
    size_t pos = 0;
    while (n - pos >= 4) {
        const unsigned char *q = (const unsigned char *)data + pos;
        const uint32_t hlen = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
        if (hlen == 0 || hlen > max_header)
            return -1;
        if (n - pos - 4 < hlen)
            break;
        struct echo_header h;
        if (!read_header(data + pos + 4, hlen, &h))
            return -1;
        if (n - pos - 4 - hlen < h.size)
            break;
        if (!append_reply(c, &h, data + pos + 4 + hlen))
            return -1;
        pos += 4 + hlen + h.size;
    }
    return (long)pos;
}

/* Sends what c->out holds until the socket is full; 0 when the connection broke. */
static int flush(int epfd, struct conn *c)
{
    while (c->out_off < c->out_len) {
        const ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return 0;
            break;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    const int want = c->out_len > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (want ? EPOLLOUT : 0), .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
            return 0;
        c->want_out = want;
    }
    return 1;
}

/* Reads everything the socket holds and answers it; 0 when the connection ended. */
static int on_readable(int epfd, struct conn *c, char *chunk)
{
    for (;;) {
        const ssize_t n = recv(c->fd, chunk, read_chunk, 0);
        if (n == 0) {
            flush(epfd, c); /* what a half-closed client asked for, as far as the socket takes it */
            return 0;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return 0;
            break;
        }
        if (c->in_len == 0) {
            /* The common case: frames arrived whole; answer them from the chunk
             * and keep only a cut-off tail. */
            const long used = answer_frames(c, chunk, (size_t)n);
            if (used < 0)
                return 0;
            const size_t rest = (size_t)n - (size_t)used;
            if (rest > 0) {
                if (!reserve(&c->in, &c->in_cap, rest))
                    return 0;
                memcpy(c->in, chunk + used, rest);
                c->in_len = rest;
            }
        } else {
            if (!reserve(&c->in, &c->in_cap, c->in_len + (size_t)n))
                return 0;
            memcpy(c->in + c->in_len, chunk, (size_t)n);
            c->in_len += (size_t)n;
            const long used = answer_frames(c, c->in, c->in_len);
            if (used < 0)
                return 0;
            memmove(c->in, c->in + used, c->in_len - (size_t)used);
            c->in_len -= (size_t)used;
        }
        if ((size_t)n < read_chunk)
            break; /* the socket is empty: no need for the EAGAIN read */
    }
    return flush(epfd, c);
}

static void accept_all(int epfd, int listener)
{
    for (;;) {
        const int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                perror("tcp_reference: accept4");
            return;
        }
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
            drop(c);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [ADDRESS]\n", argv[0]);
        return 2;
    }
    char *end = NULL;
    const long port = strtol(argv[1], &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "tcp_reference: bad port %s\n", argv[1]);
        return 2;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, argc == 3 ? argv[2] : "127.0.0.1", &addr.sin_addr) != 1) {
        fprintf(stderr, "tcp_reference: bad IPv4 address %s\n", argv[2]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 4096) != 0) {
        perror("tcp_reference: listen");
        return 1;
    }
    if (port == 0) {
        socklen_t len = sizeof addr;
        getsockname(listener, (struct sockaddr *)&addr, &len);
        printf("tcp=%u\n", ntohs(addr.sin_port));
        fflush(stdout);
    }
    const int epfd = epoll_create1(EPOLL_CLOEXEC);
    /* data.ptr NULL marks the listener; connections carry their struct conn. */
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &lev) != 0) {
        perror("tcp_reference: epoll");
        return 1;
    }
    char *chunk = malloc(read_chunk);
    if (!chunk)
        return 1;
    struct epoll_event events[max_events];
    for (;;) {
        const int got = epoll_wait(epfd, events, max_events, -1);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            perror("tcp_reference: epoll_wait");
            return 1;
        }
        for (int i = 0; i < got; ++i) {
            struct conn *c = events[i].data.ptr;
            if (!c) {
                accept_all(epfd, listener);
                continue;
            }
            int alive = 1;
            if (events[i].events & EPOLLOUT)
                alive = flush(epfd, c);
            if (alive && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
                alive = on_readable(epfd, c, chunk);
            if (!alive)
                drop(c);
        }
    }
}
