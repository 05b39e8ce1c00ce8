/*
 * libFuzzer target: the .vmx parser and writer.  Whatever parses must
 * turn into a config or a message, survive an edit, and re-parse from
 * its own output with the edit intact.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/vmconfig.h"
#include "vmfs/vmx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char tricky[] = "a \"quoted\" \\ value # not a comment";
	struct vmx_doc doc, again;
	struct vm_config c;
	char err[1024], *out;

	if (vmx_parse(&doc, "fuzz.vmx", (const char *)data, size, err,
	    sizeof(err)) < 0)
		return 0;
	(void)vmx_to_config(&doc, "/vm", &c, err, sizeof(err));
	if (vmx_set(&doc, "memsize", "1024") < 0 ||
	    vmx_set(&doc, "x-fuzz", tricky) < 0 ||
	    vmx_set(&doc, "numvcpus", NULL) < 0)
		abort();
	if ((out = vmx_format(&doc)) == NULL)
		abort();
	if (vmx_parse(&again, "again.vmx", out, strlen(out), err,
	    sizeof(err)) < 0)
		abort();	/* our own output must parse */
	if (strcmp(vmx_get(&again, "x-fuzz"), tricky) != 0 ||
	    strcmp(vmx_get(&again, "MEMSIZE"), "1024") != 0 ||
	    vmx_get(&again, "numvcpus") != NULL)
		abort();
	vmx_free(&again);
	vmx_free(&doc);
	free(out);
	return 0;
}
