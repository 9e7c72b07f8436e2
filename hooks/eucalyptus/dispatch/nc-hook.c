/*
 * nc-hook: what `make install` puts into /etc/eucalyptus/nc-hooks/nchookd.
 *
 * The Eucalyptus NC runs every executable in nc-hooks as
 * HOOK EVENT EUCA_HOME [PARAM], synchronously, under its own lock and with
 * no timeout, for every event: euca-nc-pre-hyp-check on every hypervisor
 * access. This static program costs about an exec of /bin/true for the
 * events nchookd ignores (no Go runtime, no dynamic loader, no shell).
 *
 * For euca-nc-pre-boot and euca-nc-pre-clean it asks the nchookd daemon
 * itself, over its unix socket (internal/hookproto: one JSON request line,
 * one JSON response line), and answers the NC as the Go hook would. It
 * execs the Go hook (hooks/eucalyptus) at NCHOOKD_HOOK, with the NC's
 * arguments unchanged, only when the daemon does not do the work: not
 * reachable, not serving this peer, or answering "unavailable" because
 * its configuration is not the one this program assumed (hook.timeout or
 * the config file; see assume_* in internal/hookproto). When the daemon
 * took the request and then gave no answer in time, the Go hook is told
 * (NCHOOKD_NO_DAEMON=1, NCHOOKD_TIMEOUT=the time left) to rewrite by itself
 * at once, so the whole hook stays within hook.timeout.
 *
 *   cc -static -O2 -Wall -Wextra -Werror \
 *      -DNCHOOKD_HOOK='"/usr/lib/nchookd/nchookd-euca-hook"' -o nchookd nc-hook.c
 *
 * The Go hook's path is compiled in, never read from the environment: the
 * NC's environment must not choose what runs for it. The socket, config
 * path and timeout follow the Go hook's environment (NCHOOKD_SOCKET,
 * NCHOOKD_CONFIG, NCHOOKD_TIMEOUT), else the compiled-in defaults below,
 * which are config.DefaultSocket, config.DefaultPath and the default
 * hook.timeout.
 *
 * Everything here is bounded: the request (hookproto.MaxRequest), the
 * answer (hookproto.MaxLine), every socket call (SO_SNDTIMEO/SO_RCVTIMEO
 * set to the time left). Strings that are not printable ASCII are never
 * sent from here (the Go hook handles them); the daemon's error text is
 * decoded and printed with control characters replaced.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef NCHOOKD_HOOK
#error "build with -DNCHOOKD_HOOK='\"/path/to/nchookd-euca-hook\"'"
#endif
#ifndef NCHOOKD_SOCKET_DEFAULT
#define NCHOOKD_SOCKET_DEFAULT "/run/nchookd/nchookd.sock"
#endif
#ifndef NCHOOKD_CONFIG_DEFAULT
#define NCHOOKD_CONFIG_DEFAULT "/etc/nchookd/nchookd.toml"
#endif
#ifndef NCHOOKD_TIMEOUT_MS_DEFAULT
#define NCHOOKD_TIMEOUT_MS_DEFAULT 5000
#endif

#define MAX_REQUEST (16 << 10) /* hookproto.MaxRequest */
#define MAX_LINE (1 << 20)     /* hookproto.MaxLine */
#define MAX_ERROR 4096         /* of the daemon's error text, printed */

static void say(const char *s) { (void)!write(2, s, strlen(s)); }

static int64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static char *const *g_argv;

/* run_go execs the Go hook with the NC's arguments. no_daemon_left_ms >= 0:
 * the daemon was asked and gave no answer; the Go hook rewrites by itself
 * in the time left. */
static int run_go(int64_t no_daemon_left_ms)
{
	char **argv = (char **)g_argv;
	if (no_daemon_left_ms >= 0) {
		char t[32];
		if (no_daemon_left_ms < 1)
			no_daemon_left_ms = 1;
		snprintf(t, sizeof t, "%lldms", (long long)no_daemon_left_ms);
		if (setenv("NCHOOKD_NO_DAEMON", "1", 1) != 0 || setenv("NCHOOKD_TIMEOUT", t, 1) != 0)
			return 126;
	}
	/* One P: the Go hook does one thing at a time, and every thread and
	 * stack the runtime starts for idle Ps is start-up time under the
	 * NC's lock. The NC's own setting, if any, stands. */
	(void)setenv("GOMAXPROCS", "1", 0);
	/* A dependency's package init (BurntSushi/toml) asks for the local
	 * time zone, which makes Go open and parse /etc/localtime (0.4-0.9 ms
	 * of its init here, against 0.2-0.3 ms without); the hook prints and
	 * records no local time (the deadline it sends is an instant), so
	 * UTC, unless the NC set TZ. */
	(void)setenv("TZ", "UTC", 0);
	argv[0] = NCHOOKD_HOOK;
	execv(NCHOOKD_HOOK, argv);
	int e = errno; /* before write(2) may change it */
	/* One line, as the Go hook would give; 126 as a shell's exec would,
	 * except for pre-clean: as the Go hook's fallback, nchookd's own
	 * trouble never keeps the NC from cleaning an instance. */
	say("nchookd hook: ");
	say(argv[1]);
	say(": cannot run " NCHOOKD_HOOK ": ");
	say(strerror(e));
	say(" (reinstall nchookd: make install)\n");
	return strcmp(argv[1], "euca-nc-pre-clean") == 0 ? 0 : 126;
}

/* parse_timeout_ms reads the Go durations the hook accepts that matter
 * here: a decimal number (with an optional fraction) and one unit of
 * h, m, s, ms, us/µs, ns; 0 for anything else (then the default holds, as
 * the Go hook ignores a bad NCHOOKD_TIMEOUT). */
static int64_t parse_timeout_ms(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	double v = 0, scale = 1;
	int digits = 0, frac = 0;
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9') {
			if (frac)
				v += (*s - '0') * (scale /= 10);
			else
				v = v * 10 + (*s - '0');
			if (++digits > 15)
				return 0;
		} else if (*s == '.' && !frac) {
			frac = 1;
		} else {
			break;
		}
	}
	if (digits == 0)
		return 0;
	double ms;
	if (strcmp(s, "h") == 0)
		ms = v * 3600e3;
	else if (strcmp(s, "m") == 0)
		ms = v * 60e3;
	else if (strcmp(s, "s") == 0)
		ms = v * 1e3;
	else if (strcmp(s, "ms") == 0)
		ms = v;
	else if (strcmp(s, "us") == 0 || strcmp(s, "\xc2\xb5s") == 0)
		ms = v / 1e3;
	else if (strcmp(s, "ns") == 0)
		ms = v / 1e6;
	else
		return 0;
	if (ms < 1 || ms > 24 * 3600e3)
		return 0; /* sub-millisecond or absurd: leave it to the Go hook */
	return (int64_t)ms;
}

/* utc_stamp writes ns since the epoch (>= 0) as RFC 3339 in UTC with
 * nanoseconds, as Go's time.Time marshals. By hand rather than gmtime_r:
 * glibc's gmtime_r reads /etc/localtime first (tzset), a file open and
 * parse on the NC's hot path for nothing. Days to civil date: Howard
 * Hinnant's algorithm (proleptic Gregorian). */
static int utc_stamp(char *out, size_t cap, int64_t ns)
{
	int64_t secs = ns / 1000000000, days = secs / 86400, sod = secs % 86400;
	int64_t z = days + 719468, era = z / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
	int64_t y = yoe + era * 400 + (m <= 2);
	if (y > 9999)
		return 0;
	int n = snprintf(out, cap, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%09lldZ", (long long)y, (long long)m,
			 (long long)d, (long long)(sod / 3600), (long long)(sod / 60 % 60), (long long)(sod % 60),
			 (long long)(ns % 1000000000));
	return n > 0 && (size_t)n < cap;
}

/* Request building into a bounded buffer. */
struct buf {
	char *p;
	size_t n, cap;
	int over;
};

static void put(struct buf *b, const char *s)
{
	size_t l = strlen(s);
	if (b->over || l > b->cap - b->n) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->n, s, l);
	b->n += l;
}

/* printable: only printable ASCII is sent from here; anything else is the
 * Go hook's to encode (it turns invalid UTF-8 into U+FFFD the same way the
 * daemon would decode it). */
static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static void put_str(struct buf *b, const char *s)
{
	char one[2] = {0, 0};
	put(b, "\"");
	for (; *s; s++) {
		if (*s == '"')
			put(b, "\\\"");
		else if (*s == '\\')
			put(b, "\\\\");
		else {
			one[0] = *s;
			put(b, one);
		}
	}
	put(b, "\"");
}

/* set_timeouts bounds the next socket call by the time left until the
 * monotonic deadline; 0 when it has passed. */
static int set_timeouts(int fd, int64_t deadline)
{
	int64_t left = deadline - now_ns(CLOCK_MONOTONIC);
	if (left <= 0)
		return 0;
	struct timeval tv = {.tv_sec = left / 1000000000, .tv_usec = (left % 1000000000) / 1000};
	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
		return 0;
	return 1;
}

/* The answer: only these top-level keys matter; everything else is
 * skipped. */
struct answer {
	int ok, refuse, denied, unavailable;
	char error[MAX_ERROR];
};

static const char *ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int hex4(const char *p, const char *end)
{
	if (end - p < 4)
		return -1;
	int v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* out_rune appends code point r to out (bounded, always terminated), as
 * UTF-8, with control and format characters replaced by '?'. */
static void out_rune(char *out, size_t cap, size_t *n, uint32_t r)
{
	char u[4];
	size_t l;
	/* Control characters, and the format characters that reorder or hide
	 * text (bidi controls, zero-width), never reach the NC's log raw. */
	if (r < 0x20 || (r >= 0x7f && r < 0xa0) || r == 0xad || (r >= 0x200b && r <= 0x200f) ||
	    (r >= 0x202a && r <= 0x202e) || (r >= 0x2060 && r <= 0x206f) || r == 0xfeff)
		r = '?';
	if (r < 0x80) {
		u[0] = (char)r;
		l = 1;
	} else if (r < 0x800) {
		u[0] = (char)(0xc0 | (r >> 6));
		u[1] = (char)(0x80 | (r & 0x3f));
		l = 2;
	} else if (r < 0x10000) {
		u[0] = (char)(0xe0 | (r >> 12));
		u[1] = (char)(0x80 | ((r >> 6) & 0x3f));
		u[2] = (char)(0x80 | (r & 0x3f));
		l = 3;
	} else {
		u[0] = (char)(0xf0 | (r >> 18));
		u[1] = (char)(0x80 | ((r >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((r >> 6) & 0x3f));
		u[3] = (char)(0x80 | (r & 0x3f));
		l = 4;
	}
	if (out == NULL || *n + l + 1 > cap)
		return;
	memcpy(out + *n, u, l);
	*n += l;
	out[*n] = '\0';
}

/* utf8 decodes the UTF-8 sequence at p into *r (U+FFFD when it is not
 * valid) and returns what follows it. */
static const char *utf8(const char *p, const char *end, uint32_t *r)
{
	unsigned char c = (unsigned char)*p;
	int l = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
	uint32_t v = l == 4 ? c & 0x07 : l == 3 ? c & 0x0f : c & 0x1f;
	*r = 0xfffd;
	if (l == 0 || end - p < l)
		return p + 1;
	for (int i = 1; i < l; i++) {
		unsigned char d = (unsigned char)p[i];
		if ((d & 0xc0) != 0x80)
			return p + 1;
		v = v << 6 | (d & 0x3f);
	}
	if ((l == 3 && v < 0x800) || (l == 4 && (v < 0x10000 || v > 0x10ffff)) || (v >= 0xd800 && v < 0xe000))
		return p + 1;
	*r = v;
	return p + l;
}

/* str parses a JSON string at p (at its quote) and returns what follows it,
 * NULL if malformed. The decoded text goes to out (NULL: skipped), as
 * out_rune writes it. */
static const char *str(const char *p, const char *end, char *out, size_t cap)
{
	size_t n = 0;
	if (out != NULL && cap > 0)
		out[0] = '\0';
	if (p >= end || *p != '"')
		return NULL;
	for (p++; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c != '\\') {
			uint32_t r = c;
			if (c >= 0x80)
				p = utf8(p, end, &r) - 1;
			out_rune(out, cap, &n, r);
			continue;
		}
		if (++p >= end)
			return NULL;
		uint32_t r;
		switch (*p) {
		case '"': r = '"'; break;
		case '\\': r = '\\'; break;
		case '/': r = '/'; break;
		case 'b': r = '\b'; break;
		case 'f': r = '\f'; break;
		case 'n': r = '\n'; break;
		case 'r': r = '\r'; break;
		case 't': r = '\t'; break;
		case 'u': {
			int v = hex4(p + 1, end);
			if (v < 0)
				return NULL;
			p += 4;
			r = (uint32_t)v;
			if (r >= 0xd800 && r < 0xdc00 && end - p >= 7 && p[1] == '\\' && p[2] == 'u') {
				int lo = hex4(p + 3, end);
				if (lo >= 0xdc00 && lo < 0xe000) {
					r = 0x10000 + ((r - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
					p += 6;
				}
			}
			if (r >= 0xd800 && r < 0xe000)
				r = 0xfffd; /* a lone surrogate */
			break;
		}
		default:
			return NULL;
		}
		out_rune(out, cap, &n, r);
	}
	return NULL;
}

/* skip passes over one JSON value (of any depth, iteratively) and returns
 * what follows it, NULL if malformed. */
static const char *skip(const char *p, const char *end)
{
	long depth = 0;
	p = ws(p, end);
	do {
		if (p >= end)
			return NULL;
		if (*p == '"') {
			if ((p = str(p, end, NULL, 0)) == NULL)
				return NULL;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			if (--depth < 0)
				return NULL;
			p++;
		} else if (*p == ',' || *p == ':' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			if (depth == 0)
				return NULL;
			p++;
		} else if (strchr("-0123456789.eE+truefalsn", *p) != NULL) {
			while (p < end && strchr("-0123456789.eE+truefalsn", *p) != NULL)
				p++;
		} else {
			return NULL;
		}
	} while (depth > 0);
	return p;
}

/* parse reads the answer object; 0 if malformed. */
static int parse(const char *p, const char *end, struct answer *a)
{
	memset(a, 0, sizeof *a);
	p = ws(p, end);
	if (p >= end || *p != '{')
		return 0;
	p = ws(p + 1, end);
	if (p < end && *p == '}')
		return ws(p + 1, end) == end;
	for (;;) {
		char key[16];
		if ((p = str(ws(p, end), end, key, sizeof key)) == NULL)
			return 0;
		p = ws(p, end);
		if (p >= end || *p != ':')
			return 0;
		p = ws(p + 1, end);
		int *flag = NULL;
		if (strcmp(key, "ok") == 0)
			flag = &a->ok;
		else if (strcmp(key, "refuse") == 0)
			flag = &a->refuse;
		else if (strcmp(key, "denied") == 0)
			flag = &a->denied;
		else if (strcmp(key, "unavailable") == 0)
			flag = &a->unavailable;
		if (flag != NULL && end - p >= 4 && memcmp(p, "true", 4) == 0) {
			*flag = 1;
			p += 4;
		} else if (flag != NULL && end - p >= 5 && memcmp(p, "false", 5) == 0) {
			*flag = 0;
			p += 5;
		} else if (flag != NULL) {
			return 0;
		} else if (strcmp(key, "error") == 0) {
			if ((p = str(p, end, a->error, sizeof a->error)) == NULL)
				return 0;
		} else if ((p = skip(p, end)) == NULL) {
			return 0;
		}
		p = ws(p, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == '}')
			return ws(p + 1, end) == end;
		return 0;
	}
}

static char answer_buf[MAX_LINE + 1];

/* ask_daemon: the daemon's exit code for the NC, or -1 to run the Go hook
 * as the NC would (*gone = time left when the daemon must be skipped). */
static int ask_daemon(char **argv, int64_t *gone)
{
	const char *event = argv[1], *home = argv[2], *dir = argv[3];
	const char *sock = getenv("NCHOOKD_SOCKET");
	const char *conf = getenv("NCHOOKD_CONFIG");
	int64_t t0 = now_ns(CLOCK_MONOTONIC), wall0 = now_ns(CLOCK_REALTIME);
	int64_t timeout_ms = parse_timeout_ms(getenv("NCHOOKD_TIMEOUT"));
	int assumed = timeout_ms == 0;
	struct sockaddr_un sa;

	*gone = -1;
	if (sock == NULL || *sock == '\0')
		sock = NCHOOKD_SOCKET_DEFAULT;
	if (conf == NULL || *conf == '\0')
		conf = NCHOOKD_CONFIG_DEFAULT;
	if (assumed)
		timeout_ms = NCHOOKD_TIMEOUT_MS_DEFAULT;
	if (!printable(event) || !printable(home) || !printable(dir) || !printable(conf) ||
	    strlen(sock) >= sizeof sa.sun_path)
		return -1;

	/* As the Go hook: the daemon gets four fifths of hook.timeout and is
	 * told to write nothing after that, less the answer's trip back. */
	int64_t call_ns = timeout_ms * 1000000 * 4 / 5;
	int64_t margin = timeout_ms * 1000000 / 20;
	if (margin > 100000000)
		margin = 100000000;
	int64_t deadline = t0 + call_ns;
	int64_t wall_dl = wall0 + call_ns - margin;
	char stamp[64], num[32];
	if (wall_dl < 0 || !utc_stamp(stamp, sizeof stamp, wall_dl))
		return -1;

	static char req[MAX_REQUEST];
	struct buf b = {req, 0, sizeof req - 1, 0};
	put(&b, "{\"op\":\"hook\",\"event\":");
	put_str(&b, event);
	put(&b, ",\"euca_home\":");
	put_str(&b, home);
	put(&b, ",\"instance_dir\":");
	put_str(&b, dir);
	put(&b, ",\"deadline\":\"");
	put(&b, stamp);
	put(&b, "\",\"assume_config\":");
	put_str(&b, conf);
	if (assumed) {
		snprintf(num, sizeof num, "%lld", (long long)timeout_ms);
		put(&b, ",\"assume_timeout_ms\":");
		put(&b, num);
	}
	put(&b, "}\n");
	if (b.over)
		return -1;

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	/* connect waits (a full backlog) at most SO_SNDTIMEO. */
	if (!set_timeouts(fd, deadline) || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1; /* not reachable: the Go hook asks and falls back */
	}
	for (size_t off = 0; off < b.n;) {
		ssize_t w;
		if (!set_timeouts(fd, deadline))
			goto noanswer;
		w = send(fd, req + off, b.n - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (off == 0) { /* nothing of it reached the daemon */
				close(fd);
				return -1;
			}
			goto noanswer;
		}
		off += (size_t)w;
	}
	size_t n = 0;
	char *nl = NULL;
	while (nl == NULL) {
		ssize_t r;
		if (n >= MAX_LINE || !set_timeouts(fd, deadline))
			goto noanswer;
		r = recv(fd, answer_buf + n, MAX_LINE - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto noanswer;
		nl = memchr(answer_buf + n, '\n', (size_t)r);
		n += (size_t)r;
	}
	close(fd);
	struct answer a;
	if (!parse(answer_buf, nl, &a)) {
		*gone = (t0 + timeout_ms * 1000000 - now_ns(CLOCK_MONOTONIC)) / 1000000;
		return -1;
	}
	if (a.unavailable)
		return -1; /* not as assumed: the Go hook reads the config and asks */
	if (a.denied) {
		*gone = (t0 + timeout_ms * 1000000 - now_ns(CLOCK_MONOTONIC)) / 1000000;
		return -1;
	}
	if (a.refuse) {
		say("nchookd: ");
		say(a.error);
		say("\n");
		return 1;
	}
	if (!a.ok && a.error[0] != '\0') {
		say("nchookd: ");
		say(a.error);
		say(" (booting as the NC wrote it: hook.on_error = boot)\n");
	}
	return 0;

noanswer:
	/* The daemon took the request and gave no answer: past its deadline it
	 * writes nothing, so the Go hook rewrites by itself in the time left. */
	close(fd);
	*gone = (t0 + timeout_ms * 1000000 - now_ns(CLOCK_MONOTONIC)) / 1000000;
	return -1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 0;
	if (strcmp(argv[1], "euca-nc-pre-boot") != 0 && strcmp(argv[1], "euca-nc-pre-clean") != 0)
		return 0; /* an event nchookd ignores */
	g_argv = argv;
	if (argc != 4 || argv[3][0] == '\0')
		return run_go(-1); /* the Go hook says what is wrong */
	int64_t left = -1;
	int code = ask_daemon(argv, &left);
	if (code >= 0)
		return code;
	return run_go(left);
}
