/*
 * Device memory (the display's video memory) on the software CPU: mapped
 * after the VM exists with vm_map_device_mem(), it is memory to the guest
 * (no exit per store), follows vm_move_device_mem(), and its dirty pages
 * are logged as RAM's are.
 */
#include <criterion/criterion.h>

#include "bt/harness.h"
#include "hv/bt/bt.h"

static uint8_t *devmem_buf;
static int devmem_idx, devmem_outs;
static uint64_t devmem_dirty;

static void
devmem_out(struct tvm *t, uint64_t v)
{
	uint64_t bm[1] = { 0 };

	if (devmem_outs++ == 0) {
		cr_assert_eq(vm_move_device_mem(t->vm, devmem_idx, 0x30000000,
		    1 << 16), 0);
		return;
	}
	cr_assert_eq(bt_accel_ops.dirty_log(t->vm,
	    &t->vm->regions[devmem_idx], bm), 0);
	devmem_dirty = bm[0];
}

/*
 * Device memory mapped after the VM exists is plain memory to the guest
 * (stores never exit), follows a move, and has its dirty pages logged
 * like RAM's, which the VNC server may use.
 */
Test(fb_bt, device_memory_is_memory_and_moves)
{
	/*
	 * mov dword [0x20000000], 0x11223344; mov dword [0x20000000],
	 * 0x55667788; out 0xea, al (move to 0x30000000);
	 * mov dword [0x30000004], 0x99aabbcc; out 0xea, al (harvest); hlt
	 */
	static const uint8_t code[] = {
	    0xc7, 0x04, 0x25, 0x00, 0x00, 0x00, 0x20, 0x44, 0x33, 0x22, 0x11,
	    0xc7, 0x04, 0x25, 0x00, 0x00, 0x00, 0x20, 0x88, 0x77, 0x66, 0x55,
	    0xe6, 0xea,
	    0xc7, 0x04, 0x25, 0x04, 0x00, 0x00, 0x30, 0xcc, 0xbb, 0xaa, 0x99,
	    0xe6, 0xea, 0xf4 };
	struct tvm *t = tvm_new(16 << 20);
	struct cpu_state st;
	uint32_t v[2];

	devmem_buf = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	devmem_outs = 0;
	devmem_idx = vm_map_device_mem(t->vm, 0x20000000, 1 << 16, devmem_buf,
	    "test-vram");
	cr_assert_geq(devmem_idx, 0);
	tvm_put(t, 0x200000, code, sizeof(code));
	tvm_long_mode(t, &st, 0x200000);
	t->on_out = devmem_out;
	bt_accel_ops.set_state(t->vcpu, &st);
	cr_assert_eq(tvm_run(t, 2000), VM_EXIT_HLT);
	memcpy(v, devmem_buf, sizeof(v));
	cr_assert_eq(v[0], 0x55667788);
	cr_assert_eq(v[1], 0x99aabbcc, "stored at the moved address");
	cr_assert_eq(t->vcpu->mmio_exits, 0, "no store was an MMIO exit");
	cr_assert_eq(devmem_dirty & 1, 1, "page 0 logged dirty");
	cr_assert_null(vm_gpa_to_hva(t->vm, 0x20000000, 4), "moved away");
	tvm_free(t);
	munmap(devmem_buf, 1 << 16);
}
