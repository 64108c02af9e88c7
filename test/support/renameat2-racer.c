/*
 * The attacker of test/built/host-safety/root-races.test.ts: swaps two directory entries
 * atomically (renameat2 RENAME_EXCHANGE) in a tight loop, so a root run that checks one path
 * and then uses it by name finds the other tree behind it part of the time. Runs as the user
 * who owns the directory holding both names; stops when killed.
 *
 *   renameat2-racer <path-a> <path-b>
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <path-a> <path-b>\n", argv[0]);
    return 2;
  }
  /* The first swap must work: a racer that cannot swap would make the test pass for nothing. */
  if (syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) != 0) {
    perror("renameat2");
    return 1;
  }
  printf("swapping\n");
  fflush(stdout);
  for (;;) syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE);
}
