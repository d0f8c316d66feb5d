/* A child writes a file and then segfaults; the parent reports it with exit 3. */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("partial.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (write(fd, "part\n", 5) != 5) _exit(1);
        close(fd);
        volatile int *p = 0;
        *p = 1;
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    return (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) ? 3 : 4;
}
