/*
 * Capture on the switch with libpcap: a "dead" pcap handle for Ethernet
 * gives the dump writer and the BPF compiler; frames are matched with
 * pcap_offline_filter, as tcpdump would on a live interface.  Frames
 * are written untagged, as their port group carries them, without the
 * vnet header (a frame whose checksum a NIC left to offload shows a
 * partial checksum, as tcpdump on a host NIC does).
 */
#include "vswitch/vswitch_proto.h"
#include "vswitch/vswitch_capture.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "vswitch/vswitch.h"

#define VSW_SNAPLEN	65535

/* Compile filter for Ethernet into *prog (NULL: no filter). */
static int
vsw_capture_compile(pcap_t *pc, const char *filter, struct bpf_program **out,
    char *err, size_t errlen)
{
	struct bpf_program *prog;

	*out = NULL;
	if (filter == NULL || filter[0] == '\0')
		return 0;
	if ((prog = calloc(1, sizeof(*prog))) == NULL)
		return -ENOMEM;
	if (pcap_compile(pc, prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		vsw_errf(err, errlen, -EINVAL, "bad filter '%s': %s",
		    filter, pcap_geterr(pc));
		free(prog);
		return -EINVAL;
	}
	*out = prog;
	return 0;
}

int
vsw_capture_check_filter(const char *filter, char *err, size_t errlen)
{
	struct bpf_program *prog;
	pcap_t *pc = pcap_open_dead(DLT_EN10MB, VSW_SNAPLEN);
	int ret;

	if (pc == NULL)
		return -ENOMEM;
	ret = vsw_capture_compile(pc, filter, &prog, err, errlen);
	if (prog != NULL) {
		pcap_freecode(prog);
		free(prog);
	}
	pcap_close(pc);
	return ret;
}

int
vsw_capture_start(struct vsw *sw, const char *target, const char *path,
    const char *filter, long limit, struct vsw_capture **out, char *err,
    size_t errlen)
{
	struct vsw_capture *c;
	struct vsw_port *p = NULL;
	struct bpf_program *prog = NULL;
	int pg = vsw_pg_find(sw, target), ret;

	if (pg < 0 && (p = vsw_port_find(sw, target)) == NULL)
		return vsw_errf(err, errlen, -ENOENT, "switch %s has no "
		    "port group or port '%s'", sw->name, target);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->pg = pg;
	c->port = p != NULL ? p->id : -1;
	c->limit = limit;
	if ((c->pcap = pcap_open_dead(DLT_EN10MB, VSW_SNAPLEN)) == NULL) {
		ret = -ENOMEM;
		goto fail;
	}
	if ((ret = vsw_capture_compile(c->pcap, filter, &prog, err,
	    errlen)) < 0)
		goto fail;
	c->prog = prog;
	if ((c->dumper = pcap_dump_open(c->pcap, path)) == NULL) {
		ret = vsw_errf(err, errlen, -EIO, "%s", pcap_geterr(
		    c->pcap));
		goto fail;
	}
	c->next = sw->caps;
	sw->caps = c;
	*out = c;
	return 0;
fail:
	if (prog != NULL) {
		pcap_freecode(prog);
		free(prog);
	}
	if (c->pcap != NULL)
		pcap_close(c->pcap);
	free(c);
	return ret;
}

void
vsw_capture_stop(struct vsw *sw, struct vsw_capture *c)
{
	struct vsw_capture **pp;

	for (pp = &sw->caps; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	if (c->dumper != NULL)
		pcap_dump_close(c->dumper);
	if (c->prog != NULL) {
		pcap_freecode(c->prog);
		free(c->prog);
	}
	if (c->pcap != NULL)
		pcap_close(c->pcap);
	free(c);
}

static bool
vsw_capture_match(const struct vsw_capture *c, int pg,
    const struct vsw_port *p, bool tx)
{
	if (c->done)
		return false;
	if (c->port >= 0)
		return p != NULL && p->id == c->port;
	/* A port group's frames once each: as they enter it. */
	return !tx && c->pg == pg;
}

void
vsw_capture_frame(struct vsw *sw, int pg, const struct vsw_port *p, bool tx,
    const uint8_t *frame, size_t len)
{
	struct pcap_pkthdr ph;
	struct vsw_capture *c;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	for (c = sw->caps; c != NULL; c = c->next) {
		if (!vsw_capture_match(c, pg, p, tx))
			continue;
		c->seen++;
		ph.ts = tv;
		ph.len = (bpf_u_int32)len;
		ph.caplen = (bpf_u_int32)(len < VSW_SNAPLEN ? len : VSW_SNAPLEN);
		if (c->prog != NULL && pcap_offline_filter(c->prog, &ph,
		    frame) == 0)
			continue;
		pcap_dump(c->dumper, &ph, frame);
		c->written++;
		if (c->limit > 0 && (long)c->written >= c->limit) {
			c->done = true;
			pcap_dump_flush(c->dumper);
		}
	}
}
