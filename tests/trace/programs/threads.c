/* N threads each read M existing files in_<t>_<i>.txt and write out_<t>.txt, concurrently. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static int M;
static void *work(void *arg) {
    long t = (long)arg;
    char name[64], buf[256];
    long total = 0;
    for (int i = 0; i < M; i++) {
        snprintf(name, sizeof name, "in_%ld_%d.txt", t, i);
        int fd = open(name, O_RDONLY);
        if (fd < 0) exit(1);
        total += read(fd, buf, sizeof buf);
        close(fd);
    }
    snprintf(name, sizeof name, "out_%ld.txt", t);
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int n = snprintf(buf, sizeof buf, "%ld\n", total);
    if (write(fd, buf, n) != n) exit(2);
    close(fd);
    return 0;
}
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    M = atoi(argv[2]);
    pthread_t th[64];
    for (long t = 0; t < n; t++) pthread_create(&th[t], 0, work, (void *)t);
    for (int t = 0; t < n; t++) pthread_join(th[t], 0);
    return 0;
}
