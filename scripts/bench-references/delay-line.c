/*
 * The far-away network of `npm run bench`: a delay line between two TUN devices. Every IP packet
 * read from one is written to the other HOLD_MS later, so a connection through it pays the round
 * trip on its TCP handshake too (a TCP forwarder on 127.0.0.1 accepts at once and delays only
 * the data). The bench compiles it with gcc, makes the devices, moves the second into a network
 * namespace of its own with a receiver, and ends it with SIGTERM.
 *
 *   delay-line NEAR_DEVICE FAR_DEVICE HOLD_MS     prints "ready" once both devices exist
 */
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define QUEUED 4096
#define MTU 2048

struct packet {
  long long due_us;
  int to;
  int length;
  char bytes[MTU];
};

static struct packet queue[QUEUED];
static int head, tail;

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

static int open_tun(const char *name) {
  int fd = open("/dev/net/tun", O_RDWR);
  struct ifreq request;
  if (fd < 0) {
    perror("delay-line: /dev/net/tun");
    exit(1);
  }
  memset(&request, 0, sizeof request);
  request.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(request.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &request) < 0) {
    perror("delay-line: TUNSETIFF");
    exit(1);
  }
  return fd;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: delay-line NEAR_DEVICE FAR_DEVICE HOLD_MS\n");
    return 2;
  }
  long long hold_us = atoll(argv[3]) * 1000LL;
  int near = open_tun(argv[1]), far = open_tun(argv[2]);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    int timeout_ms = -1;
    if (head != tail) {
      long long wait_us = queue[head].due_us - now_us();
      timeout_ms = wait_us > 0 ? (int)((wait_us + 999) / 1000) : 0;
    }
    struct pollfd ready[2] = {{near, POLLIN, 0}, {far, POLLIN, 0}};
    poll(ready, 2, timeout_ms);
    for (int side = 0; side < 2; side++) {
      if (!(ready[side].revents & POLLIN)) continue;
      struct packet *packet = &queue[tail];
      int length = read(ready[side].fd, packet->bytes, MTU);
      // A full queue drops the packet, as a full router would: TCP sends it again.
      if (length <= 0 || (tail + 1) % QUEUED == head) continue;
      packet->length = length;
      packet->to = side == 0 ? far : near;
      packet->due_us = now_us() + hold_us;
      tail = (tail + 1) % QUEUED;
    }
    for (long long now = now_us(); head != tail && queue[head].due_us <= now; head = (head + 1) % QUEUED) {
      if (write(queue[head].to, queue[head].bytes, queue[head].length) < 0) perror("delay-line: write");
    }
  }
}
