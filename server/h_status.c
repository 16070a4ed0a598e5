/* GET /: the status page, one HTML page rendered here with inline CSS and
 * no scripts, so it works offline and behind any proxy. It answers what an
 * operator asks first: is this replica ready (and why not), how busy is it,
 * what does it serve most, do its upstreams, checksum databases, storage and
 * Redis answer, and what were the last errors. Like /stats (h_admin.c) it
 * shows only modules the caller may read, private ones and per-user detail
 * to administrators only; every string from outside is escaped. */
#include "access.h"
#include "auth/auth.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "counters.h"
#include "hot.h"
#include "http.h"
#include "metrics.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"
#include "sumdb.h"
#include "upstream.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGE_MAX (1u << 20)
#define CT_HTML "text/html; charset=utf-8"
/* Inline styles only; the empty data: icon keeps browsers from asking for
 * /favicon.ico. */
#define PAGE_HEADERS                                                           \
  "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "   \
  "img-src data:\r\nX-Content-Type-Options: nosniff\r\n"

/* The page being built; the first failed append sticks, so a page that ran
 * out of room is answered 500, never sent half-made. */
struct page {
  struct buf b;
  int rc;
};

static void raw(struct page *p, const char *s) {
  if (!p->rc)
    p->rc = buf_append(&p->b, s, strlen(s));
}

/* For numbers and fixed markup only: never for a string from outside. */
__attribute__((format(printf, 2, 3))) static void rawf(struct page *p,
                                                       const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof line)
    p->rc = p->rc ? p->rc : ERR_TOO_LARGE;
  else
    raw(p, line);
}

/* Text escaped for HTML element content and quoted attributes; control
 * characters become '?'. */
static void text(struct page *p, const char *s) {
  for (const char *run = s;; s++) {
    const char *rep = NULL;
    switch (*s) {
    case '&':
      rep = "&amp;";
      break;
    case '<':
      rep = "&lt;";
      break;
    case '>':
      rep = "&gt;";
      break;
    case '"':
      rep = "&quot;";
      break;
    case '\'':
      rep = "&#39;";
      break;
    default:
      if (*s && ((unsigned char)*s < 0x20 || *s == 0x7f))
        rep = "?";
    }
    if (!rep && *s)
      continue;
    if (!p->rc && s > run)
      p->rc = buf_append(&p->b, run, (size_t)(s - run));
    if (!*s)
      return;
    raw(p, rep);
    run = s + 1;
  }
}

static void fmt_bytes(long long n, char *out, size_t cap) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)n;
  size_t u = 0;
  while (v >= 1024 && u + 1 < sizeof units / sizeof *units) {
    v /= 1024;
    u++;
  }
  snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void fmt_span(long long s, char *out, size_t cap) {
  if (s < 0)
    s = 0;
  if (s < 60)
    snprintf(out, cap, "%lld s", s);
  else if (s < 3600)
    snprintf(out, cap, "%lld min %lld s", s / 60, s % 60);
  else if (s < 86400)
    snprintf(out, cap, "%lld h %lld min", s / 3600, s % 3600 / 60);
  else
    snprintf(out, cap, "%lld d %lld h", s / 86400, s % 86400 / 3600);
}

static void fmt_ago(time_t at, time_t now, char *out, size_t cap) {
  if (!at) {
    snprintf(out, cap, "never");
    return;
  }
  char span[48];
  fmt_span((long long)(now - at), span, sizeof span);
  snprintf(out, cap, "%s ago", span);
}

static void fmt_time(time_t at, char *out, size_t cap) {
  struct tm tm;
  if (!gmtime_r(&at, &tm) || !strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm))
    snprintf(out, cap, "?");
}

static void fmt_ratio(long long hits, long long misses, char *out, size_t cap) {
  if (hits + misses <= 0)
    snprintf(out, cap, "n/a");
  else
    snprintf(out, cap, "%.1f %%",
             100.0 * (double)hits / (double)(hits + misses));
}

/* What /readyz would answer now (h_health.c: the same checks in the same
 * order), plus each backend's own state for its section. */
struct readiness {
  const char *state; /* "ready", "degraded", "not ready" */
  char reason[REASON_MAX + 64];
  int storage_rc, meta_rc;
  struct reason storage_why, meta_why;
};

static void readiness(struct server *srv, struct readiness *out) {
  memset(out, 0, sizeof *out);
  out->storage_rc = storage_ready(srv->store, &out->storage_why);
  out->meta_rc = srv->meta->ops->ready(srv->meta, &out->meta_why);
  const char *storage = reason_text(&out->storage_why, out->storage_rc);
  if (atomic_load(&srv->draining)) {
    out->state = "not ready";
    snprintf(out->reason, sizeof out->reason, "draining: shutting down");
  } else if (atomic_load(&srv->starting)) {
    out->state = "not ready";
    snprintf(out->reason, sizeof out->reason, "waiting for storage: %s",
             out->storage_rc ? storage : "it answers now");
  } else if (!out->storage_rc) {
    out->state = out->meta_rc ? "degraded" : "ready";
    if (out->meta_rc)
      snprintf(out->reason, sizeof out->reason, "%s",
               reason_text(&out->meta_why, ERR_UNAVAILABLE));
  } else if (hot_bytes(srv->hot) == 0) {
    out->state = "not ready";
    snprintf(out->reason, sizeof out->reason, "%s", storage);
  } else {
    out->state = "degraded";
    snprintf(out->reason, sizeof out->reason,
             "serving cached artifacts only: %s", storage);
  }
}

static const char *state_class(const char *state) {
  return state[0] == 'r' ? "ok" : state[0] == 'd' ? "warn" : "bad";
}

static const char style[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;"
    "background:#f4f5f7}"
    "main{max-width:1100px;margin:0 auto;padding:16px 20px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 8px}"
    ".sub{color:#5b6475;margin:0 0 16px}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,"
    "1fr));gap:14px}"
    "section{background:#fff;border:1px solid #dfe2e8;border-radius:6px;"
    "padding:12px 14px;overflow-x:auto}"
    "section.wide{grid-column:1/-1}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;padding:3px 8px 3px 0;border-bottom:1px solid "
    "#eef0f3;vertical-align:top}"
    "th{font-weight:600;color:#5b6475}td.n,th.n{text-align:right}"
    "td.t{font-family:ui-monospace,monospace;font-size:12px;"
    "word-break:break-all}"
    ".ok{color:#17663a}.warn{color:#8a5a00}.bad{color:#b42318}"
    ".badge{display:inline-block;padding:1px 8px;border-radius:10px;"
    "font-weight:600;border:1px solid currentColor}"
    ".none{color:#8a91a0}";

static void head(struct page *p, const char *host, long long uptime,
                 const struct readiness *rd) {
  char up[48];
  fmt_span(uptime, up, sizeof up);
  raw(p, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width\">"
         "<link rel=\"icon\" href=\"data:,\"><title>gomirror ");
  text(p, host);
  raw(p, "</title><style>");
  raw(p, style);
  raw(p, "</style></head><body><main>\n<h1>gomirror <span id=\"version\">");
  text(p, GOMIRROR_VERSION);
  raw(p, "</span></h1>\n<p class=\"sub\">replica <b id=\"replica\">");
  text(p, host);
  rawf(p,
       "</b> &middot; up <span id=\"uptime\">%s</span> &middot; "
       "<span id=\"ready\" class=\"badge %s\">",
       up, state_class(rd->state));
  text(p, rd->state);
  raw(p, "</span>");
  if (rd->reason[0]) {
    raw(p, " <span id=\"ready-reason\">");
    text(p, rd->reason);
    raw(p, "</span>");
  }
  raw(p, "</p>\n<div class=\"grid\">\n");
}

static void traffic(struct page *p, struct metrics *m) {
  long long win[3][MT__COUNT];
  metrics_window(m, 60, win[0]);
  metrics_window(m, 3600, win[1]);
  for (int i = 0; i < MT__COUNT; i++)
    win[2][i] = atomic_load_explicit(&m->totals[i], memory_order_relaxed);
  static const char *const ids[3] = {"minute", "hour", "start"};
  raw(p, "<section><h2>Traffic on this replica</h2><table>"
         "<tr><th></th><th class=\"n\">last minute</th><th class=\"n\">last "
         "hour</th><th class=\"n\">since start</th></tr>");
  static const struct {
    const char *label, *id;
    int total;
  } rows[] = {{"requests", "requests", MT_REQUESTS},
              {"bytes served", "bytes", MT_BYTES},
              {"cache hits", "hits", MT_HITS},
              {"misses (fetched)", "misses", MT_MISSES},
              {"5xx answers", "errors", MT_5XX}};
  for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
    rawf(p, "<tr><th>%s</th>", rows[r].label);
    for (int w = 0; w < 3; w++) {
      char v[32];
      long long n = win[w][rows[r].total];
      if (rows[r].total == MT_BYTES)
        fmt_bytes(n, v, sizeof v);
      else
        snprintf(v, sizeof v, "%lld", n);
      rawf(p, "<td class=\"n\" id=\"%s-%s\">%s</td>", rows[r].id, ids[w], v);
    }
    raw(p, "</tr>");
  }
  raw(p, "<tr><th>hit ratio</th>");
  for (int w = 0; w < 3; w++) {
    char v[32];
    fmt_ratio(win[w][MT_HITS], win[w][MT_MISSES], v, sizeof v);
    rawf(p, "<td class=\"n\" id=\"ratio-%s\">%s</td>", ids[w], v);
  }
  raw(p, "</tr></table></section>\n");
}

/* Whether the caller may see module named in a count or an error line. */
static int may_see(struct req *r, int admin, const char *module) {
  struct server *srv = r->srv;
  if (admin || !module[0])
    return 1;
  if (module[0] == '\x01' || access_is_private(r, module))
    return 0;
  return !srv->auth || auth_may_read(srv->auth, &r->id, module, NULL);
}

static void cluster(struct page *p, struct req *r, int admin) {
  struct server *srv = r->srv;
  /* Let the hits before this request reach the store first (as /stats). */
  counters_sync(srv->counters, 1000);
  struct meta_stats ms;
  memset(&ms, 0, sizeof ms);
  int rc = srv->meta->ops->stats_get(srv->meta, &ms);
  raw(p, "<section><h2>All replicas (metadata store)</h2>");
  if (rc) {
    raw(p, "<p class=\"bad\">counts unavailable: the metadata store does not "
           "answer</p>");
  } else {
    char ratio[32];
    fmt_ratio(ms.hits, ms.misses, ratio, sizeof ratio);
    rawf(p,
         "<table><tr><th>hits</th><td class=\"n\" id=\"all-hits\">%lld</td>"
         "</tr><tr><th>misses</th><td class=\"n\" id=\"all-misses\">%lld</td>"
         "</tr><tr><th>hit ratio</th><td class=\"n\" id=\"all-ratio\">%s</td>"
         "</tr><tr><th>upstream fetches</th><td class=\"n\">%lld</td></tr>"
         "<tr><th>5xx answers</th><td class=\"n\">%lld</td></tr></table>",
         ms.hits, ms.misses, ratio, ms.upstream_fetches, ms.errors);
  }
  raw(p, "</section>\n<section><h2>Top modules today</h2>"
         "<table id=\"top-modules\"><tr><th>module</th><th class=\"n\">"
         "requests</th></tr>");
  size_t shown = 0;
  for (size_t i = 0; !rc && i < ms.ntop; i++) {
    if (!may_see(r, admin, ms.top[i].module))
      continue;
    raw(p, "<tr><td class=\"t\">");
    text(p, ms.top[i].module);
    rawf(p, "</td><td class=\"n\">%lld</td></tr>", ms.top[i].hits);
    shown++;
  }
  if (!shown)
    raw(p, "<tr><td class=\"none\" colspan=\"2\">none yet</td></tr>");
  raw(p, "</table></section>\n");
  if (!srv->auth || !admin)
    return;
  raw(p, "<section><h2>Top users today</h2><table id=\"top-users\"><tr><th>"
         "user</th><th class=\"n\">requests</th></tr>");
  for (size_t i = 0; !rc && i < ms.nusers; i++) {
    raw(p, "<tr><td class=\"t\">");
    text(p, ms.top_users[i].user);
    rawf(p, "</td><td class=\"n\">%lld</td></tr>", ms.top_users[i].requests);
  }
  if (rc || !ms.nusers)
    raw(p, "<tr><td class=\"none\" colspan=\"2\">none yet</td></tr>");
  raw(p, "</table></section>\n");
}

/* One row of the upstream table: its times and, for those who may see
 * it, the last error's text (it may name a module). */
static void peer_row(struct page *p, const char *name, const char *kind,
                     struct metrics_peer *peer, int details, time_t now) {
  raw(p, "<tr><td class=\"t\">");
  text(p, name);
  raw(p, "</td><td>");
  text(p, kind);
  raw(p, "</td>");
  if (!peer) {
    raw(p, "<td class=\"none\" colspan=\"3\">not tracked</td></tr>");
    return;
  }
  time_t ok_at, fail_at;
  char why[METRICS_TEXT_WORDS * 8], ok[64], fail[64];
  metrics_peer_read(peer, &ok_at, &fail_at, why, sizeof why);
  fmt_ago(ok_at, now, ok, sizeof ok);
  fmt_ago(fail_at, now, fail, sizeof fail);
  int failing = fail_at && fail_at >= ok_at;
  rawf(p, "<td class=\"%s\">%s</td><td class=\"%s\">%s</td><td class=\"t\">",
       ok_at ? "ok" : "none", ok,
       failing   ? "bad"
       : fail_at ? ""
                 : "none",
       fail);
  if (fail_at && details)
    text(p, why);
  else if (fail_at)
    raw(p, "<span class=\"none\">shown to administrators</span>");
  raw(p, "</td></tr>");
}

static void peers(struct page *p, struct server *srv, int details, time_t now) {
  raw(p, "<section class=\"wide\"><h2>Upstreams and checksum databases</h2>"
         "<table id=\"upstreams\"><tr><th>upstream</th><th>kind</th><th>last "
         "answer</th><th>last error</th><th>error</th></tr>");
  for (size_t i = 0; srv->up && i < srv->up->n; i++) {
    const struct up_entry *e = &srv->up->v[i];
    if (e->kind == UP_PROXY)
      peer_row(p, e->shown, "proxy", e->health, details, now);
    else if (e->kind == UP_DIRECT)
      peer_row(p, "direct", "version control", NULL, details, now);
    else
      peer_row(p, "off", "end of chain", NULL, details, now);
  }
  for (size_t i = 0; srv->sumdbs && i < srv->sumdbs->n; i++) {
    const struct sumdb_entry *db = &srv->sumdbs->v[i];
    char name[600];
    snprintf(name, sizeof name, "%s (%s)", db->name, db->shown);
    peer_row(p, name, "checksum database",
             metrics_sumdb_peer(&srv->metrics, srv->sumdbs, db), details, now);
  }
  raw(p, "</table></section>\n");
}

static void backends(struct page *p, struct server *srv,
                     const struct readiness *rd) {
  raw(p, "<section><h2>Storage</h2><p>");
  text(p, srv->store->ops->name);
  rawf(p, ": <span id=\"storage-state\" class=\"%s\">",
       rd->storage_rc ? "bad" : "ok");
  text(p, rd->storage_rc ? reason_text(&rd->storage_why, rd->storage_rc)
                         : "answers");
  raw(p, "</span></p><table><tr><th>operation</th><th class=\"n\">count</th>"
         "<th class=\"n\">mean</th><th class=\"n\">errors</th></tr>");
  for (int op = 0; op < STORAGE_OP__COUNT; op++) {
    struct storage_op_stats st;
    storage_op_stats(srv->store, (enum storage_op)op, &st);
    long long n = st.bucket[STORAGE_LATENCY_BUCKETS];
    rawf(p,
         "<tr><td>%s</td><td class=\"n\">%lld</td><td class=\"n\">%.2f ms"
         "</td><td class=\"n\">%lld</td></tr>",
         storage_op_name((enum storage_op)op), n,
         n ? (double)st.micros / 1e3 / (double)n : 0.0, st.errors);
  }
  raw(p, "</table></section>\n<section><h2>Metadata</h2><p>");
  text(p, srv->meta->ops->name);
  rawf(p, ": <span id=\"meta-state\" class=\"%s\">",
       rd->meta_rc ? "bad" : "ok");
  text(p, rd->meta_rc ? reason_text(&rd->meta_why, rd->meta_rc) : "answers");
  raw(p, "</span></p>");
  struct meta_op_stats ms;
  memset(&ms, 0, sizeof ms);
  if (srv->meta->ops->op_stats)
    srv->meta->ops->op_stats(srv->meta, &ms);
  static const char *const names[META_OP__COUNT] = {"commands", "pipelines"};
  raw(p, "<table><tr><th>round trips</th><th class=\"n\">count</th>"
         "<th class=\"n\">mean</th><th class=\"n\">errors</th></tr>");
  for (int i = 0; i < META_OP__COUNT; i++)
    rawf(p,
         "<tr><td>%s</td><td class=\"n\">%lld</td><td class=\"n\">%.2f ms"
         "</td><td class=\"n\">%lld</td></tr>",
         names[i], ms.count[i],
         ms.count[i] ? (double)ms.micros[i] / 1e3 / (double)ms.count[i] : 0.0,
         ms.errors[i]);
  struct counters_local cl;
  counters_local(srv->counters, &cl);
  char hot[32];
  fmt_bytes((long long)hot_bytes(srv->hot), hot, sizeof hot);
  rawf(p,
       "</table><table><tr><th>hit counts queued / flushed / dropped</th>"
       "<td class=\"n\">%lld / %lld / %lld</td></tr>"
       "<tr><th>hot cache</th><td class=\"n\">%s</td></tr>"
       "<tr><th>requests in flight / worker threads</th><td class=\"n\">"
       "%ld / %ld</td></tr></table></section>\n",
       cl.queued, cl.flushed, cl.dropped, hot, atomic_load(&srv->in_flight),
       srv->cfg->threads);
}

static void errors(struct page *p, struct req *r, int admin) {
  struct metrics_error_line lines[METRICS_ERRORS];
  size_t n = metrics_errors(&r->srv->metrics, lines, METRICS_ERRORS);
  raw(p, "<section class=\"wide\"><h2>Last errors (5xx answers)</h2>"
         "<table id=\"errors\"><tr><th>time (UTC)</th><th>status</th><th>"
         "request</th><th>reason</th></tr>");
  size_t shown = 0;
  for (size_t i = 0; i < n; i++) {
    if (!may_see(r, admin, lines[i].module))
      continue;
    char at[32];
    fmt_time(lines[i].at, at, sizeof at);
    rawf(p, "<tr><td>%s</td><td class=\"bad\">%d</td><td class=\"t\">", at,
         lines[i].status);
    text(p, lines[i].request);
    raw(p, "</td><td class=\"t\">");
    text(p, lines[i].reason);
    raw(p, "</td></tr>");
    shown++;
  }
  if (!shown)
    raw(p, "<tr><td class=\"none\" colspan=\"4\">none</td></tr>");
  raw(p, "</table></section>\n");
}

int h_status(struct req *r) {
  struct server *srv = r->srv;
  if (r->id.source != AUTH_ADMIN_TOKEN && !access_any(r))
    return r->status;
  int admin = r->id.source == AUTH_ADMIN_TOKEN ||
              (srv->auth && auth_is_admin(srv->auth, &r->id));
  char host[256];
  if (gethostname(host, sizeof host) != 0)
    snprintf(host, sizeof host, "?");
  host[sizeof host - 1] = '\0';
  struct metrics_process proc;
  metrics_process(&proc);
  time_t now = time(NULL);
  struct readiness rd;
  readiness(srv, &rd);
  struct page p = {.rc = 0};
  buf_init(&p.b, PAGE_MAX);
  head(&p, host,
       proc.start_time > 0 ? (long long)((double)now - proc.start_time) : 0,
       &rd);
  traffic(&p, &srv->metrics);
  cluster(&p, r, admin);
  peers(&p, srv, admin || !srv->auth, now);
  backends(&p, srv, &rd);
  errors(&p, r, admin);
  char at[32];
  fmt_time(now, at, sizeof at);
  rawf(&p,
       "</div><p class=\"sub\">rendered %s UTC &middot; "
       "<a href=\"metrics\">metrics</a> &middot; <a href=\"stats\">stats"
       "</a></p></main></body></html>\n",
       at);
  int st = p.rc ? http_fail(r, p.rc == ERR_TOO_LARGE ? ERR_NOMEM : p.rc, NULL)
                : http_send(r, 200, CT_HTML, CACHE_NONE, PAGE_HEADERS, p.b.data,
                            p.b.len);
  buf_free(&p.b);
  return st;
}
