/* console-receiver SOCKET OUT: a console socket as runc's callers run one (recvtty): listens on
   SOCKET, and for each connection takes the pty master it carries (SCM_RIGHTS) and appends what
   the master reads to OUT, in a child, until the terminal closes. The guest's checkpoint checks
   run a terminal container with it, and give it the restored container's new pty. */
#define _GNU_SOURCE  /* accept4 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int receive_master(int connection) {
    char byte[256], control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { byte, sizeof(byte) };
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
    if (recvmsg(connection, &message, 0) < 0) return -1;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    if (!header || header->cmsg_type != SCM_RIGHTS) return -1;
    int master;
    memcpy(&master, CMSG_DATA(header), sizeof(int));
    return master;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: console-receiver SOCKET OUT\n"); return 2; }
    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    strncpy(address.sun_path, argv[1], sizeof(address.sun_path) - 1);
    unlink(argv[1]);
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof(address)) || listen(listener, 4)) { perror(argv[1]); return 1; }
    for (;;) {
        int connection = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (connection < 0) return 1;
        int master = receive_master(connection);
        close(connection);
        if (master < 0) continue;
        if (fork() == 0) {
            int out = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            char buffer[4096];
            ssize_t n;
            while ((n = read(master, buffer, sizeof(buffer))) > 0) if (write(out, buffer, n) != n) break;
            _exit(0);
        }
        close(master);
    }
}
