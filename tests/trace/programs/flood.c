/* A flood of events. "same": open and close one file argv[3] times (the tracer reports it
 * once per process). "churn": create and remove argv[1] argv[3] times (every one is news). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 4) return 2;
    long n = atol(argv[3]);
    int churn = strcmp(argv[2], "churn") == 0;
    for (long i = 0; i < n; i++) {
        int fd = churn ? open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644) : open(argv[1], O_RDONLY);
        if (fd < 0) return 1;
        close(fd);
        if (churn && unlink(argv[1])) return 1;
    }
    return 0;
}
