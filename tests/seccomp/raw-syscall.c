/* raw-syscall NR...: makes each system call NR with zeroed arguments and prints
   "NR=<errno name or ok>", one line each: what a profile answers for calls its author never named. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long number = strtol(argv[i], NULL, 10);
        long result = syscall(number, 0, 0, 0, 0, 0, 0);
        if (result >= 0) printf("%ld=ok\n", number);
        else if (errno == ENOSYS) printf("%ld=ENOSYS\n", number);
        else if (errno == EPERM) printf("%ld=EPERM\n", number);
        else printf("%ld=errno%d\n", number, errno);
    }
    return 0;
}
