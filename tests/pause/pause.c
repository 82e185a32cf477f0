/* The first process of a CRI pod sandbox in veil's tests (what Kubernetes' pause image does):
 * it holds the pod's namespaces, reaps any child re-parented to it, and exits on SIGINT or SIGTERM.
 * Signals stay blocked except inside sigsuspend, so none can slip in between the check and the wait. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>

static volatile sig_atomic_t stopping;

static void on_stop(int sig) { (void)sig; stopping = 1; }
static void on_child(int sig) { (void)sig; }

int main(void) {
	sigset_t handled, waiting;
	sigemptyset(&handled);
	sigaddset(&handled, SIGINT);
	sigaddset(&handled, SIGTERM);
	sigaddset(&handled, SIGCHLD);
	sigprocmask(SIG_BLOCK, &handled, &waiting);
	sigdelset(&waiting, SIGINT);
	sigdelset(&waiting, SIGTERM);
	sigdelset(&waiting, SIGCHLD);

	struct sigaction action = {0};
	action.sa_handler = on_stop;
	sigaction(SIGINT, &action, NULL);
	sigaction(SIGTERM, &action, NULL);
	action.sa_handler = on_child;
	action.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &action, NULL);

	while (!stopping) {
		sigsuspend(&waiting);
		while (waitpid(-1, NULL, WNOHANG) > 0) {}
	}
	return 0;
}
