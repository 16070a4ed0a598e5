/* Limits that keep one runaway client from starving everyone: a token
 * bucket of requests per identity (rate_limit/rate_burst, with per-group
 * overrides), shared by every replica through the metadata store when it
 * keeps shared buckets (Redis) and kept in this process otherwise or while
 * Redis is down; and a cap on download bandwidth per group, which is this
 * replica's (bytes leave through it). docs/access-control.md says why. */
#ifndef GOMIRROR_AUTH_RATELIMIT_H
#define GOMIRROR_AUTH_RATELIMIT_H

#include <stddef.h>

struct reason;
struct meta;
struct identity;
struct ratelimit;
struct bwbucket;

/* rate: requests per second for everyone (0: no limit); burst: bucket size
 * (0: twice the rate); groups: "name:rate/burst,..." overrides (burst
 * optional); mbps_groups: "name:Mbit/s,..." download caps. meta may be NULL.
 * 0, or ERR_CONFIG with a reason naming the bad entry. */
int ratelimit_new(long rate, long burst, const char *groups,
                  const char *mbps_groups, struct meta *meta,
                  struct ratelimit **out, struct reason *why);
void ratelimit_free(struct ratelimit *rl); /* NULL-safe */
/* 1 when requests are limited for anyone; 2 when downloads are capped
 * (and maybe requests too); 0 when rl limits nothing (or is NULL). */
int ratelimit_active(const struct ratelimit *rl);

struct rate_outcome {
  double rate, burst; /* the limit that applied (rate 0: none) */
  double retry_s;     /* when refused: seconds until a request would pass */
  int shared;         /* 1: the bucket is shared through the metadata store */
};

/* Takes one request from the bucket of key (e.g. "user:alice",
 * "addr:10.0.0.7") under the limit of id's groups (the most generous group
 * override applies, else the default). 0, or ERR_RATE_LIMITED with *out
 * filled. Never refuses because the metadata store is down. */
int ratelimit_take(struct ratelimit *rl, const char *key,
                   const struct identity *id, struct rate_outcome *out);

/* The download bandwidth bucket of id's groups (the most generous cap), or
 * NULL when id's downloads are not capped. Owned by rl. */
struct bwbucket *ratelimit_bandwidth(struct ratelimit *rl,
                                     const struct identity *id);
/* Accounts for n bytes about to be sent, sleeping first as long as the
 * group is over its rate. */
void bwbucket_take(struct bwbucket *b, size_t n);

/* Checks the syntax of the override lists, for config_check-time errors. */
int ratelimit_check_groups(const char *groups, const char *mbps_groups,
                           struct reason *why);

#endif
