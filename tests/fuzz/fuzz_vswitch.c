/*
 * libFuzzer target: what a NIC or a VXLAN peer can send the switch.
 * The input is a hello, then messages (2-byte length prefix each) from
 * an access port, a trunk port and a VXLAN peer, forwarded by the real
 * data path to socketpair ports (offload completion and segmentation
 * included); the same bytes also go through the configuration parser.
 * Nothing may crash, and every delivered message must fit the protocol.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vswitch/vswitch.h"
#include "vswitch/vswitch_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vsw sw;
static struct vsw_port *ports[4];
static int peers[4];
static uint8_t msg[VSW_MAX_MSG + 64];

static void
fuzz_setup(void)
{
	static const char *pgs[] = { "lan", "v10", "trunk", "lan" };
	char err[256];
	int i, sv[2];

	if (vsw_init(&sw, "fuzz") < 0 ||
	    vsw_pg_add(&sw, "lan", 0, NULL, err, sizeof(err)) < 0 ||
	    vsw_pg_add(&sw, "v10", 10, NULL, err, sizeof(err)) < 0 ||
	    vsw_pg_add(&sw, "trunk", 0, "all", err, sizeof(err)) < 0)
		abort();
	for (i = 0; i < 4; i++) {
		struct vsw_hello h = { .magic = VSW_MAGIC,
		    .version = VSW_VERSION, .features = i == 3 ? VSW_F_CSUM |
		    VSW_F_GSO : 0, .mac = { 2, 0, 0, 0, 0, (uint8_t)i } };

		strcpy(h.portgroup, pgs[i]);
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0,
		    sv) < 0 || (ports[i] = vsw_port_add_nic(&sw, sv[0], &h,
		    err, sizeof(err))) == NULL)
			abort();
		peers[i] = sv[1];
	}
	ports[3] = vsw_port_add(&sw, VSW_PORT_PEER, -1, -1, "peer:x", 0);
}

/* Whatever the switch delivered must be a well-formed message. */
static void
fuzz_drain(void)
{
	ssize_t n;
	int i;

	for (i = 0; i < 3; i++)
		while ((n = recv(peers[i], msg, sizeof(msg), MSG_DONTWAIT)) >= 0)
			if ((size_t)n < sizeof(struct vsw_net_hdr) + 14 ||
			    (size_t)n > VSW_MAX_MSG)
				abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vsw_hello h;
	struct vsw_conf conf;
	char err[256];
	size_t off = 0, len;
	long vni;
	int who = 0;

	if (sw.rxbuf == NULL)
		fuzz_setup();
	(void)vsw_conf_parse("fuzz.conf", (const char *)data, size, &conf,
	    err, sizeof(err));
	if (size >= sizeof(h))
		(void)vsw_hello_check(data, sizeof(h), &h, err, sizeof(err));
	while (off + 2 <= size) {
		len = (size_t)(data[off] | data[off + 1] << 8) % 4096;
		off += 2;
		if (len > size - off)
			len = size - off;
		memcpy(msg, data + off, len);
		off += len;
		if (who == 3) {
			if ((vni = vsw_vxlan_parse(msg, len)) >= 0)
				(void)vsw_peer_input(&sw, ports[3],
				    (uint32_t)vni, msg + 8, len - 8);
		} else {
			(void)vsw_port_input(&sw, ports[who], msg, len);
		}
		vsw_flush(&sw);
		fuzz_drain();
		who = (who + 1) % 4;
	}
	return 0;
}
