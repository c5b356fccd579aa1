/* udp_reference: the smallest fast UDP echo server, the yardstick for fxd's
 * UDP figure. It receives up to 64 datagrams per recvmmsg and sends them back
 * unchanged to their sources with one sendmmsg. Usage: udp_reference PORT
 * [ADDRESS] (default 127.0.0.1). Prints nothing but errors. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { batch = 64, max_datagram = 65536 };

static char buffers[batch][max_datagram];

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [ADDRESS]\n", argv[0]);
        return 2;
    }
    char *end = NULL;
    const long port = strtol(argv[1], &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "udp_reference: bad port %s\n", argv[1]);
        return 2;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, argc == 3 ? argv[2] : "127.0.0.1", &addr.sin_addr) != 1) {
        fprintf(stderr, "udp_reference: bad IPv4 address %s\n", argv[2]);
        return 2;
    }
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("udp_reference: bind");
        return 1;
    }
    const int bufsize = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);

    static struct mmsghdr msgs[batch];
    static struct iovec iov[batch];
    static struct sockaddr_storage peers[batch];
    for (;;) {
        for (int i = 0; i < batch; ++i) {
            iov[i].iov_base = buffers[i];
            iov[i].iov_len = max_datagram;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &peers[i];
            msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
        }
        const int got = recvmmsg(fd, msgs, batch, MSG_WAITFORONE, NULL);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            perror("udp_reference: recvmmsg");
            return 1;
        }
        for (int i = 0; i < got; ++i)
            iov[i].iov_len = msgs[i].msg_len;
        int sent = 0;
        while (sent < got) {
            const int n = sendmmsg(fd, msgs + sent, (unsigned)(got - sent), 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                perror("udp_reference: sendmmsg");
                break;
            }
            sent += n;
        }
    }
}
