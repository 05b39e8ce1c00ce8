/*
 * Packet capture on the switch: frames of a port group or a port,
 * written as pcap (libpcap's dump writer) through an optional BPF
 * filter (pcap_compile, matched with pcap_offline_filter).
 */
#ifndef TV_VSWITCH_CAPTURE_H
#define TV_VSWITCH_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vsw;
struct vsw_port;

struct vsw_capture {
	struct vsw_capture *next;
	int pg;				/* port group, or -1 */
	int port;			/* port id, or -1 */
	void *pcap;			/* pcap_t (dead, for the filter) */
	void *dumper;			/* pcap_dumper_t */
	void *prog;			/* struct bpf_program, or NULL */
	long limit;			/* stop after this many; 0: never */
	uint64_t seen, written;
	bool done;			/* limit reached */
	void *owner;			/* the control client that asked */
};

/*
 * Start capturing target (a port group name, a port name or number)
 * into the pcap file path, frames matching filter (a BPF expression,
 * NULL or "" for all), at most limit frames (0: until stopped).
 * 0 with *out set, or -errno with a sentence in err.
 */
int vsw_capture_start(struct vsw *sw, const char *target, const char *path,
    const char *filter, long limit, struct vsw_capture **out, char *err,
    size_t errlen);
/* Stop c (flush and close the file) and free it. */
void vsw_capture_stop(struct vsw *sw, struct vsw_capture *c);
/*
 * A frame (untagged Ethernet, no vnet header) seen in port group pg,
 * received from port p (tx false) or sent to it (tx true): written to
 * every capture it matches.
 */
void vsw_capture_frame(struct vsw *sw, int pg, const struct vsw_port *p,
    bool tx, const uint8_t *frame, size_t len);
/* Does the BPF expression compile for Ethernet?  0 or -EINVAL, err. */
int vsw_capture_check_filter(const char *filter, char *err, size_t errlen);

#endif
