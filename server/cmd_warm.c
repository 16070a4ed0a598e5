/* `gomirror warm [--jobs N] [FILE|MODULE@VERSION]...`: reads what projects
 * need (mod/gosum.h) and makes sure all of it is committed (warm.h), with
 * a progress bar on a terminal and plain lines in a pipe. */
#include "cmd.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "mod/gosum.h"
#include "server.h"
#include "warm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The largest input file (a go.sum of a very large monorepo is a few MiB). */
#define INPUT_MAX ((size_t)64 << 20)
/* Failed versions named in the summary line. */
#define SUMMARY_NAMES 10

static const char USAGE[] =
    "usage: gomirror warm [--jobs N] [FILE|MODULE@VERSION]... [flags]\n"
    "\n"
    "Makes sure every module version named is committed to storage, "
    "fetching what\nis missing from the upstreams, N at a time (--jobs, "
    "default 4, 1 to 64).\n"
    "FILE is a go.sum (a \"/go.mod\" line needs only the .mod, a full line "
    "the zip\ntoo), a go.mod (its require directives) or module@version "
    "lines; - reads\nstandard input. Versions already committed cost no "
    "upstream request, and\nreplicas serving the same storage fetch each "
    "version once between them.\n"
    "\n"
    "On a terminal: a progress bar and one line per failure (log lines below "
    "error\nare hidden unless log_level=debug). Otherwise one line per "
    "version on stdout,\n\"ok MODULE@VERSION\" or \"FAIL MODULE@VERSION: "
    "reason\", then a summary line.\n"
    "Exit status: 0 when every version is committed, 1 when some failed, 2 "
    "for a\nusage or configuration error (nothing fetched).\n";

/* Reads all of f into out (capped at INPUT_MAX). 0 or ERR_*. */
static int read_all(FILE *f, struct buf *out) {
  char chunk[16384];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    int rc = buf_append(out, chunk, n);
    if (rc)
      return rc;
  }
  return ferror(f) ? ERR_IO : 0;
}

/* Adds what one argument names: "-" (standard input), a file, or (when no
 * such file exists and it holds '@') a module@version. */
static int add_arg(struct gosum_list *l, const char *arg, struct reason *why) {
  if (strcmp(arg, "-") != 0 && access(arg, F_OK) != 0 && strchr(arg, '@'))
    return gosum_parse(l, "argument", arg, strlen(arg), why);
  int is_stdin = strcmp(arg, "-") == 0;
  const char *name = is_stdin ? "stdin" : arg;
  FILE *f = is_stdin ? stdin : fopen(arg, "rb");
  if (!f)
    return reason_set(why, ERR_INVALID, "cannot read %.200s: %s", arg,
                      strerror(errno));
  struct buf b;
  buf_init(&b, INPUT_MAX);
  int rc = read_all(f, &b);
  int err = errno;
  if (!is_stdin)
    fclose(f);
  if (rc == ERR_TOO_LARGE)
    rc = reason_set(why, ERR_INVALID, "%.200s is larger than %zu MiB", name,
                    INPUT_MAX >> 20);
  else if (rc)
    rc = reason_set(why, ERR_INVALID, "cannot read %.200s: %s", name,
                    rc == ERR_IO ? strerror(err) : err_str(rc));
  else
    rc = gosum_parse(l, name, b.data ? b.data : "", b.len, why);
  buf_free(&b);
  return rc;
}

/* --- showing progress ---------------------------------------------------- */

struct display {
  int tty;          /* progress bar on stderr, else plain lines on stdout */
  int width;        /* the terminal's columns */
  double last_draw; /* elapsed seconds at the last redraw */
};

/* "1.2 MiB" */
static void human(uint64_t n, char *out, size_t cap) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)n;
  size_t u = 0;
  while (v >= 1024 && u + 1 < sizeof units / sizeof *units) {
    v /= 1024;
    u++;
  }
  if (u == 0)
    snprintf(out, cap, "%llu B", (unsigned long long)n);
  else
    snprintf(out, cap, "%.1f %s", v, units[u]);
}

/* "1:05" or "2:01:05" */
static void clock_text(double s, char *out, size_t cap) {
  long t = s < 0 ? 0 : s > 359999 ? 359999 : (long)(s + 0.5);
  if (t >= 3600)
    snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

/* Redraws the bar in place: [####----] done/total  bytes  rate  ETA. */
static void draw_bar(struct display *d, const struct warm_progress *p) {
  char size[24], rate[24], eta[64], stats[160];
  human(p->bytes, size, sizeof size);
  human(p->elapsed > 0.05 ? (uint64_t)((double)p->bytes / p->elapsed) : 0, rate,
        sizeof rate);
  if (p->done >= p->total)
    snprintf(eta, sizeof eta, "done");
  else if (p->done == 0)
    snprintf(eta, sizeof eta, "ETA --:--");
  else {
    char c[48];
    clock_text(p->elapsed * (double)(p->total - p->done) / (double)p->done, c,
               sizeof c);
    snprintf(eta, sizeof eta, "ETA %s", c);
  }
  int n = snprintf(stats, sizeof stats, " %zu/%zu  %s  %s/s  %s", p->done,
                   p->total, size, rate, eta);
  if (p->failed)
    n += snprintf(stats + n, sizeof stats - (size_t)n, "  %zu failed",
                  p->failed);
  /* Stay one column short of the edge: a full line would wrap. */
  int bar = d->width - 1 - n - 2;
  if (bar > 40)
    bar = 40;
  char line[256];
  size_t k = 0;
  if (bar >= 10) {
    int fill = p->total
                   ? (int)((double)bar * (double)p->done / (double)p->total)
                   : bar;
    line[k++] = '[';
    for (int i = 0; i < bar; i++)
      line[k++] = i < fill ? '#' : '-';
    line[k++] = ']';
  }
  line[k] = '\0';
  fprintf(stderr, "\r\033[K%s%s", line, stats);
  fflush(stderr);
}

static void on_progress(void *arg, const struct warm_progress *p) {
  struct display *d = arg;
  const struct warm_item *it = p->item;
  const char *m = p->entry->module, *v = p->entry->version;
  const char *err = it->rc ? (it->error ? it->error : err_str(it->rc)) : NULL;
  if (!d->tty) {
    if (err)
      printf("FAIL %s@%s: %s\n", m, v, err);
    else
      printf("ok %s@%s\n", m, v);
    fflush(stdout);
    return;
  }
  if (err)
    fprintf(stderr, "\r\033[K%s@%s: %s\n", m, v, err);
  /* Ten redraws a second at most: a run of committed versions is fast. */
  if (err || p->done >= p->total || p->elapsed - d->last_draw >= 0.1) {
    d->last_draw = p->elapsed;
    draw_bar(d, p);
  }
}

/* "warm: 6 versions, 5 committed (2 already), 1 failed (m@v), ..." */
static void summary(FILE *out, const struct gosum_list *l,
                    const struct warm_result *r) {
  char size[24];
  human(r->bytes, size, sizeof size);
  fprintf(out, "warm: %zu versions, %zu committed (%zu already), %zu failed",
          r->total, r->committed, r->already, r->failed);
  if (r->failed) {
    size_t named = 0;
    fputs(" (", out);
    for (size_t i = 0; i < r->total && named < SUMMARY_NAMES; i++)
      if (r->items[i].rc)
        fprintf(out, "%s%s@%s", named++ ? ", " : "", l->v[i].module,
                l->v[i].version);
    if (r->failed > named)
      fprintf(out, " and %zu more", r->failed - named);
    fputc(')', out);
  }
  fprintf(out, "; %s in %.1fs, %d upstream requests\n", size, r->seconds,
          r->upstream);
  fflush(out);
}

int cmd_warm(int argc, char **argv) {
  const char *jobs_s = NULL;
  struct cmd_opt opts[] = {{"jobs", 1, &jobs_s}, {NULL, 0, NULL}};
  char **args;
  int nargs, status;
  struct config cfg;
  if (cmd_config(argc, argv, USAGE, opts, &args, &nargs, &cfg, &status))
    return status;
  status = 2;
  struct reason why = {{0}};
  struct gosum_list l;
  gosum_init(&l, GOSUM_MAX);
  long jobs = 4;
  if (jobs_s) {
    char *end;
    errno = 0;
    jobs = strtol(jobs_s, &end, 10);
    if (errno || end == jobs_s || *end || jobs < 1 || jobs > WARM_JOBS_MAX) {
      fprintf(stderr, "gomirror warm: --jobs must be a number from 1 to %d\n",
              WARM_JOBS_MAX);
      goto out;
    }
  }
  if (nargs == 0) {
    fprintf(stderr, "gomirror warm: nothing to warm: name go.sum or go.mod "
                    "files, module@version arguments, or - for standard "
                    "input (see gomirror warm --help)\n");
    goto out;
  }
  for (int i = 0; i < nargs; i++) {
    int rc = add_arg(&l, args[i], &why);
    if (rc) {
      status = cmd_fail(&cfg, &why, rc);
      goto out;
    }
  }

  struct display d = {.tty = isatty(STDERR_FILENO), .width = 80};
  struct winsize ws;
  if (d.tty && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    d.width = ws.ws_col;
  /* Log lines would tear the bar apart; failures are shown anyway. The
   * logger is set up before any thread starts (cmd_open starts some). */
  if (d.tty && strcmp(cfg.log_level, "debug") != 0)
    log_setup(cfg.log_format, "error");

  struct server srv;
  int rc = cmd_open(&srv, &cfg, &why);
  if (rc) {
    status = cmd_fail(&cfg, &why, rc);
    goto out;
  }
  struct warm_result res;
  rc = warm_run(&srv, &l, (int)jobs, on_progress, &d, &res, &why);
  if (rc) {
    status = cmd_fail(&cfg, &why, rc);
  } else {
    if (d.tty) {
      if (res.total == 0) {
        struct warm_progress none = {0};
        draw_bar(&d, &none);
      }
      fputc('\n', stderr);
    }
    summary(d.tty ? stderr : stdout, &l, &res);
    status = res.failed ? 1 : 0;
  }
  warm_result_free(&res);
  cmd_close(&srv);
out:
  gosum_free(&l);
  free(args);
  config_free(&cfg);
  return status;
}
