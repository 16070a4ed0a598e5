/* gomirror's subcommands besides serving: each is a thin adapter over the
 * libraries, run from main() with its own arguments. */
#ifndef GOMIRROR_SERVER_CMD_H
#define GOMIRROR_SERVER_CMD_H

/* `gomirror token new --name NAME --groups G,G`; argv[0] is "token".
 * Returns the exit status. */
int cmd_token(int argc, char **argv);

#endif
