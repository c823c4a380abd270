/*
 * A stand-in for helm, compiled for each architecture of the example image.
 *
 * Real Kubernetes tools cannot be installed where sealer's examples and tests run, so the
 * example image carries this small program under the name helm. It checks its arguments the
 * way helm would, records every call (one line per call) in $SEALER_STANDIN_LOG or, by default,
 * standin-calls.log beside the rootfs it sits in (ROOTFS/bin/helm -> ROOTFS/../standin-calls.log,
 * the cluster's data directory), and says plainly that it is a stand-in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libgen.h>
#include <limits.h>

#if defined(__aarch64__)
#define ARCH "arm64"
#elif defined(__x86_64__)
#define ARCH "amd64"
#else
#define ARCH "unknown"
#endif

static int record(int argc, char **argv) {
    char buf[PATH_MAX];
    const char *path = getenv("SEALER_STANDIN_LOG");
    if (!path || !*path) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) return -1;
        exe[n] = 0;
        /* exe is ROOTFS/bin/helm: the log goes to ROOTFS/../standin-calls.log */
        snprintf(buf, sizeof buf, "%s/../../standin-calls.log", dirname(exe));
        path = buf;
    }
    FILE *f = fopen(path, "a");
    if (!f) { perror(path); return -1; }
    fprintf(f, "%ld helm[%s]", (long)time(NULL), ARCH);
    for (int i = 1; i < argc; i++) fprintf(f, " %s", argv[i]);
    fputc('\n', f);
    return fclose(f);
}

static int usage(const char *msg) {
    fprintf(stderr, "helm (sealer stand-in): %s\n", msg);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage("a command is required");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "version")) {
        printf("version.BuildInfo{Version:\"v3.8.2\", GoOS:\"linux\", GoArch:\"" ARCH "\", Note:\"sealer stand-in\"}\n");
        return 0;
    }
    if (!strcmp(cmd, "install") || !strcmp(cmd, "upgrade") || !strcmp(cmd, "template")) {
        int positional = 0;
        for (int i = 2; i < argc; i++) {
            if (argv[i][0] == '-') {
                if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "--namespace") || !strcmp(argv[i], "-n") ||
                    !strcmp(argv[i], "-f") || !strcmp(argv[i], "--values") || !strcmp(argv[i], "--set")) {
                    if (++i >= argc) return usage("a flag is missing its value");
                }
                continue;
            }
            positional++;
        }
        if (positional != 2) return usage("expected RELEASE CHART");
        if (strcmp(cmd, "template") && record(argc, argv)) return 1;
        if (strcmp(cmd, "template")) printf("NAME: %s\nSTATUS: deployed (sealer stand-in, nothing was installed)\n", argv[2]);
        return 0;
    }
    return usage("unknown command");
}
