/* vfork + exec of cp, the way old shells and posix_spawn start programs. */
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t pid = vfork();
    if (pid == 0) {
        execl("/bin/cp", "cp", "in.txt", "copied.txt", (char *)0);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
