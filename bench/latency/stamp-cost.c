// What the kernel charges for receive stamps, per read, on loopback TCP.
//
// A writer thread (CPU 0) sends batches of 4,000 messages of 200 bytes (TCP_NODELAY: one
// packet each) into a 4 MiB receive buffer; then the reader (CPU 1) reads them, one
// non-blocking read per message, without ever waiting. Thread CPU time per read and per
// send is printed for: recv (stamping off), recvmsg (stamping off), recvmsg with
// SO_TIMESTAMPNS (the kernel stamps each packet, the read returns a control message),
// recvmsg with stamping on but no control buffer. Built and run by bench/stamp-cost.sh.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MESSAGES 400000
#define BATCH 4000
#define SIZE 200

enum mode { RECV, RECVMSG, RECVMSG_STAMPS, RECVMSG_STAMPS_NO_CONTROL };
static const char *names[] = {"recv", "recvmsg", "recvmsg + stamps",
                              "recvmsg, stamps on, no control buffer"};
static pthread_barrier_t turn;
static double send_ns;

static double thread_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *writer(void *arg) {
    int s = *(int *)arg;
    char message[SIZE];
    memset(message, 'x', SIZE);
    pin(0);
    double total = 0;
    for (int b = 0; b < MESSAGES / BATCH; b++) {
        double t0 = thread_ns();
        for (int i = 0; i < BATCH; i++)
            if (send(s, message, SIZE, 0) != SIZE) { perror("send"); exit(1); }
        total += thread_ns() - t0;
        pthread_barrier_wait(&turn); // the batch is in the reader's buffer
        pthread_barrier_wait(&turn); // the reader has read it
    }
    send_ns = total / MESSAGES;
    return NULL;
}

static int read_one(int c, enum mode mode, char *buf, long *stamps) {
    if (mode == RECV) return recv(c, buf, SIZE, MSG_DONTWAIT);
    unsigned long long control[8];
    struct iovec iov = {buf, SIZE};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (mode != RECVMSG_STAMPS_NO_CONTROL) {
        m.msg_control = control;
        m.msg_controllen = sizeof control;
    }
    int n = recvmsg(c, &m, MSG_DONTWAIT);
    if (m.msg_control && n > 0)
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) (*stamps)++;
    return n;
}

int main(int argc, char **argv) {
    enum mode mode = argc > 1 ? atoi(argv[1]) : RECV;
    int one = 1, big = 4 << 20;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    bind(l, (void *)&a, sizeof a);
    listen(l, 1);
    getsockname(l, (void *)&a, &len);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(c, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (connect(c, (void *)&a, sizeof a)) { perror("connect"); return 1; }
    int s = accept(l, NULL, NULL);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (mode >= RECVMSG_STAMPS) setsockopt(c, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    pin(1);
    pthread_barrier_init(&turn, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, writer, &s);
    char buf[SIZE];
    long got = 0, reads = 0, stamps = 0;
    double read_total = 0;
    for (int b = 0; b < MESSAGES / BATCH; b++) {
        pthread_barrier_wait(&turn);
        double t0 = thread_ns();
        while (got < (long)SIZE * BATCH * (b + 1)) {
            int n = read_one(c, mode, buf, &stamps);
            if (n <= 0) { perror("read"); return 1; }
            got += n;
            reads++;
        }
        read_total += thread_ns() - t0;
        pthread_barrier_wait(&turn);
    }
    pthread_join(t, NULL);
    printf("%s\t%.0f\t%.0f\t%ld\t%ld\n", names[mode], read_total / reads, send_ns, reads, stamps);
    return 0;
}
