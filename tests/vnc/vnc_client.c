/*
 * A small VNC client for the tests, on libvncclient (the RFB client of
 * the libvncserver project, a real implementation nobody here wrote).
 *
 *   vnc-client ADDR type TEXT        type TEXT, then Return
 *   vnc-client ADDR frame OUT.ppm [MS]
 *                                    wait for the first whole frame, take
 *                                    updates for MS more (default 0), and
 *                                    write the screen as a binary PPM
 *   vnc-client ADDR watch SECONDS    take updates for SECONDS; print
 *                                    "updates N rects N pixels N"
 *   vnc-client ADDR pointer X Y BUTTONS
 *
 * ADDR is HOST:PORT or the path of a Unix socket.  The password, if the
 * server asks, comes from $VNC_PASSWORD.  Exit status: 0 done, 1 the
 * connection or authentication failed, 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rfb/rfbclient.h>

static unsigned long updates, rects, pixels;
static int frames;

static char *
client_password(rfbClient *cl)
{
	const char *pw = getenv("VNC_PASSWORD");

	return strdup(pw != NULL ? pw : "");
}

static void
client_rect(rfbClient *cl, int x, int y, int w, int h)
{
	rects++;
	pixels += (unsigned long)w * (unsigned long)h;
}

static void
client_finished(rfbClient *cl)
{
	updates++;
	frames++;
}

static void
client_quiet(const char *fmt, ...)
{
}

static double
client_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Serve server messages for secs seconds (or until stop is set). */
static int
client_pump(rfbClient *cl, double secs, const int *stop_after_frames)
{
	double end = client_now() + secs;

	while (client_now() < end) {
		int n = WaitForMessage(cl, 50000);

		if (n < 0)
			return -1;
		if (n > 0 && !HandleRFBServerMessage(cl))
			return -1;
		if (stop_after_frames != NULL && frames >= *stop_after_frames)
			return 0;
	}
	return stop_after_frames != NULL ? -1 : 0;
}

static rfbClient *
client_connect(const char *addr)
{
	rfbClient *cl = rfbGetClient(8, 3, 4);
	const char *colon = strrchr(addr, ':');

	if (cl == NULL)
		return NULL;
	cl->GetPassword = client_password;
	cl->GotFrameBufferUpdate = client_rect;
	cl->FinishedFrameBufferUpdate = client_finished;
	cl->canHandleNewFBSize = TRUE;
	if (addr[0] == '/' || colon == NULL) {
		cl->serverHost = strdup(addr);
		cl->serverPort = 0;
	} else {
		cl->serverHost = strndup(addr, (size_t)(colon - addr));
		cl->serverPort = atoi(colon + 1);
	}
	/* rfbInitClient frees the client when it fails. */
	if (!rfbInitClient(cl, NULL, NULL))
		return NULL;
	return cl;
}

/* Each character as its keysym (ASCII is its own keysym), down and up. */
static int
client_type(rfbClient *cl, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		uint32_t k = (unsigned char)*p;

		if (!SendKeyEvent(cl, k, TRUE) || !SendKeyEvent(cl, k, FALSE))
			return -1;
	}
	if (!SendKeyEvent(cl, XK_Return, TRUE) ||
	    !SendKeyEvent(cl, XK_Return, FALSE))
		return -1;
	/* Let the server take it all before we hang up (the guest may
	 * power off at once, closing the connection: that is fine). */
	client_pump(cl, 0.5, NULL);
	return 0;
}

static int
client_ppm(rfbClient *cl, const char *path)
{
	FILE *f = fopen(path, "wb");
	int w = cl->width, h = cl->height;

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "P6\n%d %d\n255\n", w, h);
	for (int y = 0; y < h; y++) {
		for (int x = 0; x < w; x++) {
			uint32_t p;
			uint8_t rgb[3];

			memcpy(&p, cl->frameBuffer + ((size_t)y * w + x) * 4, 4);
			/* rfbGetClient(8, 3, 4): red at bit 0, blue at 16. */
			rgb[0] = (uint8_t)(p >> cl->format.redShift);
			rgb[1] = (uint8_t)(p >> cl->format.greenShift);
			rgb[2] = (uint8_t)(p >> cl->format.blueShift);
			fwrite(rgb, 1, 3, f);
		}
	}
	return fclose(f) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	rfbClient *cl;
	int rc = 0, one = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: vnc-client ADDR type TEXT | frame OUT "
		    "[MS] | watch SECONDS | pointer X Y BUTTONS\n");
		return 2;
	}
	if (getenv("VNC_CLIENT_QUIET") != NULL)
		rfbClientLog = client_quiet;
	if ((cl = client_connect(argv[1])) == NULL) {
		fprintf(stderr, "vnc-client: cannot connect to %s\n", argv[1]);
		return 1;
	}
	if (strcmp(argv[2], "type") == 0 && argc == 4) {
		rc = client_type(cl, argv[3]);
	} else if (strcmp(argv[2], "frame") == 0 && (argc == 4 || argc == 5)) {
		rc = client_pump(cl, 20, &one);
		if (rc == 0 && argc == 5)
			rc = client_pump(cl, atoi(argv[4]) / 1000.0, NULL);
		if (rc == 0)
			rc = client_ppm(cl, argv[3]);
	} else if (strcmp(argv[2], "watch") == 0 && argc == 4) {
		rc = client_pump(cl, atof(argv[3]), NULL);
		printf("updates %lu rects %lu pixels %lu\n", updates, rects,
		    pixels);
	} else if (strcmp(argv[2], "pointer") == 0 && argc == 6) {
		rc = SendPointerEvent(cl, atoi(argv[3]), atoi(argv[4]),
		    atoi(argv[5])) ? client_pump(cl, 0.3, NULL) : -1;
	} else {
		fprintf(stderr, "vnc-client: bad command\n");
		rfbClientCleanup(cl);
		return 2;
	}
	free(cl->frameBuffer);
	rfbClientCleanup(cl);
	return rc == 0 ? 0 : 1;
}
